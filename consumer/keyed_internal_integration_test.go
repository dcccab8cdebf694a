//go:build integration

package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// Key-ordered tests that look inside the consumer: at the client's queue
// table, to see when it gives a queue up and when it last pulled.

func keyedConsumer(t *testing.T, cl *rmqtest.Cluster, group string, opts ...Option) *Consumer {
	t.Helper()
	base := []Option{WithNameServer(cl.NameServer), WithStartPosition(StartFromEarliest), WithLogger(slog.New(slog.DiscardHandler))}
	c, err := New(group, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// lastPulls returns, per queue the client holds, when it last pulled (or
// looked at the queue and held back for flow control).
func lastPulls(c *Consumer) map[primitive.MessageQueue]time.Time {
	info := reflect.ValueOf(c.client).MethodByName("GetConsumerRunningInfo").Call([]reflect.Value{reflect.ValueOf(false)})[0]
	table := info.Elem().FieldByName("MQTable")
	out := make(map[primitive.MessageQueue]time.Time, table.Len())
	for it := table.MapRange(); it.Next(); {
		mq := it.Key().Interface().(primitive.MessageQueue)
		out[mq] = time.UnixMilli(it.Value().FieldByName("LastPullTimestamp").Int())
	}
	return out
}

// keysPerQueue returns one key per queue of a topic of n queues, each
// hashing (rmqtest.ProduceKeyed) to its own queue.
func keysPerQueue(n int) []string {
	keys := make([]string, n)
	found := 0
	for i := 0; found < n; i++ {
		k := fmt.Sprintf("q%d", i)
		if q := rmqtest.KeyQueue(k, n); keys[q] == "" {
			keys[q] = k
			found++
		}
	}
	return keys
}

// Messages waiting in a key's lane for minutes' worth of client timeouts
// are neither re-sent by the client's ConsumeTimeout nor have their queue
// go idle: the orderly intake keeps pulling (into flow control) while the
// callback waits, so the 120 s idle-queue drop cannot come.
func TestKeyOrderedWaitInALaneNeitherTimesOutNorIdlesTheQueue(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(1))
	const hold = 4 * time.Second
	var msgs []rmqtest.Msg
	for i := range 300 {
		key := "slow"
		if i%4 != 0 {
			key = fmt.Sprintf("other%d", i%7)
		}
		msgs = append(msgs, rmqtest.Msg{ID: fmt.Sprintf("%s-%06d", key, i), ShardKey: key})
	}
	// One batch: one queue, also with a queue on each of several masters.
	cl.NewProducer(t).SendBatch(topic, msgs...)
	got := rmqtest.NewCollector()
	held := make(chan struct{})
	c := keyedConsumer(t, cl, cl.NewGroup(t), WithClientConsumeTimeout(time.Second), WithQueuePrefetch(32))
	var once sync.Once
	var heldQueue primitive.MessageQueue // written before held is closed
	err := c.Subscribe(topic, All, func(_ context.Context, m *Message) error {
		if m.Property(rmqtest.IDProperty) == "slow-000000" {
			once.Do(func() {
				heldQueue = primitive.MessageQueue{Topic: topic, BrokerName: m.Broker, QueueId: m.QueueID}
				close(held)
			})
			time.Sleep(hold) // the key's other messages wait in its lane
		}
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}, WithKeyOrdered())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow key never started")
	}
	heldAt := time.Now()
	// While the lane waits: the client keeps visiting its queue. (An empty
	// queue's pull waits at the broker, long polling, up to 15 s.)
	var stalest time.Duration
	for end := time.Now().Add(hold - 500*time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		at, ok := lastPulls(c)[heldQueue]
		if !ok {
			t.Fatalf("the client does not hold %v, the queue of the waiting lane", heldQueue)
		}
		stalest = max(stalest, time.Since(at))
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	r := got.RequireAll(t, ids, 60*time.Second)
	// A message the client sends back comes again through the retry topic
	// after its back-off (10 s at the first level): watch that long.
	resent := rmqtest.WaitUntil(time.Until(heldAt.Add(hold+12*time.Second)), func() bool { return got.Total() > len(ids) })
	if resent || r.Duplicates != 0 {
		t.Fatalf("%d messages delivered twice after waiting %v in a lane with a client consume timeout of 1 s", got.Total()-len(ids), hold)
	}
	if stalest > time.Second {
		t.Fatalf("a queue went %v without a pull while a lane waited: the idle-queue drop (120 s) would come", stalest)
	}
	t.Logf("lane wait %v, client consume timeout 1 s: no re-send; stalest pull %v", hold, stalest)
}

// When a rebalance gives a queue to another instance, this instance starts
// no more of its messages (within heldRefresh of the client dropping it,
// plus a handler in flight), the other instance starts only after this one
// is done with it, and every key stays in order on each instance.
func TestKeyOrderedRebalanceStopsStartingLostQueues(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	queues := 8 * len(cl.Brokers)
	topic := cl.NewTopic(t, rmqtest.Queues(8))
	group := cl.NewGroup(t)
	const work = 100 * time.Millisecond
	// One key per queue: each callback is one lane of 32 messages, 3.2 s.
	var msgs []rmqtest.Msg
	keys := keysPerQueue(queues)
	for i := range 400 {
		for _, k := range keys {
			msgs = append(msgs, rmqtest.Msg{ID: fmt.Sprintf("%s-%06d", k, i), ShardKey: k})
		}
	}
	cl.ProduceKeyed(t, topic, msgs)

	type span struct{ start, end time.Time }
	var (
		mu     sync.Mutex
		runs   = [2]map[string][]span{{}, {}} // per instance, per queue
		next   = [2]map[string]int{{}, {}}    // per instance, per key: next seq
		broken []string
	)
	handler := func(inst int) Handler {
		return func(_ context.Context, m *Message) error {
			q := fmt.Sprint(m.Broker, "/", m.QueueID)
			id := m.Property(rmqtest.IDProperty)
			var key string
			var seq int
			fmt.Sscanf(id[len(id)-6:], "%d", &seq)
			key = id[:len(id)-7]
			begin := time.Now()
			mu.Lock()
			if want, ok := next[inst][key]; ok && seq != want {
				broken = append(broken, fmt.Sprintf("instance %d: %s when %d was due", inst, id, want))
			}
			next[inst][key] = seq + 1
			mu.Unlock()
			time.Sleep(work)
			mu.Lock()
			runs[inst][q] = append(runs[inst][q], span{begin, time.Now()})
			mu.Unlock()
			return nil
		}
	}
	a := keyedConsumer(t, cl, group, WithInstanceName(rmqtest.Name(t, "a")))
	if err := a.Subscribe(topic, All, handler(0), WithKeyOrdered(), WithPoolSize(64)); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Watch a's queue table: when does it give each queue up?
	dropped := map[string]time.Time{}
	var held map[primitive.MessageQueue]bool
	topicQueues := func(c *Consumer) map[primitive.MessageQueue]bool {
		out := map[primitive.MessageQueue]bool{}
		for mq := range c.handover.queues() {
			if mq.Topic == topic { // not the group's retry queue
				out[mq] = true
			}
		}
		return out
	}
	if !rmqtest.WaitUntil(30*time.Second, func() bool {
		held = topicQueues(a)
		return len(held) == queues
	}) {
		t.Fatalf("a holds %d of %d queues", len(held), queues)
	}
	// b comes while a is mid-way through an intake of every queue. (The
	// hand-over learns the queues it owns once a second: a queue given up
	// before that is not unlocked, and its new owner waits for the broker's
	// lock to expire, 60 s.)
	aStarted := time.Now()
	if !rmqtest.WaitUntil(60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for mq := range held {
			if len(runs[0][fmt.Sprint(mq.BrokerName, "/", mq.QueueId)]) < 5 {
				return false
			}
		}
		return time.Since(aStarted) > 1500*time.Millisecond
	}) {
		t.Fatal("a did not consume every queue")
	}
	b := keyedConsumer(t, cl, group, WithInstanceName(rmqtest.Name(t, "b")))
	if err := b.Subscribe(topic, All, handler(1), WithKeyOrdered(), WithPoolSize(64)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	moved := rmqtest.WaitUntil(60*time.Second, func() bool {
		now := topicQueues(a)
		for mq := range held {
			q := fmt.Sprint(mq.BrokerName, "/", mq.QueueId)
			if _, ok := dropped[q]; !ok && !now[mq] {
				dropped[q] = time.Now()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		started := 0
		for q := range dropped {
			if len(runs[1][q]) >= 3 {
				started++
			}
		}
		return len(dropped) > 0 && started == len(dropped)
	})
	if !moved {
		mu.Lock()
		for q, at := range dropped {
			t.Logf("queue %s dropped by a at +%v; b ran %d messages of it", q, at.Sub(begin), len(runs[1][q]))
		}
		mu.Unlock()
		t.Fatalf("a gave up %d queues; b did not consume all of them within 60 s", len(dropped))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(broken) > 0 {
		t.Fatalf("key order broken %d times; first: %s", len(broken), broken[0])
	}
	var latest time.Duration // from a queue's drop to a's last start of it
	for q, at := range dropped {
		var lastStart, lastEnd time.Time
		for _, s := range runs[0][q] {
			lastStart, lastEnd = s.start, s.end
		}
		// One polling interval of this test (10 ms) on top.
		latest = max(latest, lastStart.Sub(at))
		if limit := at.Add(heldRefresh + 50*time.Millisecond); lastStart.After(limit) {
			t.Errorf("queue %s: a started a message %v after it gave the queue up, want at most %v",
				q, lastStart.Sub(at).Round(time.Millisecond), heldRefresh)
		}
		if first := runs[1][q][0].start; first.Before(lastEnd) {
			t.Errorf("queue %s: b started it at %v, before a finished its last message at %v: two owners at once", q, first, lastEnd)
		}
	}
	t.Logf("rebalance: a gave up %d of %d queues, its last start of one came %v after the drop (a callback of one lane is 3.2 s); b took them over",
		len(dropped), queues, latest.Round(time.Millisecond))
}
