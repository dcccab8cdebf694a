//go:build integration

package admin

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestCaptureTestdata stores real answers of the test cluster in testdata/,
// for the parser tests of testdata_test.go (which check values of these
// files: update them when capturing again). It runs only with
// RMQKIT_ADMIN_CAPTURE=1:
//
//	RMQKIT_ADMIN_CAPTURE=1 go test -tags integration -run TestCaptureTestdata ./internal/admin/
func TestCaptureTestdata(t *testing.T) {
	if os.Getenv("RMQKIT_ADMIN_CAPTURE") != "1" {
		t.Skip("set RMQKIT_ADMIN_CAPTURE=1 to capture testdata from the test cluster")
	}
	ns := testNameServer(t)
	c := newTestClient(t, ns)
	ctx := testContext(t, 2*time.Minute)
	save := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("testdata/%s: %d bytes", name, len(data))
	}
	raw := func(addr string, code int, ext map[string]string) *command {
		t.Helper()
		resp, err := c.invoke(ctx, addr, code, ext, nil)
		if err != nil {
			t.Fatalf("request %d: %v", code, err)
		}
		return resp
	}

	const topic, group = "admin_capture_topic", "admin_capture_group"
	c.DeleteTopic(ctx, topic)
	c.DeleteSubscriptionGroup(ctx, group)
	if err := c.CreateTopic(ctx, topic, 2, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.DeleteTopic(context.Background(), topic)
		c.DeleteSubscriptionGroup(context.Background(), group)
	})
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	broker := ci.masters()[0].MasterAddr()

	save("cluster_info.json", raw(ns, reqGetBrokerClusterInfo, nil).Body)
	save("topic_route.json", raw(ns, reqGetRouteInfoByTopic, map[string]string{"topic": topic}).Body)
	save("topic_config.json", raw(broker, reqGetTopicConfig, map[string]string{"topic": topic}).Body)

	// 5 messages, 3 consumed and committed: lag 2 is not possible with a push
	// consumer that consumes all, so: produce 5, consume them, stop, produce 2.
	produce(t, ns, topic, 5)
	var consumed atomic.Int64
	stop := startConsumer(t, ns, group, topic, &consumed)
	eventually(t, 30*time.Second, func() error {
		conns, err := c.ConsumerConnections(ctx, group)
		if err != nil || len(conns) == 0 {
			return err
		}
		st, err := c.ConsumeStats(ctx, group, topic)
		if err != nil {
			return err
		}
		if st.TotalLag != 0 || consumed.Load() < 5 {
			return context.DeadlineExceeded
		}
		return nil
	})
	save("consumer_connection.json", raw(broker, reqGetConsumerConnectionList, map[string]string{"consumerGroup": group}).Body)
	stop()
	produce(t, ns, topic, 2)
	save("consume_stats.json", raw(broker, reqGetConsumeStats, map[string]string{"consumerGroup": group}).Body)
	save("subscription_groups.json", raw(broker, reqGetAllSubscriptionGroup, nil).Body)

	// A response header as the broker writes it, read off a raw connection.
	nc, err := net.DialTimeout("tcp", broker, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	frame, err := encodeFrame(&command{
		Code: reqGetMaxOffset, Language: "GO", Version: protocolVersion, Opaque: 7,
		ExtFields: map[string]string{"topic": topic, "queueId": "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	var head [8]byte
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, binary.BigEndian.Uint32(head[:4])-4)
	if _, err := io.ReadFull(nc, rest); err != nil {
		t.Fatal(err)
	}
	save("max_offset_response_header.json", rest[:binary.BigEndian.Uint32(head[4:])&0xFFFFFF])
}
