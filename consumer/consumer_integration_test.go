//go:build integration

package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// newConsumer returns a consumer of a fresh group on cl, reading from the
// earliest offset, stopped at the end of the test.
func newConsumer(t *testing.T, cl *rmqtest.Cluster, group string, opts ...consumer.Option) *consumer.Consumer {
	t.Helper()
	base := []consumer.Option{
		consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
	}
	c, err := consumer.New(group, append(base, opts...)...)
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

func start(t *testing.T, c *consumer.Consumer) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func collect(got *rmqtest.Collector) consumer.Handler {
	return func(_ context.Context, m *consumer.Message) error {
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}
}

func stats(c *consumer.Consumer, topic string) consumer.SubscriptionStats {
	for _, s := range c.Stats() {
		if s.Topic == topic {
			return s
		}
	}
	return consumer.SubscriptionStats{}
}

// gauge tracks how many handler calls run at once and the peak.
type gauge struct{ cur, peak atomic.Int64 }

func (g *gauge) enter() {
	c := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if c <= p || g.peak.CompareAndSwap(p, c) {
			return
		}
	}
}
func (g *gauge) leave()     { g.cur.Add(-1) }
func (g *gauge) reset()     { g.peak.Store(g.cur.Load()) }
func (g *gauge) max() int64 { return g.peak.Load() }

func TestConsumerReceivesEveryMessageOnce(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	ids := cl.NewProducer(t).Produce(topic, "m", 1000)
	got := rmqtest.NewCollector()
	c := newConsumer(t, cl, cl.NewGroup(t))
	if err := c.Subscribe(topic, consumer.All, collect(got)); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	r := got.RequireAll(t, ids, 60*time.Second)
	if r.Duplicates != 0 {
		t.Errorf("duplicates = %d in a fault-free run", r.Duplicates)
	}
	// The handler records an id before it returns; the success is counted
	// just after, so the last one may still be on its way.
	rmqtest.WaitUntil(5*time.Second, func() bool { return stats(c, topic).Succeeded >= 1000 })
	if s := stats(c, topic); s.Succeeded != 1000 || s.Failed != 0 {
		t.Errorf("stats = %+v, want 1000 succeeded, none failed", s)
	}
}

// (a) A subscription whose handler blocks and saturates its pool does not
// slow a second subscription of the same consumer.
func TestSlowSubscriptionDoesNotStarveAnother(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	slowTopic, fastTopic := cl.NewTopic(t), cl.NewTopic(t)
	p := cl.NewProducer(t)
	slowIDs := p.Produce(slowTopic, "slow", 200)
	fastIDs := p.Produce(fastTopic, "fast", 1000)

	release := make(chan struct{})
	slow := rmqtest.NewCollector()
	fast := rmqtest.NewCollector()
	c := newConsumer(t, cl, cl.NewGroup(t))
	err := c.Subscribe(slowTopic, consumer.All, func(ctx context.Context, m *consumer.Message) error {
		select { // stuck until the fast side is done
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		slow.Add(m.Property(rmqtest.IDProperty))
		return nil
	}, consumer.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(fastTopic, consumer.All, collect(fast), consumer.WithPoolSize(4)); err != nil {
		t.Fatal(err)
	}
	start(t, c)

	began := time.Now()
	fast.RequireAll(t, fastIDs, 30*time.Second)
	t.Logf("fast subscription consumed %d messages in %v beside a stuck one", len(fastIDs), time.Since(began))
	// The slow side was stuck, not merely late: its pool is saturated.
	if !rmqtest.WaitUntil(30*time.Second, func() bool {
		s := stats(c, slowTopic)
		return s.Pool.Running == 2 && s.Pool.Waiting > 0
	}) {
		t.Fatalf("slow pool = %+v, want 2 running and messages waiting (saturated)", stats(c, slowTopic).Pool)
	}
	close(release)
	slow.RequireAll(t, slowIDs, 60*time.Second)
}

// (b) Resizing a pool from 2 to 16 raises the measured concurrency, and
// shrinking it lowers it again, without loss or duplicates.
func TestResizeChangesConcurrencyWithoutLossOrDuplicates(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(8))
	ids := cl.NewProducer(t).Produce(topic, "r", 3000)
	got := rmqtest.NewCollector()
	var g gauge
	c := newConsumer(t, cl, cl.NewGroup(t))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		g.enter()
		defer g.leave()
		time.Sleep(30 * time.Millisecond)
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}, consumer.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)

	phase := func(size int, d time.Duration) int64 {
		if err := c.SetPoolSize(topic, size); err != nil {
			t.Fatal(err)
		}
		// Running handlers of a larger old size finish.
		if !rmqtest.WaitUntil(5*time.Second, func() bool { return g.cur.Load() <= int64(size) }) {
			t.Fatalf("%d handlers still running 5 s after resizing to %d", g.cur.Load(), size)
		}
		g.reset()
		time.Sleep(d) // the measuring window
		return g.max()
	}
	at2 := phase(2, 1500*time.Millisecond)
	at16 := phase(16, 1500*time.Millisecond)
	back := phase(3, 1500*time.Millisecond)
	t.Logf("peak concurrency: size 2 -> %d, size 16 -> %d, size 3 -> %d", at2, at16, back)
	if at2 > 2 || at16 < 12 || at16 > 16 || back > 3 {
		t.Fatalf("peak concurrency 2:%d 16:%d 3:%d does not follow the pool size", at2, at16, back)
	}
	r := got.RequireAll(t, ids, 120*time.Second)
	if r.Duplicates != 0 {
		t.Fatalf("resizing caused %d duplicates", r.Duplicates)
	}
}

// (c) An orderly subscription keeps per-queue (per sharding key) order
// through the pool, and a failed message is retried in place, not skipped.
func TestOrderlySubscriptionKeepsOrderAndRetriesInPlace(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4), rmqtest.Ordered())
	p := cl.NewProducer(t)
	const keys, perKey = 8, 40
	var all []string
	for i := range perKey {
		for k := range keys {
			id := fmt.Sprintf("k%d-%03d", k, i)
			all = append(all, id)
			p.Send(topic, rmqtest.Msg{ID: id, ShardKey: fmt.Sprintf("k%d", k)})
		}
	}
	var mu sync.Mutex
	seen := map[string][]string{} // key -> ids in delivery order
	var failedOnce atomic.Bool
	got := rmqtest.NewCollector()
	c := newConsumer(t, cl, cl.NewGroup(t))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		if id == "k3-010" && failedOnce.CompareAndSwap(false, true) {
			return errors.New("transient failure")
		}
		mu.Lock()
		seen[id[:2]] = append(seen[id[:2]], id)
		mu.Unlock()
		got.Add(id)
		return nil
	}, consumer.WithOrderly(), consumer.WithOrderlySuspend(200*time.Millisecond), consumer.WithPoolSize(4))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	got.RequireAll(t, all, 90*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for k, ids := range seen {
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("key %s out of order at %d: %s after %s", k, i, ids[i], ids[i-1])
			}
		}
	}
	if !failedOnce.Load() {
		t.Fatal("the failure was never injected")
	}
}

// (d) A handler error or panic has the message redelivered through the
// retry topic; the redelivery succeeds and carries the reconsume count.
func TestFailedMessageIsRedeliveredAndThenSucceeds(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	p := cl.NewProducer(t)
	p.Send(topic, rmqtest.Msg{ID: "err"}, rmqtest.Msg{ID: "panic"}, rmqtest.Msg{ID: "ok"})
	got := rmqtest.NewCollector()
	var mu sync.Mutex
	reconsume := map[string][]int{}
	c := newConsumer(t, cl, cl.NewGroup(t))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		mu.Lock()
		reconsume[id] = append(reconsume[id], m.ReconsumeCount)
		mu.Unlock()
		if m.ReconsumeCount == 0 {
			switch id {
			case "err":
				return errors.New("downstream unavailable")
			case "panic":
				panic("handler bug")
			}
		}
		got.Add(id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	got.RequireAll(t, []string{"err", "panic", "ok"}, 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{"err", "panic"} {
		if r := reconsume[id]; len(r) != 2 || r[0] != 0 || r[1] != 1 {
			t.Errorf("%s delivered with reconsume counts %v, want [0 1]", id, r)
		}
	}
	s := stats(c, topic)
	if s.Failed != 2 || s.Pool.Panicked != 1 {
		t.Errorf("stats = %+v, want 2 failed of which 1 panicked", s)
	}
}

// A handler that always fails ends in the dead-letter queue after the
// retry limit, instead of looping.
func TestAlwaysFailingMessageEndsInDeadLetterQueue(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	group := cl.NewGroup(t)
	cl.NewProducer(t).Send(topic, rmqtest.Msg{ID: "poison"})
	var attempts atomic.Int32
	c := newConsumer(t, cl, group)
	err := c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		attempts.Add(1)
		return errors.New("always")
	}, consumer.WithMaxRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)

	// The dead-letter topic of the group is readable like any topic.
	dlq := rmqtest.NewCollector()
	d := newConsumer(t, cl, cl.NewGroup(t))
	if err := d.Subscribe("%DLQ%"+group, consumer.All, collect(dlq)); err != nil {
		t.Fatal(err)
	}
	if !rmqtest.WaitUntil(90*time.Second, func() bool { return stats(c, topic).DeadLettered > 0 }) {
		t.Fatalf("not dead-lettered after 90 s: %+v", stats(c, topic))
	}
	start(t, d)
	dlq.RequireAll(t, []string{"poison"}, 60*time.Second)
	if n := attempts.Load(); n != 2 {
		t.Fatalf("%d attempts with max retries 1, want 2", n)
	}
}

// (e) Stop with messages in flight lets running handlers finish and loses
// nothing: what was not handled is consumed after a restart.
func TestStopWithMessagesInFlightLosesNone(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	group := cl.NewGroup(t)
	ids := cl.NewProducer(t).Produce(topic, "s", 400)
	got := rmqtest.NewCollector()
	var started, finished atomic.Int32
	slow := func(_ context.Context, m *consumer.Message) error {
		started.Add(1)
		time.Sleep(50 * time.Millisecond)
		got.Add(m.Property(rmqtest.IDProperty))
		finished.Add(1)
		return nil
	}
	first := newConsumer(t, cl, group)
	if err := first.Subscribe(topic, consumer.All, slow, consumer.WithPoolSize(4)); err != nil {
		t.Fatal(err)
	}
	start(t, first)
	if !rmqtest.WaitUntil(60*time.Second, func() bool { return got.Distinct() >= 40 }) {
		t.Fatalf("%d handled in 60 s, want 40 before stopping", got.Distinct())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if s, f := started.Load(), finished.Load(); s != f {
		t.Fatalf("Stop returned with %d handlers started and %d finished", s, f)
	}
	s := stats(first, topic)
	t.Logf("first consumer: %d handled, %d abandoned at stop", s.Succeeded, s.Abandoned)
	if s.Abandoned == 0 {
		t.Fatal("no message was in flight at Stop: the test proves nothing")
	}

	second := newConsumer(t, cl, group)
	if err := second.Subscribe(topic, consumer.All, slow, consumer.WithPoolSize(16)); err != nil {
		t.Fatal(err)
	}
	start(t, second)
	r := got.RequireAll(t, ids, 90*time.Second)
	t.Logf("after restart: 0 lost, %d duplicates (at-least-once)", r.Duplicates)
}

// (f) A handler slower than the client's ConsumeTimeout (set low here) is
// not re-sent by the client while it still runs: no duplicates.
func TestHandlerSlowerThanClientConsumeTimeoutCausesNoDuplicates(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(2))
	ids := cl.NewProducer(t).Produce(topic, "f", 12)
	got := rmqtest.NewCollector()
	// The client logs every message it sends back as expired, by topic.
	sentBack := rmqtest.WatchClientLog(t, "send expire msg back", topic)
	c := newConsumer(t, cl, cl.NewGroup(t), consumer.WithClientConsumeTimeout(2*time.Second))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		time.Sleep(3 * time.Second) // handling and waiting for a worker both exceed 2s
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}, consumer.WithPoolSize(3))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	got.RequireAll(t, ids, 60*time.Second)
	// A message sent back would come again after the retry delay (10 s);
	// that it was sent back shows at once in the client's log. Once all
	// are handled, none is left to send back.
	if sentBack.Happened() {
		t.Fatal("the client sent a message still being handled back to the broker (ConsumeTimeout)")
	}
	if r := got.Check(ids); r.Duplicates != 0 {
		t.Fatalf("%d duplicates from the client's consume timeout", r.Duplicates)
	}
}

// A stalled pool must not stop the client's pull loop for 120 s, or the
// client drops the queue (_PullMaxIdleTime, checked by the rebalance every
// 20 s) and re-consumes it from the committed offset: results of the
// callbacks still running are discarded, so they come again.
//
// The set-up is the cheapest that traps a plain client with its defaults: a
// consumer that is caught up receives a trickle of messages (one per pull)
// while every callback blocks. The 20 callbacks (ConsumeGoroutineNums) fill
// the topic's slots, the dispatcher blocks on the 21st message, the 32
// batches of msgCh fill, and the pull loop blocks putting the next batch,
// after some 54 messages: below every flow-control limit (per-queue count
// 102400, ConsumeConcurrentlyMaxSpan 1000), so nothing refreshes
// lastPullTime. (A backlog pulled 32 at a time would hit the span limit
// first, whose flow control keeps the queue alive.) rmqkit, with its
// defaults and the same handler, must keep the queue: its callbacks never
// block the client's dispatcher. Both run side by side; the plain one
// shows that the set-up does trigger the drop.
func TestStalledPoolDoesNotTriggerIdleQueueDrop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 2.5 minutes")
	}
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	const (
		n    = 200
		drop = "remove unnecessary mq because pull was expired"
		// The pull loop blocks within a second or two of the first
		// message; the queue is dropped at the first rebalance (every
		// 20 s) after 120 s without a pull.
		limit = 155 * time.Second
	)

	// trickle sends ids one by one, each once the previous may have been
	// pulled alone, after the consumer took the first.
	trickle := func(t *testing.T, topic string, entered *atomic.Int32) []string {
		p := cl.NewProducer(t)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("stall-%03d", i)
		}
		p.Send(topic, rmqtest.Msg{ID: ids[0]})
		if !rmqtest.WaitUntil(60*time.Second, func() bool { return entered.Load() > 0 }) {
			t.Fatal("the consumer took no message within 60 s")
		}
		for _, id := range ids[1:] {
			p.Send(topic, rmqtest.Msg{ID: id})
			time.Sleep(5 * time.Millisecond) // pacing, so that pulls find one message each
		}
		return ids
	}

	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		topic := cl.NewTopic(t, rmqtest.Queues(1))
		got := rmqtest.NewCollector()
		release := make(chan struct{})
		var entered atomic.Int32
		group := cl.StartPlainConsumerFunc(t, topic, func(_ context.Context, msgs ...*primitive.MessageExt) (rmq.ConsumeResult, error) {
			entered.Add(1)
			<-release
			for _, m := range msgs {
				got.Add(m.GetProperty(rmqtest.IDProperty))
			}
			return rmq.ConsumeSuccess, nil
		}, rmq.WithConsumeFromWhere(rmq.ConsumeFromFirstOffset))
		dropped := rmqtest.WatchClientLog(t, drop, group)
		began := time.Now()
		ids := trickle(t, topic, &entered)
		select {
		case <-dropped.Seen():
			t.Logf("plain client dropped its idle queue after %v", time.Since(began).Round(time.Second))
		case <-time.After(limit - time.Since(began)):
		}
		close(release)
		if !dropped.Happened() {
			t.Fatalf("the plain client kept its queue for %v: the set-up does not trigger the idle-queue drop", limit)
		}
		got.RequireAll(t, ids, 60*time.Second)
		if !rmqtest.WaitUntil(30*time.Second, func() bool { return got.Check(ids).Duplicates > 0 }) {
			t.Fatal("the plain client dropped its queue but redelivered nothing")
		}
		t.Logf("plain client: %d duplicates", got.Check(ids).Duplicates)
	})

	t.Run("rmqkit", func(t *testing.T) {
		t.Parallel()
		topic := cl.NewTopic(t, rmqtest.Queues(1))
		got := rmqtest.NewCollector()
		release := make(chan struct{})
		var entered atomic.Int32
		group := cl.NewGroup(t)
		dropped := rmqtest.WatchClientLog(t, drop, group)
		c := newConsumer(t, cl, group, consumer.WithHandlerTimeout(10*time.Minute))
		err := c.Subscribe(topic, consumer.All, func(ctx context.Context, m *consumer.Message) error {
			entered.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			got.Add(m.Property(rmqtest.IDProperty))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		start(t, c)
		began := time.Now()
		ids := trickle(t, topic, &entered)
		select { // long enough for the client to drop a queue stalled since the start
		case <-dropped.Seen():
		case <-time.After(limit - time.Since(began)):
		}
		close(release)
		if dropped.Happened() {
			t.Errorf("the client dropped rmqkit's queue after %v of stalled handlers", time.Since(began).Round(time.Second))
		}
		got.RequireAll(t, ids, 60*time.Second)
		// Redelivered copies would follow the first deliveries at once;
		// the consumer's own count says when every success was counted.
		rmqtest.WaitUntil(10*time.Second, func() bool { return stats(c, topic).Succeeded >= n })
		if r := got.Check(ids); r.Duplicates != 0 || dropped.Happened() {
			t.Fatalf("%d duplicates after a long stall (queue dropped: %v)", r.Duplicates, dropped.Happened())
		}
	})
}

// Lag reports what the broker holds beyond the group's committed offsets:
// everything before consumption, nothing once it is done and committed.
func TestLagFollowsConsumption(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	ids := cl.NewProducer(t).Produce(topic, "lag", 300)
	got := rmqtest.NewCollector()
	group := cl.NewGroup(t)
	c := newConsumer(t, cl, group, quiet())
	if err := c.Subscribe(topic, consumer.All, collect(got)); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	got.RequireAll(t, ids, 60*time.Second)
	deadline := time.Now().Add(30 * time.Second) // offsets are committed every 5 s
	for {
		lag, err := c.Lag(context.Background())
		if errors.Is(err, consumer.ErrNoLag) && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond) // no offset committed yet
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if lag[topic] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag of %s = %d after consuming everything, want 0", topic, lag[topic])
		}
		time.Sleep(500 * time.Millisecond)
	}

	// New messages while nobody consumes them show up as lag.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lag(context.Background()); !errors.Is(err, consumer.ErrStopped) {
		t.Fatalf("Lag after Stop = %v, want ErrStopped (Stop closes the consumer's admin connection)", err)
	}
	// A consumer that is not started reads the group's lag too.
	idle, err := consumer.New(group, consumer.WithNameServer(cl.NameServer))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Stop(context.Background())
	if err := idle.Subscribe(topic, consumer.All, collect(rmqtest.NewCollector())); err != nil {
		t.Fatal(err)
	}
	cl.NewProducer(t).Produce(topic, "more", 50)
	deadline = time.Now().Add(10 * time.Second)
	for {
		lag, err := idle.Lag(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if lag[topic] == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag of %s = %d with 50 unconsumed, want 50", topic, lag[topic])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
