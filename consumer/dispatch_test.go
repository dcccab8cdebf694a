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
)

// fakeClient stands in for the push consumer where only dispatch logic is
// under test; everything about real consumption is tested on the broker.
type fakeClient struct{ shutdown chan struct{} }

func (f *fakeClient) Start() error { return nil }
func (f *fakeClient) Shutdown() error {
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
	c, err := New("g", append([]Option{WithNameServer("127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("t", All, h, sopts...); err != nil {
		t.Fatal(err)
	}
	c.client = &fakeClient{shutdown: make(chan struct{})}
	c.state = stateRunning
	c.renewDone = make(chan struct{})
	go c.renewLeases(c.cfg.consumeTimeout/3, c.renewDone)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func ext(id string, reconsume int32) *primitive.MessageExt {
	m := &primitive.MessageExt{Message: primitive.Message{Topic: "t", Body: []byte("body")}, MsgId: id, ReconsumeTimes: reconsume}
	m.WithProperty("k", "v")
	return m
}

func concurrentCtx() (context.Context, *primitive.ConsumeConcurrentlyContext) {
	cc := primitive.NewConsumeConcurrentlyContext()
	return primitive.WithConcurrentlyCtx(context.Background(), cc), cc
}

func TestHandlerResultMapsToClientResult(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		h         Handler
		reconsume int32
		want      rmq.ConsumeResult
		wantDelay int
	}{
		{"nil acknowledges", func(context.Context, *Message) error { return nil }, 0, rmq.ConsumeSuccess, 0},
		{"error retries with the broker's back-off", func(context.Context, *Message) error { return boom }, 0, rmq.ConsumeRetryLater, 0},
		{"panic retries", func(context.Context, *Message) error { panic("x") }, 0, rmq.ConsumeRetryLater, 0},
		{"error past max retries dead-letters", func(context.Context, *Message) error { return boom }, 3, rmq.ConsumeRetryLater, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := running(t, tt.h, []Option{WithMaxRetries(3)})
			ctx, cc := concurrentCtx()
			got, err := c.consume(ctx, ext("id", tt.reconsume))
			if got != tt.want || err != nil || cc.DelayLevelWhenNextConsume != tt.wantDelay {
				t.Fatalf("consume = (%v, %v), delay %d; want (%v, nil), delay %d", got, err, cc.DelayLevelWhenNextConsume, tt.want, tt.wantDelay)
			}
		})
	}
}

func TestOrderlyFailureSuspendsTheQueueInsteadOfRetryLater(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return errors.New("no") }, nil, WithOrderly(250*time.Millisecond))
	oc := primitive.NewConsumeOrderlyContext()
	got, _ := c.consume(primitive.WithOrderlyCtx(context.Background(), oc), ext("id", 0))
	if got != rmq.SuspendCurrentQueueAMoment || oc.SuspendCurrentQueueTimeMillis != 250 {
		t.Fatalf("orderly failure = %v with suspend %d ms; want SuspendCurrentQueueAMoment, 250 ms", got, oc.SuspendCurrentQueueTimeMillis)
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
	m := ext("id", 0)
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := c.consume(ctx, m); r != rmq.ConsumeSuccess {
			b.Fatal(r)
		}
	}
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
	if _, poolWait := second.Waits(); poolWait < 80*time.Millisecond {
		t.Fatalf("pool wait = %v, want about 100ms", poolWait)
	}
}
