//go:build integration

package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// tries counts handler calls and successes per message id.
type tries struct {
	mu        sync.Mutex
	calls     map[string]int
	successes map[string]int
}

func newTries() *tries { return &tries{calls: map[string]int{}, successes: map[string]int{}} }

func (tr *tries) call(id string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.calls[id]++
	return tr.calls[id]
}

func (tr *tries) succeed(id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.successes[id]++
}

func (tr *tries) get(id string) (calls, successes int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.calls[id], tr.successes[id]
}

// every calls fn(0), fn(1), ... every interval from a goroutine of its own
// until the returned stop is called; stop waits for the last call.
func every(interval time.Duration, fn func(i int)) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-t.C:
				fn(i)
			}
		}
	}()
	return func() { close(quit); <-done }
}

// createTopic creates topic on every master of cl (for names NewTopic does
// not make, such as a namespaced "ns%topic").
func createTopic(t *testing.T, cl *rmqtest.Cluster, topic string, queues int, ordered bool) {
	t.Helper()
	adm, err := admin.New([]string{cl.NameServer})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := adm.CreateTopic(ctx, topic, queues, ordered); err != nil {
		t.Fatal(err)
	}
}

// With a namespace, the client subscribes to "ns%topic" and delivers
// messages whose Topic carries the prefix. The handler, Stats and Lag see
// the plain topic; a failed message comes back through the namespaced
// retry topic and is handled again.
func TestNamespacedSubscriptionHandlesRetriesAndReportsLag(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := rmqtest.Name(t, "T")
	ns := "ns" + topic[len(topic)-8:] // the random suffix; names are limited to 127 characters
	createTopic(t, cl, ns+"%"+topic, 4, false)
	ids := cl.NewProducer(t).Produce(ns+"%"+topic, "m", 40)

	got := rmqtest.NewCollector()
	tr := newTries()
	var badTopic atomic.Value
	c := newConsumer(t, cl, cl.NewGroup(t), consumer.WithNamespace(ns))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		if m.Topic != topic {
			badTopic.Store(m.Topic)
		}
		id := m.Property(rmqtest.IDProperty)
		if tr.call(id) == 1 && strings.HasSuffix(id, "7") {
			return errors.New("fails once")
		}
		got.Add(id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	r := got.RequireAll(t, ids, 90*time.Second)
	if v := badTopic.Load(); v != nil {
		t.Fatalf("handler saw topic %q, want the plain %q", v, topic)
	}
	if r.Duplicates != 0 {
		t.Fatalf("%d duplicates, want 0", r.Duplicates)
	}
	// The counters move once each message is settled, just after its
	// handler returned: wait for them, then check they stop there.
	rmqtest.WaitUntil(10*time.Second, func() bool { s := stats(c, topic); return s.Succeeded >= 40 && s.Pool.Running == 0 })
	if s := stats(c, topic); s.Received != 44 || s.Succeeded != 40 || s.Failed != 4 {
		t.Fatalf("stats = %+v; want 44 received (40 + 4 retries), 40 succeeded, 4 failed", s)
	}
	// Lag is keyed by the plain topic and drops to 0 once offsets are
	// committed (every 5 s).
	ok := rmqtest.WaitUntil(30*time.Second, func() bool {
		lag, err := c.Lag(context.Background())
		return err == nil && lag[topic] == 0 && len(lag) >= 1
	})
	lag, err := c.Lag(context.Background())
	if !ok {
		t.Fatalf("Lag = %v, %v; want %s: 0", lag, err, topic)
	}
	for k := range lag {
		if strings.HasPrefix(k, ns+"%") {
			t.Fatalf("Lag key %q carries the namespace", k)
		}
	}
}

// A multi-message callback is settled message by message: one
// subscription's batch size makes the client hand every subscription
// callbacks of up to 8 messages, and the retry topic mixes both topics in
// one callback. A message that succeeded is never handled again because a
// neighbour failed, and only the poison message, exhausted, is
// dead-lettered.
func TestMultiMessageCallbacksSettleEachMessageOnItsOwn(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	ta, tb := cl.NewTopic(t), cl.NewTopic(t)
	p := cl.NewProducer(t)
	idsA := p.Produce(ta, "a", 60)
	idsB := p.Produce(tb, "b", 60)
	p.Send(tb, rmqtest.Msg{ID: "poison"})

	tr := newTries()
	fails := func(id string) bool { return strings.HasSuffix(id, "3") || strings.HasSuffix(id, "6") }
	c := newConsumer(t, cl, cl.NewGroup(t))
	err := c.SubscribeBatch(ta, consumer.All, func(_ context.Context, msgs []*consumer.Message) error {
		var failed []int
		for i, m := range msgs {
			id := m.Property(rmqtest.IDProperty)
			if tr.call(id) == 1 && fails(id) {
				failed = append(failed, i)
				continue
			}
			tr.succeed(id)
		}
		if failed != nil {
			return &consumer.BatchError{Failed: failed, Err: errors.New("some failed")}
		}
		return nil
	}, consumer.WithBatchSize(8))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(tb, consumer.All, func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		n := tr.call(id)
		if id == "poison" || (n == 1 && fails(id)) {
			return errors.New("fails")
		}
		tr.succeed(id)
		return nil
	}, consumer.WithMaxRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)

	all := append(append([]string(nil), idsA...), idsB...)
	done := func() bool {
		for _, id := range all {
			if _, s := tr.get(id); s == 0 {
				return false
			}
		}
		return stats(c, tb).DeadLettered == 1
	}
	if !rmqtest.WaitUntil(90*time.Second, done) {
		t.Fatalf("not every message succeeded, or poison not dead-lettered: stats %+v / %+v", stats(c, ta), stats(c, tb))
	}
	for _, id := range all {
		calls, successes := tr.get(id)
		want := 1
		if fails(id) {
			want = 2
		}
		if successes != 1 || calls != want {
			t.Errorf("%s: %d calls, %d successes; want %d calls, 1 success", id, calls, successes, want)
		}
	}
	if calls, _ := tr.get("poison"); calls != 2 {
		t.Errorf("poison tried %d times with max retries 1, want 2", calls)
	}
	if s := stats(c, ta); s.DeadLettered != 0 {
		t.Errorf("batch subscription dead-lettered %d, want 0", s.DeadLettered)
	}
}

// An orderly message that keeps failing is tried max retries + 1 times in
// place (its subscription's budget, not the consumer's), then dead-lettered
// once, and the queue moves on to the next message.
func TestOrderlyMessageIsTriedItsBudgetThenDeadLettered(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(1), rmqtest.Ordered())
	group := cl.NewGroup(t)
	cl.NewProducer(t).SendBatch(topic, rmqtest.Msg{ID: "poison"}, rmqtest.Msg{ID: "next"}) // one queue, also with a queue on each of several masters
	tr := newTries()
	var order []string
	var mu sync.Mutex
	c := newConsumer(t, cl, group, consumer.WithMaxRetries(5))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		tr.call(id)
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
		if id == "poison" {
			return errors.New("always")
		}
		tr.succeed(id)
		return nil
	}, consumer.WithOrderly(), consumer.WithOrderlySuspend(50*time.Millisecond), consumer.WithMaxRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	if !rmqtest.WaitUntil(60*time.Second, func() bool { _, s := tr.get("next"); return s == 1 }) {
		t.Fatalf("next never handled; stats %+v", stats(c, topic))
	}
	mu.Lock()
	got := strings.Join(order, ",")
	mu.Unlock()
	if got != "poison,poison,poison,next" {
		t.Fatalf("handled %s; want poison three times (max retries 2 + 1) in place, then next", got)
	}
	if s := stats(c, topic); s.DeadLettered != 1 || s.Failed != 3 {
		t.Fatalf("stats = %+v; want DeadLettered 1, Failed 3", s)
	}
	dlq := rmqtest.NewCollector()
	d := newConsumer(t, cl, cl.NewGroup(t))
	if err := d.Subscribe("%DLQ%"+group, consumer.All, collect(dlq)); err != nil {
		t.Fatal(err)
	}
	start(t, d)
	dlq.RequireAll(t, []string{"poison"}, 60*time.Second)
}

// A handler that ignores its context does not pin its queue: after the
// handler timeout and a grace second its message is handed back, the
// queue's offset moves on (lag 0 while the handler is still stuck), the
// overrun is counted, and the redelivery is handled.
func TestHandlerIgnoringItsContextDoesNotPinItsQueue(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(1))
	ids := cl.NewProducer(t).Produce(topic, "m", 20)
	stuck := ids[3]
	release := make(chan struct{})
	defer close(release)
	got := rmqtest.NewCollector()
	var stuckOnce atomic.Bool
	c := newConsumer(t, cl, cl.NewGroup(t), consumer.WithHandlerTimeout(300*time.Millisecond))
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		if id == stuck && stuckOnce.CompareAndSwap(false, true) {
			<-release // ignores ctx
		}
		got.Add(id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	got.RequireAll(t, ids, 60*time.Second)
	if s := stats(c, topic); s.Overran != 1 {
		t.Fatalf("stats = %+v, want Overran 1", s)
	}
	if !rmqtest.WaitUntil(30*time.Second, func() bool {
		lag, err := c.Lag(context.Background())
		return err == nil && lag[topic] == 0
	}) {
		lag, err := c.Lag(context.Background())
		t.Fatalf("lag = %v, %v while the stuck handler runs; want 0 (the offset must not be pinned)", lag, err)
	}
}

// Stop returns within its deadline plus 500 ms even when handlers of two
// subscriptions ignore their context, and their messages are consumed
// after a restart.
func TestStopReturnsWithinItsDeadlineWhenHandlersIgnoreTheirContext(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	t1, t2 := cl.NewTopic(t), cl.NewTopic(t)
	group := cl.NewGroup(t)
	p := cl.NewProducer(t)
	ids := append(p.Produce(t1, "x", 20), p.Produce(t2, "y", 20)...)
	release := make(chan struct{})
	defer close(release)
	var entered atomic.Int32
	hang := func(_ context.Context, m *consumer.Message) error {
		entered.Add(1)
		<-release
		return nil
	}
	c, err := consumer.New(group, consumer.WithNameServer(cl.NameServer), consumer.WithStartPosition(consumer.StartFromEarliest))
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{t1, t2} {
		if err := c.Subscribe(tp, consumer.All, hang, consumer.WithPoolSize(2)); err != nil {
			t.Fatal(err)
		}
	}
	start(t, c)
	if !rmqtest.WaitUntil(30*time.Second, func() bool { return entered.Load() == 4 }) {
		t.Fatalf("%d handlers entered, want 4", entered.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	begin := time.Now()
	if err := c.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(begin); took > 3500*time.Millisecond {
		t.Fatalf("Stop took %v with a 3 s deadline, want at most 3.5 s", took)
	}
	got := rmqtest.NewCollector()
	c2 := newConsumer(t, cl, group)
	for _, tp := range []string{t1, t2} {
		if err := c2.Subscribe(tp, consumer.All, collect(got)); err != nil {
			t.Fatal(err)
		}
	}
	start(t, c2)
	got.RequireAll(t, ids, 90*time.Second)
}

// Start and Stop, 50 times in a row, under a live backlog (a producer
// keeps sending throughout): no panic (the client's pull goroutines have no
// recover), no loss, and goleak (TestMain) finds no goroutine of rmqkit's
// left.
func TestStartStopFiftyTimesUnderALiveBacklog(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	group := cl.NewGroup(t)
	p := cl.NewProducer(t)
	var (
		idsMu sync.Mutex
		ids   = p.Produce(topic, "m", 500)
	)
	stopProducing := every(20*time.Millisecond, func(i int) {
		batch := p.Produce(topic, fmt.Sprintf("live%d-", i), 10)
		idsMu.Lock()
		ids = append(ids, batch...)
		idsMu.Unlock()
	})
	got := rmqtest.NewCollector()
	slow := func(_ context.Context, m *consumer.Message) error {
		time.Sleep(time.Millisecond) // keep a backlog
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}
	for i := range 50 {
		c, err := consumer.New(group, consumer.WithNameServer(cl.NameServer),
			consumer.WithStartPosition(consumer.StartFromEarliest), consumer.WithPoolSize(4))
		if err != nil {
			t.Fatal(err)
		}
		before := got.Total()
		if err := c.Subscribe(topic, consumer.All, slow); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		// Stop while messages are flowing.
		if !rmqtest.WaitUntil(30*time.Second, func() bool { return got.Total() >= before+20 }) {
			t.Fatalf("round %d: nothing consumed in 30 s", i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.Stop(ctx)
		cancel()
		if err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
	stopProducing()
	c := newConsumer(t, cl, group)
	if err := c.Subscribe(topic, consumer.All, collect(got)); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	idsMu.Lock()
	all := append([]string(nil), ids...)
	idsMu.Unlock()
	r := got.RequireAll(t, all, 120*time.Second)
	t.Logf("50 start/stop rounds: 0 lost of %d, %d duplicates", len(all), r.Duplicates)
}

// When a second instance joins an orderly group, the queues the first one
// gives up are unlocked at once, so the newcomer consumes them within the
// client's rebalance interval (20 s) + 5 s, not after the broker's lock
// expires (60 s). Each instance sees every key in order.
func TestOrderlyQueuesMoveToANewInstanceWithinARebalance(t *testing.T) {
	t.Parallel()
	orderlyHandover(t, true)
}

// The same when the second instance starts right after the first: the
// first gives queues up within its first second, before its hand-over had
// read the client's queue table once (they were never unlocked, and the
// second instance waited for the broker's 60 s lock expiry).
func TestOrderlyQueuesMoveWhenTwoInstancesStartTogether(t *testing.T) {
	t.Parallel()
	orderlyHandover(t, false)
}

// orderlyHandover starts two orderly instances of one group on a live
// stream, the second once the first consumed (waitFirst) or at once, and
// checks that the second consumes its half of the queues within 25 s,
// each key in order, and that no queue ever had two handlers running at
// once, in one instance or across the two (the hand-over unlocks a queue
// only once its callback has returned). Each key comes in threes and each
// handler takes a few milliseconds, so that a consumer running a queue's
// messages side by side would be caught.
func orderlyHandover(t *testing.T, waitFirst bool) {
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(8), rmqtest.Ordered())
	group := cl.NewGroup(t)
	p := cl.NewProducer(t)
	defer every(50*time.Millisecond, func(i int) {
		// One key per queue, a batch of three each (stored together, so
		// that a pull brings them together): the producer's round-robin
		// keeps each key on its queue, as every tick sends one batch per
		// key in the same order.
		for k := range 8 * len(cl.Brokers) {
			batch := make([]rmqtest.Msg, 3)
			for j := range batch {
				batch[j] = rmqtest.Msg{ID: fmt.Sprintf("k%d-%06d", k, 3*i+j), ShardKey: fmt.Sprintf("k%d", k)}
			}
			p.SendBatch(topic, batch...)
		}
	})()

	var (
		mu     sync.Mutex
		queues = map[string]bool{}            // queues the second instance consumed (broker/id)
		last   = [2]map[string]string{{}, {}} // per instance, last id per key
		seen   = [2]map[string]bool{{}, {}}   // per instance, ids handled
		// per queue (broker/id), the id whose handler runs, in either instance
		running = map[string]string{}
		broken  []string
		twice   []string // a queue's handler started while another ran
	)
	handler := func(second bool) consumer.Handler {
		return func(_ context.Context, m *consumer.Message) error {
			id := m.Property(rmqtest.IDProperty)
			key := id[:strings.IndexByte(id, '-')]
			q := fmt.Sprint(m.Broker, "/", m.QueueID)
			mu.Lock()
			if other, busy := running[q]; busy {
				twice = append(twice, fmt.Sprintf("%s started on queue %s while %s ran", id, q, other))
			}
			running[q] = id
			mu.Unlock()
			time.Sleep(3 * time.Millisecond) // the handler's work: long enough for a side-by-side run to overlap it
			mu.Lock()
			defer mu.Unlock()
			delete(running, q)
			// Each instance sees a key in order. The newcomer may begin
			// below what the first one handled (offsets are committed every
			// 5 s), and an instance whose queue comes back to it in a
			// rebalance begins again at the committed offset: at-least-once
			// redelivery, in order. Going back is a replay only to an id the
			// instance has handled; an id it never saw coming after a
			// later one is order broken.
			inst := 0
			if second {
				inst = 1
			}
			if prev := last[inst][key]; prev > id && !seen[inst][id] {
				broken = append(broken, prev+" before "+id)
			}
			last[inst][key] = id
			seen[inst][id] = true
			if second {
				queues[q] = true
			}
			return nil
		}
	}
	first := newConsumer(t, cl, group, consumer.WithInstanceName(rmqtest.Name(t, "i1")))
	if err := first.Subscribe(topic, consumer.All, handler(false), consumer.WithOrderly()); err != nil {
		t.Fatal(err)
	}
	start(t, first)
	if waitFirst && !rmqtest.WaitUntil(30*time.Second, func() bool { return stats(first, topic).Succeeded > 50 }) {
		t.Fatal("first instance consumed nothing")
	}
	second := newConsumer(t, cl, group, consumer.WithInstanceName(rmqtest.Name(t, "i2")))
	if err := second.Subscribe(topic, consumer.All, handler(true), consumer.WithOrderly()); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	start(t, second)
	// Averaged allocation gives the newcomer 4 of the 8 queues (of each master).
	want := 4 * len(cl.Brokers)
	moved := rmqtest.WaitUntil(45*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(queues) >= want
	})
	took := time.Since(begin)
	mu.Lock()
	n, order, overlaps := len(queues), append([]string(nil), broken...), append([]string(nil), twice...)
	mu.Unlock()
	if !moved || took > 25*time.Second {
		t.Fatalf("second instance consumed %d queues after %v; want %d within 25 s (rebalance interval + 5 s)", n, took.Round(time.Millisecond), want)
	}
	if len(order) > 0 {
		t.Fatalf("order per key broken %d times, first %s", len(order), order[0])
	}
	if len(overlaps) > 0 {
		t.Fatalf("two handlers ran at once on one queue %d times, first: %s", len(overlaps), overlaps[0])
	}
	t.Logf("orderly hand-over: the new instance consumed its %d queues %v after it started", want, took.Round(time.Millisecond))
}

// Lag never reports 0 for a topic the brokers have no figures for: it
// names the topic in an error wrapping ErrNoLag.
func TestLagErrsInsteadOfReportingZeroWithoutFigures(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	consumed, never := cl.NewTopic(t), cl.NewTopic(t)
	group := cl.NewGroup(t)
	ids := cl.NewProducer(t).Produce(consumed, "m", 10)
	got := rmqtest.NewCollector()
	c := newConsumer(t, cl, group)
	if err := c.Subscribe(consumed, consumer.All, collect(got)); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	got.RequireAll(t, ids, 60*time.Second)
	// Another consumer of the group, not started, that also names a topic
	// the group never consumed.
	idle := newConsumer(t, cl, group)
	for _, tp := range []string{consumed, never} {
		if err := idle.Subscribe(tp, consumer.All, collect(rmqtest.NewCollector())); err != nil {
			t.Fatal(err)
		}
	}
	if !rmqtest.WaitUntil(30*time.Second, func() bool {
		lag, err := idle.Lag(context.Background())
		_, reported := lag[never]
		return errors.Is(err, consumer.ErrNoLag) && strings.Contains(err.Error(), never) && !reported && lag[consumed] == 0
	}) {
		lag, err := idle.Lag(context.Background())
		t.Fatalf("Lag = %v, %v; want %s: 0 and an ErrNoLag error naming %s", lag, err, consumed, never)
	}
}

// All subscriptions of a group share its retry queue. One subscription
// whose redeliveries hang must not hold back another's retries: once it
// is saturated, its further redeliveries are deferred (handed back with a
// delay) instead of filling the retry queue's prefetch share.
func TestHangingRetriesOfOneSubscriptionDoNotHoldBackAnothers(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	ta, tb := cl.NewTopic(t), cl.NewTopic(t)
	p := cl.NewProducer(t)
	p.Produce(ta, "a", 1200)
	var aFirst atomic.Int64
	c := newConsumer(t, cl, cl.NewGroup(t), consumer.WithHandlerTimeout(3*time.Minute), quiet())
	err := c.Subscribe(ta, consumer.All, func(ctx context.Context, m *consumer.Message) error {
		if m.ReconsumeCount == 0 {
			aFirst.Add(1)
			return errors.New("fails, then hangs on every redelivery")
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	got := rmqtest.NewCollector()
	err = c.Subscribe(tb, consumer.All, func(_ context.Context, m *consumer.Message) error {
		if m.ReconsumeCount == 0 {
			return errors.New("fails once")
		}
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	if !rmqtest.WaitUntil(60*time.Second, func() bool { return aFirst.Load() >= 1200 }) {
		t.Fatalf("only %d of a's 1200 first deliveries", aFirst.Load())
	}
	// b's retries enter the retry queue behind a's.
	ids := p.Produce(tb, "b", 200)
	got.RequireAll(t, ids, 90*time.Second)
	if s := stats(c, ta); s.Deferred == 0 {
		t.Fatalf("a's stats = %+v; want redeliveries deferred", s)
	}
	t.Logf("b's 200 retries all handled beside a's hanging ones; a deferred %d redeliveries", stats(c, ta).Deferred)
}
