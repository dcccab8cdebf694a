package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/pool"
)

// fakeClient stands in for the push consumer where only dispatch logic is
// under test; everything about real consumption is tested on the broker.
type fakeClient struct {
	shutdown   chan struct{}
	onShutdown func() // called first, if set
}

func (f *fakeClient) Start() error { return nil }
func (f *fakeClient) Suspend()     {}
func (f *fakeClient) Shutdown() error {
	if f.onShutdown != nil {
		f.onShutdown()
	}
	close(f.shutdown)
	return nil
}
func (f *fakeClient) PersistConsumerOffset() error { return nil }
func (f *fakeClient) Subscribe(string, rmq.MessageSelector, func(context.Context, ...*primitive.MessageExt) (rmq.ConsumeResult, error)) error {
	return nil
}

// running returns a consumer in the running state over a fake client, with
// one subscription to topic "t".
func running(t testing.TB, h Handler, opts []Option, sopts ...SubscribeOption) *Consumer {
	t.Helper()
	return runningWith(t, opts, func(c *Consumer) error { return c.Subscribe("t", All, h, sopts...) })
}

// runningBatch is running for a batch handler.
func runningBatch(t testing.TB, h BatchHandler, opts []Option, sopts ...SubscribeOption) *Consumer {
	t.Helper()
	return runningWith(t, opts, func(c *Consumer) error { return c.SubscribeBatch("t", All, h, sopts...) })
}

func runningWith(t testing.TB, opts []Option, subscribe func(*Consumer) error) *Consumer {
	t.Helper()
	c, err := New("g", append([]Option{WithNameServer("127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := subscribe(c); err != nil {
		t.Fatal(err)
	}
	c.client = &fakeClient{shutdown: make(chan struct{})}
	c.backer = &fakeBroker{}
	c.state = stateRunning
	c.renewDone = make(chan struct{})
	go c.renewLeases(c.cfg.consumeTimeout/3, c.renewDone)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

// fakeBroker records the messages rmqkit hands back.
type fakeBroker struct {
	mu       sync.Mutex
	sent     []admin.SendBack
	err      error
	refusals int // calls answered with err
}

func (f *fakeBroker) SendMessageBack(_ context.Context, sb admin.SendBack) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		f.refusals++
		return f.err
	}
	f.sent = append(f.sent, sb)
	return nil
}

func (f *fakeBroker) handedBack() []admin.SendBack {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]admin.SendBack(nil), f.sent...)
}

func broker(c *Consumer) *fakeBroker { return c.backer.(*fakeBroker) }

func ext(id string, reconsume int32) *primitive.MessageExt {
	m := &primitive.MessageExt{Message: primitive.Message{Topic: "t", Body: []byte("body")}, MsgId: id, ReconsumeTimes: reconsume}
	m.WithProperty("k", "v")
	return m
}

func concurrentCtx() (context.Context, *primitive.ConsumeConcurrentlyContext) {
	cc := primitive.NewConsumeConcurrentlyContext()
	return primitive.WithConcurrentlyCtx(context.Background(), cc), cc
}

// A failed message is handed back to the broker by rmqkit itself, with its
// subscription's retry budget, and the callback is acknowledged.
func TestFailedMessageIsHandedBackWithTheSubscriptionsBudget(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		h         Handler
		reconsume int32
		wantBack  int // messages handed back
		wantDelay int
		wantDLQ   uint64
	}{
		{"nil acknowledges", func(context.Context, *Message) error { return nil }, 0, 0, 0, 0},
		{"error is handed back with the broker's back-off", func(context.Context, *Message) error { return boom }, 0, 1, 0, 0},
		{"panic is handed back", func(context.Context, *Message) error { panic("x") }, 0, 1, 0, 0},
		{"error on the last try dead-letters", func(context.Context, *Message) error { return boom }, 3, 1, -1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := running(t, tt.h, []Option{WithMaxRetries(7)}, WithMaxRetries(3))
			ctx, _ := concurrentCtx()
			got, err := c.consume(ctx, ext("id", tt.reconsume))
			if got != rmq.ConsumeSuccess || err != nil {
				t.Fatalf("consume = (%v, %v), want (ConsumeSuccess, nil)", got, err)
			}
			back := broker(c).handedBack()
			if len(back) != tt.wantBack {
				t.Fatalf("handed back %d messages, want %d", len(back), tt.wantBack)
			}
			if tt.wantBack > 0 && (back[0].DelayLevel != tt.wantDelay || back[0].MaxReconsumeTimes != 3 || back[0].OriginMsgID != "id" || back[0].Group != "g") {
				t.Fatalf("hand-back = %+v, want delay %d, budget 3 (the subscription's), id, group g", back[0], tt.wantDelay)
			}
			if st := c.Stats()[0]; st.DeadLettered != tt.wantDLQ {
				t.Fatalf("DeadLettered = %d, want %d", st.DeadLettered, tt.wantDLQ)
			}
		})
	}
}

// The client acknowledges or retries a callback as a whole: rmqkit settles
// each message, so a neighbour's failure never redelivers or dead-letters
// a message that succeeded.
func TestMultiMessageCallbackSettlesEachMessageOnItsOwn(t *testing.T) {
	c := running(t, func(_ context.Context, m *Message) error {
		if m.ID == "ok" {
			return nil
		}
		return errors.New("no")
	}, nil, WithMaxRetries(2))
	ctx, _ := concurrentCtx()
	got, _ := c.consume(ctx, ext("first-failure", 0), ext("ok", 0), ext("exhausted", 2))
	if got != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess (failures handed back by rmqkit)", got)
	}
	back := broker(c).handedBack()
	if len(back) != 2 || back[0].OriginMsgID != "first-failure" || back[0].DelayLevel != 0 ||
		back[1].OriginMsgID != "exhausted" || back[1].DelayLevel != -1 {
		t.Fatalf("handed back %+v; want first-failure for a retry, exhausted to the DLQ, nothing else", back)
	}
	if st := c.Stats()[0]; st.Succeeded != 1 || st.Failed != 2 || st.DeadLettered != 1 {
		t.Fatalf("stats = %+v, want 1 succeeded, 2 failed, 1 dead-lettered", st)
	}
}

// A hand-back that fails fails the callback: the client redelivers it.
func TestFailedHandBackLeavesTheRetryToTheClient(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return errors.New("no") }, nil)
	broker(c).err = errors.New("broker down")
	ctx, _ := concurrentCtx()
	if got, _ := c.consume(ctx, ext("id", 0)); got != rmq.ConsumeRetryLater {
		t.Fatalf("consume = %v, want ConsumeRetryLater", got)
	}
}

func TestNamespacedTopicReachesItsHandlerUnderItsPlainName(t *testing.T) {
	var got string
	c := running(t, func(_ context.Context, m *Message) error { got = m.Topic; return nil }, []Option{WithNamespace("ns")})
	m := ext("id", 0)
	m.Topic = "ns%t" // as the client delivers it
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, m); r != rmq.ConsumeSuccess || got != "t" {
		t.Fatalf("consume = %v, handler saw topic %q; want ConsumeSuccess and \"t\"", r, got)
	}
	if st := c.Stats()[0]; st.Received != 1 || st.Succeeded != 1 {
		t.Fatalf("stats = %+v, want the message counted", st)
	}
}

func TestMessageOfNoSubscriptionIsCountedAndLeftToTheClient(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return nil }, nil)
	m := ext("id", 0)
	m.Topic = "other"
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, m); r != rmq.ConsumeRetryLater || c.unrouted.Load() != 1 {
		t.Fatalf("consume = %v, unrouted %d; want ConsumeRetryLater, 1", r, c.unrouted.Load())
	}
}

func TestBatchHandlerCanFailSomeMessagesOnly(t *testing.T) {
	c := runningBatch(t, func(_ context.Context, msgs []*Message) error {
		return &BatchError{Failed: []int{1}, Err: errors.New("second is bad")}
	}, nil, WithBatchSize(3))
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, ext("a", 0), ext("b", 0), ext("c", 0)); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess", r)
	}
	if back := broker(c).handedBack(); len(back) != 1 || back[0].OriginMsgID != "b" {
		t.Fatalf("handed back %+v, want only b", back)
	}
	if st := c.Stats()[0]; st.Succeeded != 2 || st.Failed != 1 {
		t.Fatalf("stats = %+v, want 2 succeeded, 1 failed", st)
	}
}

func TestBatchHandlerPanicFailsTheWholeBatch(t *testing.T) {
	c := runningBatch(t, func(context.Context, []*Message) error { panic("boom") }, nil, WithBatchSize(2))
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, ext("a", 0), ext("b", 0)); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess", r)
	}
	if back := broker(c).handedBack(); len(back) != 2 {
		t.Fatalf("handed back %d, want both", len(back))
	}
}

// A handler that ignores its context is not waited for past its timeout
// and a grace second: its message is handed back and the overrun counted.
func TestHandlerIgnoringItsContextIsNotWaitedForPastItsHold(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := running(t, func(context.Context, *Message) error { <-release; return nil }, []Option{WithHandlerTimeout(50 * time.Millisecond)})
	ctx, _ := concurrentCtx()
	start := time.Now()
	r, _ := c.consume(ctx, ext("stuck", 0))
	if took := time.Since(start); r != rmq.ConsumeSuccess || took > 50*time.Millisecond+holdGrace+500*time.Millisecond {
		t.Fatalf("consume = %v after %v; want ConsumeSuccess within the hold", r, took)
	}
	if back := broker(c).handedBack(); len(back) != 1 {
		t.Fatalf("handed back %d, want the stuck message", len(back))
	}
	if st := c.Stats()[0]; st.Overran != 1 || st.Failed != 1 {
		t.Fatalf("stats = %+v, want Overran 1, Failed 1", st)
	}
}

// A closed shared pool fails its messages at once (handed back), it never
// parks their callbacks until Stop.
func TestClosedSharedPoolFailsItsMessages(t *testing.T) {
	p, err := pool.New("shared", 2)
	if err != nil {
		t.Fatal(err)
	}
	c := running(t, func(context.Context, *Message) error { return nil }, nil, WithSharedPool(p))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, ext("id", 0)); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess (handed back)", r)
	}
	if back := broker(c).handedBack(); len(back) != 1 {
		t.Fatalf("handed back %d, want 1", len(back))
	}
	if st := c.Stats()[0]; st.Failed != 1 || st.Abandoned != 0 {
		t.Fatalf("stats = %+v, want Failed 1, Abandoned 0", st)
	}
}

func TestOrderlyFailureSuspendsTheQueueInsteadOfRetryLater(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return errors.New("no") }, nil, WithOrderly(), WithOrderlySuspend(250*time.Millisecond))
	oc := primitive.NewConsumeOrderlyContext()
	got, _ := c.consume(primitive.WithOrderlyCtx(context.Background(), oc), ext("id", 0))
	if got != rmq.SuspendCurrentQueueAMoment || oc.SuspendCurrentQueueTimeMillis != 250 {
		t.Fatalf("orderly failure = %v with suspend %d ms; want SuspendCurrentQueueAMoment, 250 ms", got, oc.SuspendCurrentQueueTimeMillis)
	}
}

// An orderly message is retried in place (never past it) until it has had
// its subscription's tries, max retries + 1 as in concurrent mode; then
// rmqkit dead-letters it and the queue moves on.
func TestOrderlyMessageIsDeadLetteredAfterItsLastTry(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return errors.New("no") }, nil, WithOrderly(), WithMaxRetries(2))
	for reconsume, want := range []rmq.ConsumeResult{rmq.SuspendCurrentQueueAMoment, rmq.SuspendCurrentQueueAMoment, rmq.ConsumeSuccess} {
		got, _ := c.consume(primitive.WithOrderlyCtx(context.Background(), primitive.NewConsumeOrderlyContext()), ext("id", int32(reconsume)))
		if got != want {
			t.Fatalf("try %d: %v, want %v", reconsume+1, got, want)
		}
	}
	back := broker(c).handedBack()
	if len(back) != 1 || back[0].DelayLevel != -1 {
		t.Fatalf("handed back %+v, want one message to the DLQ", back)
	}
	if st := c.Stats()[0]; st.DeadLettered != 1 || st.Failed != 3 {
		t.Fatalf("stats = %+v, want DeadLettered 1 (counted once), Failed 3", st)
	}
}

// In an orderly callback of several messages, the messages after a failed
// one are not handled: they are delivered again, in order, after it.
func TestOrderlyFailureStopsTheRestOfTheCallback(t *testing.T) {
	var seen []string
	c := running(t, func(_ context.Context, m *Message) error {
		seen = append(seen, m.ID)
		if m.ID == "2" {
			return errors.New("no")
		}
		return nil
	}, nil, WithOrderly())
	got, _ := c.consume(primitive.WithOrderlyCtx(context.Background(), primitive.NewConsumeOrderlyContext()), ext("1", 0), ext("2", 0), ext("3", 0))
	if got != rmq.SuspendCurrentQueueAMoment || len(seen) != 2 {
		t.Fatalf("consume = %v, handled %v; want SuspendCurrentQueueAMoment after handling 1 and 2 only", got, seen)
	}
}

func TestMessageFieldsComeFromTheClientMessage(t *testing.T) {
	var got *Message
	c := running(t, func(_ context.Context, m *Message) error { got = m; return nil }, nil)
	e := ext("id-1", 2)
	e.WithTag("tagA")
	e.WithKeys([]string{"k1", "k2"})
	e.Queue = &primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: 3}
	e.QueueOffset = 42
	ctx, _ := concurrentCtx()
	if _, err := c.consume(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got.ID != "id-1" || got.Tag != "tagA" || got.Keys != "k1 k2" || got.QueueID != 3 || got.Broker != "b" ||
		got.QueueOffset != 42 || got.ReconsumeCount != 2 || got.Group != "g" || got.Property("k") != "v" || string(got.Body) != "body" {
		t.Fatalf("message = %+v", got)
	}
}

func TestMiddlewareRunsInTheOrderGiven(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, m *Message) error {
				order = append(order, name)
				return next(ctx, m)
			}
		}
	}
	c := running(t, func(context.Context, *Message) error { order = append(order, "handler"); return nil },
		[]Option{WithMiddleware(mw("first"), mw("second"))})
	ctx, _ := concurrentCtx()
	_, _ = c.consume(ctx, ext("id", 0))
	if want := "first second handler"; joined(order) != want {
		t.Fatalf("order = %q, want %q", joined(order), want)
	}
}

func joined(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

// The client re-sends a message whose consume-start stamp is older than
// ConsumeTimeout; rmqkit must keep the stamp of held messages fresh.
func TestHeldMessagesHaveTheirConsumeStartStampRenewed(t *testing.T) {
	release := make(chan struct{})
	c := running(t, func(context.Context, *Message) error { <-release; return nil },
		[]Option{WithClientConsumeTimeout(time.Second)}, WithPoolSize(1))
	running, waiting := ext("a", 0), ext("b", 0)
	old := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	var wg sync.WaitGroup
	for _, m := range []*primitive.MessageExt{running, waiting} {
		m.WithProperty(primitive.PropertyConsumeStartTime, old)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, _ := concurrentCtx()
			_, _ = c.consume(ctx, m)
		}()
	}
	time.Sleep(700 * time.Millisecond) // two renewal periods of 1s/3
	for _, m := range []*primitive.MessageExt{running, waiting} {
		if m.GetProperty(primitive.PropertyConsumeStartTime) == old {
			t.Errorf("message %s: consume-start stamp not renewed while held", m.MsgId)
		}
	}
	close(release)
	wg.Wait()
}

// Stop lets running handlers finish and keeps the messages still waiting
// for a worker unacknowledged: their callbacks return only after the
// client was shut down, so the client discards their result.
func TestStopFinishesRunningHandlersAndAbandonsWaitingOnes(t *testing.T) {
	release := make(chan struct{})
	var finished sync.WaitGroup
	c := running(t, func(context.Context, *Message) error { <-release; return nil }, nil, WithPoolSize(1))
	fc := c.client.(*fakeClient)
	type res struct {
		id       string
		r        rmq.ConsumeResult
		afterOff bool
	}
	results := make(chan res, 2)
	for _, id := range []string{"running", "waiting"} {
		finished.Add(1)
		go func() {
			defer finished.Done()
			ctx, _ := concurrentCtx()
			r, _ := c.consume(ctx, ext(id, 0))
			select {
			case <-fc.shutdown:
				results <- res{id, r, true}
			default:
				results <- res{id, r, false}
			}
		}()
		time.Sleep(50 * time.Millisecond) // "running" takes the only worker first
	}
	stopped := make(chan error)
	go func() { stopped <- c.Stop(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a handler was still running", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop = %v", err)
	}
	finished.Wait()
	close(results)
	for r := range results {
		switch r.id {
		case "running":
			if r.r != rmq.ConsumeSuccess {
				t.Errorf("running handler's message: %v, want ConsumeSuccess", r.r)
			}
		case "waiting":
			if !r.afterOff {
				t.Errorf("waiting message's callback returned before the client shut down")
			}
		}
	}
	if s := c.Stats()[0]; s.Abandoned != 1 || s.Succeeded != 1 {
		t.Fatalf("stats = %+v, want 1 succeeded and 1 abandoned", s)
	}
}

// Stop whose context ends first cancels the handlers' contexts and returns
// the context's error; the cut-short message is abandoned, not failed.
func TestStopPastItsDeadlineCancelsHandlers(t *testing.T) {
	entered := make(chan struct{})
	c := running(t, func(ctx context.Context, _ *Message) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, _ := concurrentCtx()
		_, _ = c.consume(ctx, ext("hung", 0))
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want DeadlineExceeded", err)
	}
	<-done
	if s := c.Stats()[0]; s.Abandoned != 1 || s.Failed != 0 {
		t.Fatalf("stats = %+v, want the hung message abandoned, not failed", s)
	}
}

// Stop returns within its deadline plus stopSlack even when a handler
// ignores its cancelled context.
func TestStopReturnsWithinItsDeadlineWhateverTheHandlersDo(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	c := running(t, func(context.Context, *Message) error {
		close(entered)
		<-release
		return nil
	}, nil)
	done := make(chan rmq.ConsumeResult, 1)
	go func() {
		ctx, _ := concurrentCtx()
		r, _ := c.consume(ctx, ext("ignores-ctx", 0))
		done <- r
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond+stopSlack {
		t.Fatalf("Stop took %v, want at most %v", took, 100*time.Millisecond+stopSlack)
	}
	<-done // the callback was released with the client's shutdown
	if st := c.Stats()[0]; st.Abandoned != 1 {
		t.Fatalf("stats = %+v, want the message abandoned", st)
	}
}

func TestStartAfterStopIsRefused(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return nil }, nil)
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
}

// BenchmarkDispatch measures one message through rmqkit's wrapper: message
// conversion, in-flight tracking, pool hand-off and result mapping.
func BenchmarkDispatch(b *testing.B) {
	c := running(b, func(context.Context, *Message) error { return nil }, nil)
	ctx, _ := concurrentCtx()
	// The client passes a slice of its own (a heap one), as here.
	ms := []*primitive.MessageExt{ext("id", 0)}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if r, _ := c.consume(ctx, ms...); r != rmq.ConsumeSuccess {
			b.Fatal(r)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

func TestWaitsReportTimeSpentWaitingForAWorker(t *testing.T) {
	release := make(chan struct{})
	var second *Message
	c := running(t, func(_ context.Context, m *Message) error {
		if m.ID == "first" {
			<-release
		} else {
			second = m
		}
		return nil
	}, nil, WithPoolSize(1))
	go func() { ctx, _ := concurrentCtx(); _, _ = c.consume(ctx, ext("first", 0)) }()
	time.Sleep(20 * time.Millisecond)
	go func() { time.Sleep(100 * time.Millisecond); close(release) }()
	ctx, _ := concurrentCtx()
	_, _ = c.consume(ctx, ext("second", 0))
	throttle, poolWait := second.Waits()
	if poolWait < 80*time.Millisecond {
		t.Fatalf("pool wait = %v, want about 100ms", poolWait)
	}
	// rmqotel records the throttle histogram only for waits above zero: a
	// subscription without rate limits must report exactly zero.
	if throttle != 0 {
		t.Errorf("throttle wait = %v without a rate limit, want exactly 0", throttle)
	}
}

// Batch handlers run under the consumer's middleware like single handlers:
// each message goes through the chain and sees its own result.
func TestBatchHandlerRunsThroughMiddlewarePerMessage(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]error{}
	record := func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			err := next(ctx, m)
			mu.Lock()
			seen[m.ID] = err
			mu.Unlock()
			return err
		}
	}
	skipC := func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			if m.ID == "c" {
				return nil // filtered out: acknowledged without the batch handler
			}
			return next(ctx, m)
		}
	}
	var got []string
	c := runningBatch(t, func(_ context.Context, msgs []*Message) error {
		for _, m := range msgs {
			got = append(got, m.ID)
		}
		return &BatchError{Failed: []int{1}, Err: errors.New("b is bad")} // b, second of a and b
	}, []Option{WithMiddleware(record, skipC)}, WithBatchSize(3))
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, ext("a", 0), ext("b", 0), ext("c", 0)); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v", r)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("batch handler got %v, want [a b] (c filtered by middleware)", got)
	}
	if len(seen) != 3 || seen["a"] != nil || seen["b"] == nil || seen["c"] != nil {
		t.Fatalf("middleware saw %v; want a: nil, b: an error, c: nil", seen)
	}
	if back := broker(c).handedBack(); len(back) != 1 || back[0].OriginMsgID != "b" {
		t.Fatalf("handed back %+v, want b only", back)
	}
}

func retryExt(id string, reconsume int32) *primitive.MessageExt {
	m := ext(id, reconsume)
	m.Queue = &primitive.MessageQueue{Topic: "%RETRY%g", BrokerName: "b", QueueId: 0}
	return m
}

// A redelivery that cannot start within retryWait (its subscription's
// workers are all busy) is handed back with a delay instead of being held,
// and that deferral does not count as one of its tries.
func TestRedeliveryOfASaturatedSubscriptionIsDeferredNotHeld(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	c := running(t, func(_ context.Context, m *Message) error {
		if m.ID == "later" {
			return errors.New("fails after its deferral")
		}
		entered <- struct{}{}
		<-release
		return nil
	}, nil, WithPoolSize(1), WithMaxRetries(2))
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	ctx, _ := concurrentCtx()
	var held sync.WaitGroup
	held.Go(func() { _, _ = c.consume(ctx, retryExt("running", 1)) })
	<-entered
	begin := time.Now()
	if r, _ := c.consume(ctx, retryExt("later", 1)); r != rmq.ConsumeSuccess {
		t.Fatalf("deferred redelivery: %v, want ConsumeSuccess", r)
	}
	if waited := time.Since(begin); waited < retryWait || waited > retryWait+time.Second {
		t.Fatalf("the redelivery was deferred after %v; want after retryWait (%v)", waited, retryWait)
	}
	back := broker(c).handedBack()
	if len(back) != 1 || back[0].OriginMsgID != "later" || back[0].DelayLevel != deferLevel || back[0].MaxReconsumeTimes <= 1 {
		t.Fatalf("handed back %+v; want later, delay level %d, never dead-lettered", back, deferLevel)
	}
	if st := c.Stats()[0]; st.Deferred != 1 || st.Queued != 0 {
		t.Fatalf("Deferred = %d, Queued = %d; want 1, 0", st.Deferred, st.Queued)
	}
	close(release)
	held.Wait()
	// It comes back with one more reconsume; failing then, the deferral
	// does not count: 2 - 1 < 2 retries, so it goes to the retry topic,
	// with its budget raised by one.
	if r, _ := c.consume(ctx, retryExt("later", 2)); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v", r)
	}
	back = broker(c).handedBack()
	if last := back[len(back)-1]; last.DelayLevel != 0 || last.MaxReconsumeTimes != 3 {
		t.Fatalf("hand-back after the deferral = %+v; want a retry (delay 0) with budget 2 + 1", last)
	}
}
