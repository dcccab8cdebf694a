package admin

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The files in testdata/ are bodies of a RocketMQ 5.3.3 name server and
// broker, stored by TestCaptureTestdata.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseClusterInfoWithNumberKeys(t *testing.T) {
	// brokerAddrs is {0:"127.0.0.1:10911"}: a number key.
	ci, err := parseClusterInfo(readTestdata(t, "cluster_info.json"))
	if err != nil {
		t.Fatal(err)
	}
	b := ci.Brokers["broker-a"]
	if b.Name != "broker-a" || b.Cluster != "RmqkitA" || b.MasterAddr() != "127.0.0.1:10911" || len(b.Addrs) != 1 {
		t.Errorf("broker-a: %+v", b)
	}
	if got := ci.Clusters["RmqkitA"]; !slices.Equal(got, []string{"broker-a"}) {
		t.Errorf("cluster RmqkitA: %v", got)
	}
	if m := ci.masters(); len(m) != 1 || m[0].Name != "broker-a" {
		t.Errorf("masters: %+v", m)
	}
}

func TestParseTopicRoute(t *testing.T) {
	r, err := parseTopicRoute("admin_capture_topic", readTestdata(t, "topic_route.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantQueues := []QueueData{{BrokerName: "broker-a", ReadQueues: 2, WriteQueues: 2, Perm: PermRead | PermWrite}}
	if !slices.Equal(r.Queues, wantQueues) {
		t.Errorf("queues %+v, want %+v", r.Queues, wantQueues)
	}
	if len(r.Brokers) != 1 || r.Brokers[0].MasterAddr() != "127.0.0.1:10911" || r.Brokers[0].Cluster != "RmqkitA" {
		t.Errorf("brokers %+v", r.Brokers)
	}
	wantMQs := []MessageQueue{
		{Topic: "admin_capture_topic", BrokerName: "broker-a", QueueID: 0},
		{Topic: "admin_capture_topic", BrokerName: "broker-a", QueueID: 1},
	}
	if got := r.MessageQueues(); !slices.Equal(got, wantMQs) {
		t.Errorf("MessageQueues %v, want %v", got, wantMQs)
	}
}

func TestParseTopicConfig(t *testing.T) {
	var w wireTopicConfig
	if err := decodeJSON(readTestdata(t, "topic_config.json"), &w); err != nil {
		t.Fatal(err)
	}
	if w.TopicName != "admin_capture_topic" || !w.Order || w.ReadQueueNums != 2 || w.WriteQueueNums != 2 || w.Perm != 6 || w.TopicFilterType != "SINGLE_TAG" {
		t.Errorf("decoded %+v", w)
	}
}

func TestParseConsumeStatsWithMessageQueueKeys(t *testing.T) {
	// offsetTable is keyed by MessageQueue objects.
	st, err := parseConsumeStats(readTestdata(t, "consume_stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	const topic, retry = "admin_capture_topic", "%RETRY%admin_capture_group"
	want := []QueueStats{
		{MessageQueue: MessageQueue{Topic: retry, BrokerName: "broker-a", QueueID: 0}},
		{
			MessageQueue: MessageQueue{Topic: topic, BrokerName: "broker-a", QueueID: 0},
			BrokerOffset: 3, ConsumerOffset: 2, PullOffset: 2, Lag: 1, LastTimestamp: time.UnixMilli(1795655432548),
		},
		{
			MessageQueue: MessageQueue{Topic: topic, BrokerName: "broker-a", QueueID: 1},
			BrokerOffset: 4, ConsumerOffset: 3, PullOffset: 3, Lag: 1, LastTimestamp: time.UnixMilli(1795655432549),
		},
	}
	if !slices.Equal(st.Queues, want) {
		t.Errorf("queues\n got %+v\nwant %+v", st.Queues, want)
	}
	if st.TotalLag != 2 || st.ConsumeTPS != 0.5 {
		t.Errorf("total lag %d, tps %v; want 2, 0.5", st.TotalLag, st.ConsumeTPS)
	}
}

func TestParseConsumerConnections(t *testing.T) {
	conns, err := parseConsumerConnections(readTestdata(t, "consumer_connection.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Connection{{
		ClientID:   "192.0.2.2@admin_instance_TestCaptureTestdata_71a21ec2",
		ClientAddr: "127.0.0.1:48668",
		Language:   "GO",
		Version:    317,
	}}
	if !slices.Equal(conns, want) {
		t.Errorf("connections %+v, want %+v", conns, want)
	}
}

func TestParseSubscriptionGroups(t *testing.T) {
	groups, err := parseSubscriptionGroups(readTestdata(t, "subscription_groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"admin_capture_group", "TOOLS_CONSUMER", "SELF_TEST_C_GROUP", "CID_ONSAPI_OWNER"} {
		if _, found := slices.BinarySearch(groups, g); !found {
			t.Errorf("groups %v lack %s", groups, g)
		}
	}
	if !slices.IsSorted(groups) {
		t.Errorf("groups not sorted: %v", groups)
	}
}

func TestReadFrameDecodesARealResponseHeader(t *testing.T) {
	header := string(readTestdata(t, "max_offset_response_header.json"))
	cmd, err := decodeFrame(javaFrame(0, header, "")[4:])
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Code != codeSuccess || !cmd.isResponse() || cmd.Opaque != 7 || cmd.Language != "JAVA" || cmd.ExtFields["offset"] != "3" {
		t.Errorf("decoded %+v", cmd)
	}
}
