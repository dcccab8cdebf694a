//go:build integration

// Tests against the test cluster of scripts/rocketmq.sh:
//
//	scripts/rocketmq.sh up
//	go test -tags integration -count=1 ./internal/admin/
//
// They run without -race, like the project's other integration tests:
// rocketmq-client-go, whose producer and push consumer they use, has data
// races of its own (rmqClient.Shutdown writes a flag InvokeSync reads
// unsynchronized).

package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

const upCommand = "scripts/rocketmq.sh up"

// testNameServer returns the name server of the test cluster (RMQKIT_NAMESRV,
// default 127.0.0.1:9876). When none answers, the test fails under CI=true
// and is skipped otherwise.
func testNameServer(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("RMQKIT_NAMESRV")
	if addr == "" {
		addr = "127.0.0.1:9876"
	}
	requireListening(t, addr, upCommand)
	waitForMasterBroker(t, addr)
	return addr
}

// waitForMasterBroker waits up to a minute for the name server to route a
// master broker: a name server that has just started knows none until its
// brokers register.
func waitForMasterBroker(t *testing.T, nameServer string) {
	t.Helper()
	c, err := New([]string{nameServer})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, time.Minute, func() error {
		_, err := c.masterBrokers(testContext(t, 5*time.Second))
		return err
	})
}

func requireListening(t *testing.T, addr, command string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no RocketMQ name server answers at %s (%v): start the test cluster with `%s`", addr, err, command)
	}
	t.Skipf("no RocketMQ name server at %s; start one with `%s`", addr, command)
}

func newTestClient(t *testing.T, nameServer string, opts ...Option) *Client {
	t.Helper()
	c, err := New([]string{nameServer}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var nameChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// uniqueName returns "admin_<test name>_<random>", a valid topic and group
// name that no other test (or earlier run) uses.
func uniqueName(t *testing.T, kind string) string {
	var b [4]byte
	rand.Read(b[:])
	name := nameChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	return "admin_" + kind + "_" + name + "_" + hex.EncodeToString(b[:])
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// produce sends n messages to topic with a rocketmq-client-go producer.
func produce(t *testing.T, nameServer, topic string, n int) {
	t.Helper()
	name := uniqueName(t, "producer")
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{nameServer})),
		producer.WithGroupName(name),
		producer.WithInstanceName(name),
		producer.WithRetry(2),
	)
	if err != nil {
		t.Fatalf("NewDefaultProducer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer Start: %v", err)
	}
	defer p.Shutdown()
	for i := range n {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("message %d", i))))
		if err != nil {
			t.Fatalf("SendSync: %v", err)
		}
		if res.Status != primitive.SendOK {
			t.Fatalf("SendSync: status %v", res.Status)
		}
	}
}

// startConsumer starts a push consumer of group on topic that counts what it
// consumes. Stop it with the returned function (also called at cleanup).
func startConsumer(t *testing.T, nameServer, group, topic string, consumed *atomic.Int64) (stop func()) {
	t.Helper()
	c, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{nameServer})),
		consumer.WithGroupName(group),
		consumer.WithInstance(uniqueName(t, "instance")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatalf("NewPushConsumer: %v", err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if consumed != nil {
			consumed.Add(1)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("consumer Start: %v", err)
	}
	started := time.Now()
	var stopped atomic.Bool
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			// The client sends its first heartbeat 1 s after Start
			// without looking at Shutdown: shut down before it, and the
			// broker may list the client again, on its dead connection,
			// for 2 minutes (what consumer.Stop waits out too).
			time.Sleep(time.Until(started.Add(1500 * time.Millisecond)))
			if err := c.Shutdown(); err != nil {
				t.Errorf("consumer Shutdown: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// eventually calls f every 200 ms until it returns nil or d has passed, and
// fails the test with f's last error then.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// createTopic creates a fresh topic and deletes it at cleanup.
func createTopic(t *testing.T, c *Client, queues int, ordered bool) string {
	t.Helper()
	topic := uniqueName(t, "topic")
	if err := c.CreateTopic(testContext(t, 20*time.Second), topic, queues, ordered); err != nil {
		t.Fatalf("CreateTopic(%q, %d, %v): %v", topic, queues, ordered, err)
	}
	t.Cleanup(func() {
		if err := c.DeleteTopic(context.Background(), topic); err != nil {
			t.Errorf("DeleteTopic(%q): %v", topic, err)
		}
	})
	return topic
}

func TestClusterInfoListsTheTestBroker(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testNameServer(t))
	ci, err := c.ClusterInfo(testContext(t, 10*time.Second))
	if err != nil {
		t.Fatalf("ClusterInfo: %v", err)
	}
	cluster := os.Getenv("RMQKIT_CLUSTER")
	if cluster == "" {
		cluster = "RmqkitA"
	}
	names := ci.Clusters[cluster]
	if len(names) == 0 {
		t.Fatalf("ClusterInfo: no cluster %q in %+v", cluster, ci.Clusters)
	}
	for _, name := range names {
		b, ok := ci.Brokers[name]
		if !ok || b.Cluster != cluster || b.MasterAddr() == "" {
			t.Errorf("broker %q: %+v, want a master in cluster %q", name, b, cluster)
		}
	}
}

func TestCreateTopicIsRoutedWithItsQueueCountAndOrderFlag(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testNameServer(t))
	for _, tc := range []struct {
		queues  int
		ordered bool
	}{
		{queues: 1, ordered: false},
		{queues: 3, ordered: true},
		{queues: 8, ordered: false},
	} {
		t.Run(fmt.Sprintf("queues=%d,ordered=%v", tc.queues, tc.ordered), func(t *testing.T) {
			t.Parallel()
			topic := createTopic(t, c, tc.queues, tc.ordered)
			ctx := testContext(t, 10*time.Second)
			route, err := c.TopicRoute(ctx, topic)
			if err != nil {
				t.Fatalf("TopicRoute: %v", err)
			}
			if len(route.Queues) == 0 || len(route.Brokers) != len(route.Queues) {
				t.Fatalf("TopicRoute: %+v, want queue data and broker data of each broker", route)
			}
			for _, q := range route.Queues {
				if q.ReadQueues != tc.queues || q.WriteQueues != tc.queues || q.Perm != PermRead|PermWrite {
					t.Errorf("queue data %+v, want %d read and write queues, perm %d", q, tc.queues, PermRead|PermWrite)
				}
			}
			if got := len(route.MessageQueues()); got != tc.queues*len(route.Queues) {
				t.Errorf("MessageQueues: %d, want %d", got, tc.queues*len(route.Queues))
			}
			cfg, err := c.TopicConfig(ctx, topic)
			if err != nil {
				t.Fatalf("TopicConfig: %v", err)
			}
			if cfg.Topic != topic || cfg.ReadQueues != tc.queues || cfg.Order != tc.ordered {
				t.Errorf("TopicConfig: %+v, want %d queues and order %v", cfg, tc.queues, tc.ordered)
			}
		})
	}
}

func TestCreateTopicErrorNamesTheBrokersRemark(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testNameServer(t))
	for _, topic := range []string{
		"admin bad topic with spaces",
		"admin_bad_topic_" + strings.Repeat("x", 130), // over 127 characters
	} {
		err := c.CreateTopic(testContext(t, 10*time.Second), topic, 4, false)
		var re *ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("CreateTopic(%q): %v, want a *ResponseError", topic, err)
		}
		if !errors.Is(err, ErrBrokerResponse) || re.Code == codeSuccess || re.Remark == "" {
			t.Fatalf("CreateTopic(%q): %#v, want a failure code with a remark", topic, re)
		}
		if !strings.Contains(err.Error(), re.Remark) {
			t.Errorf("error %q does not name the remark %q", err, re.Remark)
		}
		t.Logf("CreateTopic(%.30q...): %v", topic, err)
	}
}

func TestTopicRouteOfAnUnknownTopicIsNotFound(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testNameServer(t))
	_, err := c.TopicRoute(testContext(t, 10*time.Second), uniqueName(t, "missing"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("TopicRoute of an unknown topic: %v, want ErrNotFound", err)
	}
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != codeTopicNotExist {
		t.Errorf("TopicRoute of an unknown topic: %v, want response code %d", err, codeTopicNotExist)
	}
}

func TestDeleteTopicRemovesItsRoute(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testNameServer(t))
	topic := uniqueName(t, "topic")
	ctx := testContext(t, 20*time.Second)
	if err := c.CreateTopic(ctx, topic, 2, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if err := c.DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if _, err := c.TopicRoute(ctx, topic); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TopicRoute after DeleteTopic: %v, want ErrNotFound", err)
	}
	if err := c.DeleteTopic(ctx, topic); err != nil {
		t.Errorf("DeleteTopic of a deleted topic: %v, want nil", err)
	}
}

func TestConsumerConnectionsListsALiveConsumerUntilItShutsDown(t *testing.T) {
	t.Parallel()
	ns := testNameServer(t)
	c := newTestClient(t, ns)
	topic := createTopic(t, c, 2, false)
	group := uniqueName(t, "group")
	t.Cleanup(func() { c.DeleteSubscriptionGroup(context.Background(), group) })

	conns, err := c.ConsumerConnections(testContext(t, 10*time.Second), group)
	if err != nil || conns == nil || len(conns) != 0 {
		t.Fatalf("ConsumerConnections before the consumer starts: %v, %v; want an empty slice, nil", conns, err)
	}

	stop := startConsumer(t, ns, group, topic, nil)
	var live []Connection
	eventually(t, 15*time.Second, func() error {
		live, err = c.ConsumerConnections(testContext(t, 10*time.Second), group)
		if err != nil {
			return err
		}
		if len(live) != 1 {
			return fmt.Errorf("ConsumerConnections: %+v, want the one consumer", live)
		}
		return nil
	})
	if cn := live[0]; !strings.Contains(cn.ClientID, "@admin_instance_") || cn.Language != "GO" || cn.ClientAddr == "" || cn.Version == 0 {
		t.Errorf("connection %+v, want the Go consumer's client id, address and version", cn)
	}

	stop()
	eventually(t, 15*time.Second, func() error {
		conns, err := c.ConsumerConnections(testContext(t, 10*time.Second), group)
		if err != nil {
			return err
		}
		if len(conns) != 0 {
			return fmt.Errorf("ConsumerConnections after Shutdown: %+v, want none", conns)
		}
		return nil
	})
}

func TestConsumeStatsShowsTheLagBeforeAndAfterConsuming(t *testing.T) {
	t.Parallel()
	ns := testNameServer(t)
	c := newTestClient(t, ns)
	const queues, produced = 2, 10
	topic := createTopic(t, c, queues, false)
	group := uniqueName(t, "group")
	t.Cleanup(func() { c.DeleteSubscriptionGroup(context.Background(), group) })
	produce(t, ns, topic, produced)

	ctx := testContext(t, 60*time.Second)
	route, err := c.TopicRoute(ctx, topic)
	if err != nil {
		t.Fatalf("TopicRoute: %v", err)
	}
	for _, mq := range route.MessageQueues() {
		minOff, err := c.MinOffset(ctx, mq)
		if err != nil {
			t.Fatalf("MinOffset(%v): %v", mq, err)
		}
		if minOff != 0 {
			t.Errorf("MinOffset(%v) = %d, want 0", mq, minOff)
		}
		if _, err := c.ConsumerOffset(ctx, group, mq); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumerOffset(%v) before consuming: %v, want ErrNotFound", mq, err)
		}
	}
	// The broker moves a queue's max offset when it has dispatched the stored
	// message to the queue, a moment after SendSync returned.
	eventually(t, 5*time.Second, func() error {
		var stored int64
		for _, mq := range route.MessageQueues() {
			maxOff, err := c.MaxOffset(ctx, mq)
			if err != nil {
				return err
			}
			stored += maxOff
		}
		if stored != produced {
			return fmt.Errorf("sum of MaxOffset = %d, want %d", stored, produced)
		}
		return nil
	})

	// Before consuming, the group has no offsets: the broker reports the
	// topic only when asked for it, with consumer offset 0.
	before, err := c.ConsumeStats(ctx, group, topic)
	if err != nil {
		t.Fatalf("ConsumeStats before consuming: %v", err)
	}
	// The topic has queues queues on every master.
	mqs := len(route.MessageQueues())
	if before.TotalLag != produced || len(before.Queues) != mqs {
		t.Errorf("ConsumeStats before consuming: %+v, want total lag %d over %d queues", before, produced, mqs)
	}

	var consumed atomic.Int64
	stop := startConsumer(t, ns, group, topic, &consumed)
	eventually(t, 20*time.Second, func() error {
		if n := consumed.Load(); n < produced {
			return fmt.Errorf("consumed %d of %d messages", n, produced)
		}
		return nil
	})
	// The push consumer commits its offsets every 5 s.
	var after ConsumeStats
	eventually(t, 15*time.Second, func() error {
		after, err = c.ConsumeStats(ctx, group, topic)
		if err != nil {
			return err
		}
		if after.TotalLag != 0 {
			return fmt.Errorf("ConsumeStats after consuming: total lag %d, want 0", after.TotalLag)
		}
		return nil
	})
	var committed int64
	for _, q := range after.Queues {
		if q.Topic != topic || q.Lag != 0 || q.BrokerOffset != q.ConsumerOffset {
			t.Errorf("queue stats %+v, want no lag on %s", q, topic)
		}
		committed += q.ConsumerOffset
		off, err := c.ConsumerOffset(ctx, group, q.MessageQueue)
		if err != nil || off != q.ConsumerOffset {
			t.Errorf("ConsumerOffset(%v) = %d, %v; want %d", q.MessageQueue, off, err, q.ConsumerOffset)
		}
	}
	if committed != produced {
		t.Errorf("committed offsets sum to %d, want %d", committed, produced)
	}

	// Messages sent while the consumer is down are lag again. With no topic,
	// the stats cover every topic the group has committed offsets for: the
	// topic, and its retry topic if rocketmq-client-go committed an offset
	// there (it does not always for an empty retry queue; the stats in
	// testdata/consume_stats.json have one).
	stop()
	produce(t, ns, topic, 3)
	var all ConsumeStats
	eventually(t, 5*time.Second, func() error {
		all, err = c.ConsumeStats(ctx, group, "")
		if err != nil {
			return err
		}
		if all.TotalLag != 3 {
			return fmt.Errorf("ConsumeStats of all topics after 3 more messages: total lag %d, want 3", all.TotalLag)
		}
		return nil
	})
	topics := map[string]int{}
	for _, q := range all.Queues {
		topics[q.Topic]++
	}
	delete(topics, "%RETRY%"+group)
	if len(topics) != 1 || topics[topic] != mqs {
		t.Errorf("ConsumeStats of all topics covers %v, want the %d queues of %s (and the retry topic)", topics, mqs, topic)
	}
}

func TestDeleteSubscriptionGroupRemovesTheGroup(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testNameServer(t))
	ctx := testContext(t, 20*time.Second)
	group := uniqueName(t, "group")
	if err := c.CreateSubscriptionGroup(ctx, group, WithRetryMaxTimes(3), WithBroadcast(false)); err != nil {
		t.Fatalf("CreateSubscriptionGroup: %v", err)
	}
	groups, err := c.SubscriptionGroups(ctx)
	if err != nil {
		t.Fatalf("SubscriptionGroups: %v", err)
	}
	if !slices.Contains(groups, group) {
		t.Fatalf("SubscriptionGroups does not list the new group %q", group)
	}
	if err := c.DeleteSubscriptionGroup(ctx, group); err != nil {
		t.Fatalf("DeleteSubscriptionGroup: %v", err)
	}
	groups, err = c.SubscriptionGroups(ctx)
	if err != nil {
		t.Fatalf("SubscriptionGroups: %v", err)
	}
	if slices.Contains(groups, group) {
		t.Fatalf("SubscriptionGroups still lists the deleted group %q", group)
	}
	if err := c.DeleteSubscriptionGroup(ctx, group); err != nil {
		t.Errorf("DeleteSubscriptionGroup of a deleted group: %v, want nil", err)
	}
}

// TestCredentialsAreAcceptedByABrokerWithAuthentication runs against the
// "auth" cluster of scripts/rocketmq.sh (authentication and authorization
// on): signed requests pass, a wrong secret is refused without showing up in
// the error.
func TestCredentialsAreAcceptedByABrokerWithAuthentication(t *testing.T) {
	t.Parallel()
	ns := os.Getenv("RMQKIT_AUTH_NAMESRV")
	if ns == "" {
		ns = "127.0.0.1:29876"
	}
	// Fails under CI=true, skips otherwise.
	requireListening(t, ns, "scripts/rocketmq.sh up --auth")
	waitForMasterBroker(t, ns)
	ak, sk := os.Getenv("RMQKIT_ACCESS_KEY"), os.Getenv("RMQKIT_SECRET_KEY")
	if ak == "" || sk == "" {
		ak, sk = testAccessKey, testSecretKey
	}

	c := newTestClient(t, ns, WithCredentials(ak, sk))
	topic := createTopic(t, c, 2, false)
	ctx := testContext(t, 20*time.Second)
	if _, err := c.TopicConfig(ctx, topic); err != nil {
		t.Errorf("TopicConfig with credentials: %v", err)
	}
	if _, err := c.SubscriptionGroups(ctx); err != nil {
		t.Errorf("SubscriptionGroups with credentials: %v", err)
	}

	const wrongSecret = "not-the-secret-key-0123"
	for name, opts := range map[string][]Option{
		"wrong secret":   {WithCredentials(ak, wrongSecret)},
		"no credentials": nil,
	} {
		bad := newTestClient(t, ns, opts...)
		_, err := bad.TopicConfig(ctx, topic)
		if !errors.Is(err, ErrBrokerResponse) {
			t.Errorf("TopicConfig with %s: %v, want a refusal", name, err)
			continue
		}
		if strings.Contains(err.Error(), wrongSecret) || strings.Contains(err.Error(), sk) {
			t.Errorf("error %q contains a secret key", err)
		}
		t.Logf("%s: %v", name, err)
	}
}

// testMasters returns the master brokers of the test cluster (RMQKIT_CLUSTER,
// default RmqkitA), sorted by name, when it has at least n. When it has
// fewer, the test fails if the cluster should have them (RMQKIT_BROKERS, which
// scripts/rocketmq.sh env exports, lists n or more addresses; it then waits a
// minute for them to register) or CI=true, and is skipped otherwise.
func testMasters(t *testing.T, c *Client, n int) []Broker {
	t.Helper()
	cluster := os.Getenv("RMQKIT_CLUSTER")
	if cluster == "" {
		cluster = "RmqkitA"
	}
	masters := func() ([]Broker, error) {
		ci, err := c.ClusterInfo(testContext(t, 10*time.Second))
		if err != nil {
			return nil, err
		}
		var out []Broker
		for _, name := range ci.Clusters[cluster] {
			if b := ci.Brokers[name]; b.MasterAddr() != "" {
				out = append(out, b)
			}
		}
		if len(out) < n {
			return out, fmt.Errorf("cluster %s has %d master broker(s) %+v, the test needs %d: start it with `scripts/rocketmq.sh up --brokers a=%d`", cluster, len(out), out, n, n)
		}
		return out, nil
	}
	expected := 0
	for _, a := range strings.Split(os.Getenv("RMQKIT_BROKERS"), ",") {
		if strings.TrimSpace(a) != "" {
			expected++
		}
	}
	if expected < n {
		out, err := masters()
		if err == nil {
			return out
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var out []Broker
	eventually(t, time.Minute, func() (err error) {
		out, err = masters()
		return err
	})
	return out
}

// TestAdminCallsAskEveryMasterBroker runs on a cluster with two master
// brokers or more (make test: broker-a and broker-a2): the calls that must
// ask every master see what only the second one has.
func TestAdminCallsAskEveryMasterBroker(t *testing.T) {
	t.Parallel()
	ns := testNameServer(t)
	c := newTestClient(t, ns)
	masters := testMasters(t, c, 2)
	last := masters[len(masters)-1]
	ctx := testContext(t, 2*time.Minute)

	// A topic with queues on every master, and messages in each of its queues.
	const queues, produced = 2, 24
	topic := createTopic(t, c, queues, false)
	route, err := c.TopicRoute(ctx, topic)
	if err != nil {
		t.Fatalf("TopicRoute: %v", err)
	}
	mqs := route.MessageQueues()
	perBroker := map[string]int{}
	for _, mq := range mqs {
		perBroker[mq.BrokerName]++
	}
	for _, b := range masters {
		if perBroker[b.Name] != queues {
			t.Fatalf("route of %s: %+v; want %d queues on every master %+v", topic, route, queues, masters)
		}
	}
	group := uniqueName(t, "group")
	if err := c.CreateSubscriptionGroup(ctx, group); err != nil {
		t.Fatalf("CreateSubscriptionGroup: %v", err)
	}
	t.Cleanup(func() { c.DeleteSubscriptionGroup(context.Background(), group) })
	produce(t, ns, topic, produced)
	stored := map[MessageQueue]int64{}
	eventually(t, 10*time.Second, func() error {
		var sum int64
		for _, mq := range mqs {
			off, err := c.MaxOffset(ctx, mq)
			if err != nil {
				return err
			}
			stored[mq] = off
			sum += off
		}
		if sum != produced {
			return fmt.Errorf("sum of MaxOffset = %d, want %d (%v)", sum, produced, stored)
		}
		return nil
	})
	for _, b := range masters {
		var n int64
		for mq, off := range stored {
			if mq.BrokerName == b.Name {
				n += off
			}
		}
		if n == 0 {
			t.Fatalf("the producer stored nothing on broker %s (%v): the test needs messages on every master", b.Name, stored)
		}
	}

	// ConsumeStats covers every broker's queues: the lag is the sum over all.
	checkStats := func(consumerOffset int64) {
		t.Helper()
		stats, err := c.ConsumeStats(ctx, group, topic)
		if err != nil {
			t.Fatalf("ConsumeStats: %v", err)
		}
		got := map[MessageQueue]QueueStats{}
		for _, q := range stats.Queues {
			got[q.MessageQueue] = q
		}
		if len(stats.Queues) != len(mqs) || len(got) != len(mqs) {
			t.Fatalf("ConsumeStats: %d queues %+v, want the %d queues of every master %v", len(stats.Queues), stats.Queues, len(mqs), mqs)
		}
		var lag int64
		for _, mq := range mqs {
			q, ok := got[mq]
			want := max(stored[mq]-consumerOffset, 0)
			if !ok || q.BrokerOffset != stored[mq] || q.ConsumerOffset != consumerOffset || q.Lag != want {
				t.Errorf("ConsumeStats of %v: %+v (found %v), want broker offset %d, consumer offset %d, lag %d", mq, q, ok, stored[mq], consumerOffset, want)
			}
			lag += want
		}
		if stats.TotalLag != lag {
			t.Errorf("ConsumeStats: total lag %d, want %d summed over the queues of %d masters", stats.TotalLag, lag, len(masters))
		}
	}
	checkStats(0)

	// Offsets committed on every broker's queues are read back from each.
	for _, mq := range mqs {
		if err := c.UpdateConsumerOffset(ctx, group, mq, 1); err != nil {
			t.Fatalf("UpdateConsumerOffset(%v): %v", mq, err)
		}
	}
	for _, mq := range mqs {
		if off, err := c.ConsumerOffset(ctx, group, mq); err != nil || off != 1 {
			t.Errorf("ConsumerOffset(%v) = %d, %v; want 1", mq, off, err)
		}
	}
	checkStats(1)

	// A subscription group that only the last master has.
	lastGroup := uniqueName(t, "group")
	body, err := json.Marshal(groupConfig{GroupName: lastGroup, ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryMaxTimes: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.invoke(ctx, last.MasterAddr(), reqUpdateAndCreateSubscription, nil, body); err != nil {
		t.Fatalf("create group %s on broker %s only: %v", lastGroup, last.Name, err)
	}
	t.Cleanup(func() { c.DeleteSubscriptionGroup(context.Background(), lastGroup) })
	cfgs, err := c.SubscriptionGroupConfigs(ctx)
	if err != nil {
		t.Fatalf("SubscriptionGroupConfigs: %v", err)
	}
	if i := slices.IndexFunc(cfgs, func(g GroupConfig) bool { return g.Name == lastGroup }); i < 0 || cfgs[i].RetryMaxTimes != 5 {
		t.Errorf("SubscriptionGroupConfigs does not list group %s (retry max times 5) of broker %s", lastGroup, last.Name)
	}
	if groups, err := c.SubscriptionGroups(ctx); err != nil || !slices.Contains(groups, lastGroup) {
		t.Errorf("SubscriptionGroups: %v; it does not list group %s of broker %s", err, lastGroup, last.Name)
	}

	// A consumer connected to the last master only: its topic lives there
	// only, and rocketmq-client-go sends heartbeats to the brokers of its
	// topics' routes.
	lastTopic := uniqueName(t, "topic")
	ext := map[string]string{
		"topic":           lastTopic,
		"defaultTopic":    "TBW102",
		"readQueueNums":   "2",
		"writeQueueNums":  "2",
		"perm":            fmt.Sprint(PermRead | PermWrite),
		"topicFilterType": "SINGLE_TAG",
		"topicSysFlag":    "0",
		"order":           "false",
	}
	if _, err := c.invoke(ctx, last.MasterAddr(), reqUpdateAndCreateTopic, ext, nil); err != nil {
		t.Fatalf("create topic %s on broker %s only: %v", lastTopic, last.Name, err)
	}
	t.Cleanup(func() { c.DeleteTopic(context.Background(), lastTopic) })
	eventually(t, 30*time.Second, func() error {
		r, err := c.TopicRoute(ctx, lastTopic)
		if err != nil {
			return err
		}
		if len(r.Brokers) != 1 || r.Brokers[0].Name != last.Name {
			return fmt.Errorf("route of %s: %+v, want broker %s only", lastTopic, r.Brokers, last.Name)
		}
		return nil
	})
	lastConsumers := uniqueName(t, "group")
	t.Cleanup(func() { c.DeleteSubscriptionGroup(context.Background(), lastConsumers) })
	startConsumer(t, ns, lastConsumers, lastTopic, nil)
	eventually(t, 20*time.Second, func() error {
		conns, err := c.ConsumerConnections(testContext(t, 10*time.Second), lastConsumers)
		if err != nil {
			return err
		}
		if len(conns) != 1 {
			return fmt.Errorf("ConsumerConnections of group %s, whose consumer is connected to broker %s only: %+v, want the one consumer", lastConsumers, last.Name, conns)
		}
		return nil
	})
	// ConsumerRunningInfo reaches the consumer through the broker it is
	// connected to, passing over the other, which answers SYSTEM_ERROR
	// "The Consumer <group> <client id> not online" (a 5.3 broker).
	conns, err := c.ConsumerConnections(testContext(t, 10*time.Second), lastConsumers)
	if err != nil || len(conns) != 1 {
		t.Fatalf("ConsumerConnections = %+v, %v", conns, err)
	}
	if _, err := c.ConsumerRunningInfo(testContext(t, 10*time.Second), lastConsumers, conns[0].ClientID); err != nil {
		t.Fatalf("ConsumerRunningInfo of a consumer connected to %s only: %v", last.Name, err)
	}
}
