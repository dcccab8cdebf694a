package consumer

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func exts(ids ...string) []*primitive.MessageExt {
	ms := make([]*primitive.MessageExt, len(ids))
	for i, id := range ids {
		ms[i] = ext(id, 0)
		ms[i].QueueOffset = int64(i)
	}
	return ms
}

// The messages of one callback run at once on the subscription's pool, not
// one after another.
func TestCallbackMessagesRunAtOnceOnThePool(t *testing.T) {
	var all sync.WaitGroup
	all.Add(4)
	c := running(t, func(context.Context, *Message) error {
		all.Done()
		done := make(chan struct{})
		go func() { all.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the other messages of the callback did not start")
		}
	}, nil, WithPoolSize(4))
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, exts("a", "b", "c", "d")...); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess", r)
	}
	if st := c.Stats()[0]; st.Succeeded != 4 || st.Failed != 0 {
		t.Fatalf("stats = %+v, want 4 succeeded", st)
	}
}

// A callback that started a message when Stop began starts the rest too and
// is acknowledged: Stop never cuts a callback in two, which would deliver
// its handled messages again.
func TestStopLetsACallbackThatStartedFinish(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan string, 3)
	c := running(t, func(_ context.Context, m *Message) error {
		entered <- m.ID
		if m.ID == "a" {
			<-release
		}
		return nil
	}, nil, WithPoolSize(1))
	// In flight when the client shuts down: a callback whose result the
	// client would discard.
	var inFlight atomic.Int64
	c.client.(*fakeClient).onShutdown = func() { inFlight.Store(c.callbacks.Load()) }
	res := make(chan rmq.ConsumeResult, 1)
	go func() {
		ctx, _ := concurrentCtx()
		r, _ := c.consume(ctx, exts("a", "b", "c")...)
		res <- r
	}()
	if id := <-entered; id != "a" {
		t.Fatalf("first handled %q, want a", id)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	waitFor(t, "Stop to begin", func() bool { return c.admit.Err() != nil })
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if r := <-res; r != rmq.ConsumeSuccess || inFlight.Load() != 0 {
		t.Fatalf("callback = %v, %d callbacks in flight at the client's shutdown; want ConsumeSuccess, returned before it", r, inFlight.Load())
	}
	if st := c.Stats()[0]; st.Succeeded != 3 || st.Abandoned != 0 {
		t.Fatalf("stats = %+v, want 3 succeeded, 0 abandoned", st)
	}
}

// Callbacks that started nothing when Stop begins (waiting for a worker, or
// for their turn behind another callback of the subscription) are parked
// whole until the client is shut down, so their messages come again.
func TestStopParksCallbacksThatStartedNothing(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	c := running(t, func(context.Context, *Message) error {
		entered <- struct{}{}
		<-release
		return nil
	}, nil, WithPoolSize(1))
	fc := c.client.(*fakeClient)
	var wg sync.WaitGroup
	parked := make(chan bool, 3) // of the callbacks other than holder
	consume := func(ids ...string) {
		wg.Go(func() {
			ctx, _ := concurrentCtx()
			r, _ := c.consume(ctx, exts(ids...)...)
			if ids[0] == "holder" {
				return
			}
			select {
			case <-fc.shutdown:
				parked <- r != rmq.ConsumeSuccess
			default:
				parked <- false
			}
		})
	}
	consume("holder")
	<-entered
	consume("w1", "w2") // waits for the worker
	waitFor(t, "a callback to wait for the worker", func() bool { return c.Stats()[0].Pool.Waiting == 1 })
	consume("t1", "t2", "t3") // waits for its turn
	waitFor(t, "five messages to be queued", func() bool { return c.Stats()[0].Queued == 5 })
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	waitFor(t, "Stop to begin", func() bool { return c.admit.Err() != nil })
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop = %v", err)
	}
	wg.Wait()
	close(parked)
	n := 0
	for p := range parked {
		if !p {
			t.Errorf("a waiting callback returned before the client shut down, or was acknowledged")
		}
		n++
	}
	if st := c.Stats()[0]; n != 2 || st.Succeeded != 1 || st.Abandoned != 5 || st.Queued != 0 {
		t.Fatalf("callbacks %d, stats = %+v; want 2 parked callbacks, 1 succeeded, 5 abandoned, 0 queued", n, st)
	}
}

// The callbacks of a subscription start their messages one callback at a
// time, so that at most one callback is partly started when Stop begins,
// and Stop finishes that one only: messages of two callbacks never start
// interleaved.
func TestCallbacksStartTheirMessagesOneCallbackAtATime(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	c := running(t, func(_ context.Context, m *Message) error {
		mu.Lock()
		order = append(order, m.ID)
		mu.Unlock()
		switch m.ID {
		case "holder":
			<-release
		case "x1":
			// Long enough for x2 to be asked for after y1 without the
			// one-callback-at-a-time rule.
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}, nil, WithPoolSize(1))
	var wg sync.WaitGroup
	consume := func(ids ...string) {
		wg.Go(func() {
			ctx, _ := concurrentCtx()
			_, _ = c.consume(ctx, exts(ids...)...)
		})
	}
	consume("holder")
	waitFor(t, "holder to run", func() bool { return c.Stats()[0].Pool.Running == 1 })
	consume("x1", "x2")
	waitFor(t, "x1 to wait for the worker", func() bool { return c.Stats()[0].Pool.Waiting == 1 })
	consume("y1", "y2")
	waitFor(t, "four messages queued", func() bool { return c.Stats()[0].Queued == 4 })
	close(release)
	wg.Wait()
	if got := strings.Join(order, " "); got != "holder x1 x2 y1 y2" {
		t.Fatalf("start order %q; want %q", got, "holder x1 x2 y1 y2")
	}
}

// A batch handler gets the callback's messages in batches of its own size.
func TestBatchHandlerGetsBatchesOfItsOwnSize(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	c := runningBatch(t, func(_ context.Context, msgs []*Message) error {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(msgs))
		return nil
	}, nil, WithBatchSize(2))
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, exts("a", "b", "c", "d", "e")...); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v", r)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 2, 2}) {
		t.Fatalf("batch sizes %v, want [1 2 2]", sizes)
	}
}

// BenchmarkDispatchBatch measures a callback of intakeBatch messages fanned
// out to the pool, per message.
func BenchmarkDispatchBatch(b *testing.B) {
	c := running(b, func(context.Context, *Message) error { return nil }, nil, WithPoolSize(20))
	ctx, _ := concurrentCtx()
	ids := make([]string, intakeBatch)
	for i := range ids {
		ids[i] = "m"
	}
	ms := exts(ids...)
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if r, _ := c.consume(ctx, ms...); r != rmq.ConsumeSuccess {
			b.Fatal(r)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*intakeBatch), "cpu-ns/msg")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*intakeBatch), "ns/msg")
}

// processCPU is the user plus system CPU time of this process: a figure a
// busy machine disturbs less than elapsed time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A callback from the retry queue mixing two subscriptions' redeliveries
// handles each subscription's share on its own: one waiting for a worker
// (until it is deferred) never delays the other's.
func TestMixedRetryCallbackHandlesEachSubscriptionOnItsOwn(t *testing.T) {
	release := make(chan struct{})
	c := running(t, func(context.Context, *Message) error { <-release; return nil }, nil, WithPoolSize(1))
	t.Cleanup(func() { close(release) }) // before running's Stop
	handledB := make(chan time.Time, 1)
	c.state = stateNew // a second subscription, "u", before the start
	if err := c.Subscribe("u", All, func(context.Context, *Message) error {
		handledB <- time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.state = stateRunning
	ctx, _ := concurrentCtx()
	go func() { _, _ = c.consume(ctx, retryExt("hold", 1)) }() // takes t's only worker
	waitFor(t, "t's worker to be taken", func() bool { return c.Stats()[0].Pool.Running == 1 })
	a, b := retryExt("a", 1), retryExt("b", 1)
	b.Topic = "u"
	begin := time.Now()
	done := make(chan struct{})
	go func() { _, _ = c.consume(ctx, a, b); close(done) }()
	if at := <-handledB; at.Sub(begin) >= retryWait/2 {
		t.Fatalf("u's redelivery waited %v behind t's; want it handled at once", at.Sub(begin))
	}
	<-done // t's share is deferred after retryWait
}

// Stop, whenever it begins, never cuts a callback in two: the client
// acknowledges or redelivers a callback whole, so a callback is either
// handled whole and acknowledged, or parked with none of its messages
// handled. (Once, a callback's first message was abandoned on its worker
// as Stop began while workers that took the others handled them: the
// callback came again after the restart with 31 handled messages.)
func TestStopNeverCutsACallbackInTwo(t *testing.T) {
	const rounds, size = 300, 32
	concurrent := func(c *Consumer) rmq.ConsumeResult {
		ctx, _ := concurrentCtx()
		r, _ := c.consume(ctx, exts(ids(size)...)...)
		return r
	}
	keyOrdered := func(c *Consumer) rmq.ConsumeResult {
		msgs := make([]*primitive.MessageExt, size)
		for i := range msgs {
			msgs[i] = keyedExt(strconv.Itoa(i%8), int64(i), false)
		}
		r, _ := c.consume(orderlyCtx(), msgs...)
		return r
	}
	for _, tc := range []struct {
		name    string
		opts    []SubscribeOption
		consume func(*Consumer) rmq.ConsumeResult
	}{
		{"concurrent", nil, concurrent},
		{"key-ordered", []SubscribeOption{WithKeyOrdered()}, keyOrdered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range rounds {
				var handled atomic.Int32
				c := running(t, func(context.Context, *Message) error {
					handled.Add(1)
					return nil
				}, nil, append(tc.opts, WithPoolSize(4))...)
				res := make(chan rmq.ConsumeResult, 1)
				go func() { res <- tc.consume(c) }()
				// Stop begins anywhere from before the first start to after
				// the last handler: spin a varying while.
				for i := 0; i < round*20; i++ {
					_ = syscall.Getpid()
				}
				if err := c.Stop(context.Background()); err != nil {
					t.Fatalf("round %d: Stop = %v", round, err)
				}
				r, n := <-res, handled.Load()
				if !(r == rmq.ConsumeSuccess && n == size) && !(r != rmq.ConsumeSuccess && n == 0) {
					t.Fatalf("round %d: callback = %v with %d of %d handled; want acknowledged with all handled, or not acknowledged with none", round, r, n, size)
				}
			}
		})
	}
}

// ids returns n message ids m0, m1, ...
func ids(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = "m" + strconv.Itoa(i)
	}
	return s
}

// A callback that outlasted slowCallback marks its subscription slow, so
// that the next callback spreads over the pool from its first message; a
// callback of fast handlers clears the mark.
func TestASlowCallbackMakesTheNextOneSpreadAtOnce(t *testing.T) {
	c := running(t, func(_ context.Context, m *Message) error {
		if m.ID == "slow" {
			time.Sleep(3 * slowCallback) // the handler's work: what makes the callback slow
		}
		return nil
	}, nil, WithPoolSize(4))
	ctx, _ := concurrentCtx()
	s := c.subs["t"]
	if r, _ := c.consume(ctx, exts("slow", "a", "b")...); r != rmq.ConsumeSuccess {
		t.Fatal(r)
	}
	if !s.slowLanes.Load() {
		t.Fatalf("a callback of %v did not mark the subscription slow", 3*slowCallback)
	}
	if r, _ := c.consume(ctx, exts("a", "b", "c")...); r != rmq.ConsumeSuccess {
		t.Fatal(r)
	}
	if s.slowLanes.Load() {
		t.Fatal("a callback of fast handlers left the subscription marked slow")
	}
}
