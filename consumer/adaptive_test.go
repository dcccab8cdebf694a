package consumer

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

func TestWithAdaptivePoolRejectsBoundsThatCannotWork(t *testing.T) {
	shared, err := pool.New("shared", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close(context.Background()) })
	tests := []struct {
		name string
		opts []SubscribeOption
	}{
		{"negative min", []SubscribeOption{WithAdaptivePool(Adaptive{Min: -1})}},
		{"max below min", []SubscribeOption{WithAdaptivePool(Adaptive{Min: 10, Max: 5})}},
		{"max above pool.MaxSize", []SubscribeOption{WithAdaptivePool(Adaptive{Max: pool.MaxSize + 1})}},
		{"window too short", []SubscribeOption{WithAdaptivePool(Adaptive{Window: 10 * time.Millisecond})}},
		{"shared pool", []SubscribeOption{WithSharedPool(shared), WithAdaptivePool(Adaptive{})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("g", WithNameServer("127.0.0.1:1"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Subscribe("t", All, func(context.Context, *Message) error { return nil }, tt.opts...)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("Subscribe: %v, want ErrInvalidOption", err)
			}
		})
	}
}

// feed hands messages to c the way the client does, one callback
// goroutine each, at most par at once, until the test ends (the consumer is
// stopped first, which releases callbacks it parked).
func feed(t *testing.T, c *Consumer, par int) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		_ = c.Stop(context.Background())
		wg.Wait()
	})
	sem := make(chan struct{}, par)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case sem <- struct{}{}:
			case <-stop:
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				ctx, _ := concurrentCtx()
				_, _ = c.consume(ctx, ext("m"+strconv.Itoa(i), 0))
			})
		}
	})
}

// kneeHandler simulates a downstream serving k calls at once in base time,
// and proportionally slower beyond.
func kneeHandler(k int, base time.Duration) Handler {
	var mu sync.Mutex
	inflight := 0
	return func(ctx context.Context, _ *Message) error {
		mu.Lock()
		inflight++
		n := inflight
		mu.Unlock()
		defer func() {
			mu.Lock()
			inflight--
			mu.Unlock()
		}()
		d := time.Duration(float64(base) * math.Max(1, float64(n)/float64(k)))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func startAdaptive(c *Consumer) {
	c.mu.Lock()
	c.startAdaptive()
	c.mu.Unlock()
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SetPoolSize while adaptive pins the size: the controller makes no
// further change, and Stats says so.
func TestSetPoolSizePinsAnAdaptivePool(t *testing.T) {
	c := running(t, kneeHandler(8, 5*time.Millisecond), nil, WithAdaptivePool(Adaptive{Min: 2, Max: 64, Window: 100 * time.Millisecond}))
	startAdaptive(c)
	feed(t, c, 200)
	s := c.subs["t"]
	waitUntil(t, "the controller grows the pool past 4", 10*time.Second, func() bool { return c.Stats()[0].Adaptive.Decisions >= 4 && s.pool.Cap() > 4 })
	if err := c.SetPoolSize("t", 3); err != nil {
		t.Fatal(err)
	}
	decisions := c.Stats()[0].Adaptive.Decisions
	handled := s.succeeded.Load()
	// Ten windows' worth of messages later the size is still the pinned one.
	waitUntil(t, "messages handled after the pin", 10*time.Second, func() bool { return s.succeeded.Load() > handled+600 })
	st := c.Stats()[0]
	if got := s.pool.Cap(); got != 3 || !st.Adaptive.Pinned || st.Adaptive.Decisions != decisions {
		t.Fatalf("after SetPoolSize(3): size %d, pinned %v, decisions %d -> %d; want 3, pinned, no new decision",
			got, st.Adaptive.Pinned, decisions, st.Adaptive.Decisions)
	}
}

// The controller finds the knee of a simulated downstream and reports its
// state in Stats.
func TestAdaptivePoolSettlesNearTheKnee(t *testing.T) {
	c := running(t, kneeHandler(8, 5*time.Millisecond), nil, WithAdaptivePool(Adaptive{Min: 2, Max: 64, Window: 100 * time.Millisecond}))
	startAdaptive(c)
	feed(t, c, 200)
	waitUntil(t, "20 decisions", 20*time.Second, func() bool { return c.Stats()[0].Adaptive.Decisions >= 20 })
	st := c.Stats()[0]
	a := st.Adaptive
	// Probes halve the size for one window.
	if a.Size < 4 || a.Size > 14 || st.Pool.Capacity != a.Size || a.Baseline < 5*time.Millisecond || a.Reason == "" {
		t.Fatalf("stats after 20 windows: %+v (pool %d); want a size near the knee 8", a, st.Pool.Capacity)
	}
}

// A subscription bound by its rate limit is not starved of concurrency:
// with the pool just busy enough to count as saturated, the controller
// keeps the minimum because the limiter made messages wait.
func TestAdaptivePoolDoesNotGrowWhileTheRateLimitBinds(t *testing.T) {
	// 100 msgs/s of 17 ms handlers keep 1.7 workers busy: 85% of a pool of
	// 2, and the pool could go 117/s, so the limiter is what binds.
	c := running(t, kneeHandler(100, 17*time.Millisecond), nil,
		WithAdaptivePool(Adaptive{Min: 2, Max: 64, Window: 100 * time.Millisecond}),
		WithRate(throttle.Limit{Rate: 100, Burst: 1}))
	startAdaptive(c)
	feed(t, c, 50)
	sawThrottled := false
	waitUntil(t, "10 decisions", 20*time.Second, func() bool {
		a := c.Stats()[0].Adaptive
		if a.Size != 2 {
			t.Fatalf("the pool grew to %d (%s) while the rate limit bound it", a.Size, a.Reason)
		}
		sawThrottled = sawThrottled || a.Reason == "throttled"
		return a.Decisions >= 10
	})
	if !sawThrottled {
		t.Fatalf("no decision said throttled: %+v", c.Stats()[0].Adaptive)
	}
}

func TestSamplerMedianIsWithinThreePercent(t *testing.T) {
	for _, d := range []time.Duration{7, 900 * time.Nanosecond, 5 * time.Millisecond, 1234 * time.Millisecond} {
		var s sampler
		for range 101 {
			s.add(d, false)
		}
		w := s.drain()
		got := w.window(time.Second, 1).Median
		if math.Abs(float64(got-d)) > 0.03*float64(d)+1 {
			t.Errorf("median of %v: %v", d, got)
		}
		if w.count != 101 || s.count.Load() != 0 {
			t.Errorf("count %d, left %d", w.count, s.count.Load())
		}
	}
}

func BenchmarkAdaptiveObserve(b *testing.B) {
	a := newAdaptiveSizer(Adaptive{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.observe(5*time.Millisecond, nil)
		}
	})
}

// Sampling a handler's run time costs no allocation: it is on the hot path.
func TestAdaptiveObserveDoesNotAllocate(t *testing.T) {
	a := newAdaptiveSizer(Adaptive{})
	err := errors.New("x")
	if n := testing.AllocsPerRun(1000, func() { a.observe(5*time.Millisecond, err) }); n != 0 {
		t.Fatalf("observe allocates %v times per call", n)
	}
}
