package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/throttle"
)

func mustNew(t testing.TB, l throttle.Limit) *throttle.Limiter {
	t.Helper()
	lim, err := throttle.New(l)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func TestInvalidLimitsAreRejectedAndTheOldOneKept(t *testing.T) {
	old := throttle.Limit{Rate: 100, Burst: 7}
	tests := []struct {
		name string
		l    throttle.Limit
	}{
		{"negative rate", throttle.Limit{Rate: -1}},
		{"NaN rate", throttle.Limit{Rate: math.NaN()}},
		{"infinite rate", throttle.Limit{Rate: math.Inf(1)}},
		{"absurd rate", throttle.Limit{Rate: throttle.MaxRate * 2}},
		{"negative burst", throttle.Limit{Rate: 10, Burst: -1}},
		{"absurd burst", throttle.Limit{Rate: 10, Burst: throttle.MaxBurst + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := throttle.New(tt.l); !errors.Is(err, throttle.ErrInvalidLimit) {
				t.Errorf("New = %v, want ErrInvalidLimit", err)
			}
			lim := mustNew(t, old)
			if err := lim.Set(tt.l); !errors.Is(err, throttle.ErrInvalidLimit) {
				t.Errorf("Set = %v, want ErrInvalidLimit", err)
			}
			if got := lim.Limit(); got != old {
				t.Errorf("limit after a rejected Set = %v, want the old %v", got, old)
			}
		})
	}
}

func TestDefaultBurstIsATenthOfASecond(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		want int
	}{{0, 0}, {0.5, 1}, {5, 1}, {50, 5}, {55, 6}, {5000, 500}, {throttle.MaxRate, 100_000}} {
		if got := (throttle.Limit{Rate: tt.rate}).EffectiveBurst(); got != tt.want {
			t.Errorf("EffectiveBurst(rate %v) = %d, want %d", tt.rate, got, tt.want)
		}
	}
	if got := (throttle.Limit{Rate: 50, Burst: 3}).EffectiveBurst(); got != 3 {
		t.Errorf("an explicit burst is kept: got %d", got)
	}
}

func TestUnlimitedWaitReturnsAtOnceAndAllocatesNothing(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var zero throttle.Limiter
	var nilLim *throttle.Limiter
	for name, lim := range map[string]*throttle.Limiter{"zero value": &zero, "nil": nilLim, "rate 0": mustNew(t, throttle.Limit{})} {
		// Unlimited does not even look at ctx.
		if err := lim.Wait(cancelled); err != nil {
			t.Errorf("%s: Wait = %v", name, err)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = throttle.WaitAll(cancelled, lim, nil, lim) }); allocs != 0 {
			t.Errorf("%s: WaitAll allocates %v times", name, allocs)
		}
		if s := lim.Stats(); s.Admitted != 0 || s.Waits != 0 {
			t.Errorf("%s: unlimited calls were counted: %+v", name, s)
		}
	}
}

func TestWaitReturnsTheContextErrorUnwrapped(t *testing.T) {
	lim := mustNew(t, throttle.Limit{Rate: 0.001, Burst: 1})
	_ = lim.Wait(context.Background()) // empties the bucket

	ctx, cancel := context.WithCancel(context.Background())
	head := make(chan error, 1)
	go func() { head <- lim.Wait(ctx) }()
	behind := make(chan error, 1)
	go func() { behind <- lim.Wait(ctx) }()
	for lim.Stats().Waiting != 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	for _, ch := range []chan error{head, behind} {
		if err := <-ch; err != context.Canceled {
			t.Fatalf("Wait = %v, want context.Canceled itself", err)
		}
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	if err := lim.Wait(dctx); err != context.DeadlineExceeded {
		t.Fatalf("Wait = %v, want context.DeadlineExceeded itself", err)
	}
	if err := lim.Wait(dctx); err != context.DeadlineExceeded {
		t.Fatalf("Wait on an ended context = %v, want context.DeadlineExceeded", err)
	}
	if s := lim.Stats(); s.Waiting != 0 || s.Admitted != 1 {
		t.Fatalf("after cancelled waits: %+v", s)
	}
}

func TestLiftingTheLimitReleasesEveryWaiter(t *testing.T) {
	lim := mustNew(t, throttle.Limit{Rate: 0.001, Burst: 1})
	_ = lim.Wait(context.Background())
	const n = 50
	var wg sync.WaitGroup
	var passed atomic.Int32
	for range n {
		wg.Go(func() {
			if lim.Wait(context.Background()) == nil {
				passed.Add(1)
			}
		})
	}
	for lim.Stats().Waiting != n {
		time.Sleep(time.Millisecond)
	}
	if err := lim.Set(throttle.Limit{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%d of %d waiters released 5s after the limit was lifted", passed.Load(), n)
	}
}

// measure runs workers that Wait in a loop and returns the rate they pass
// at over window, after warm-up (which includes the initial burst).
func measure(lim *throttle.Limiter, workers int, warmup, window time.Duration) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	var count atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for lim.Wait(ctx) == nil {
				count.Add(1)
			}
		})
	}
	time.Sleep(warmup)
	c0, t0 := count.Load(), time.Now()
	time.Sleep(window)
	c1, t1 := count.Load(), time.Now()
	cancel()
	wg.Wait()
	return float64(c1-c0) / t1.Sub(t0).Seconds()
}

// With the default burst the measured rate is within 5% of the limit on a
// real clock, at low and high rates; a burst of 1 undershoots at high rates
// because timer lateness is lost (logged for comparison, not asserted). A
// process starved of CPU for longer than the burst's tenth of a second
// loses tokens too, so a run on a saturated machine gets three attempts.
func TestMeasuredRateMatchesTheLimit(t *testing.T) {
	for _, rate := range []float64{50, 500, 5000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			t.Parallel()
			var errPct float64
			for attempt := 1; attempt <= 3; attempt++ {
				got := measure(mustNew(t, throttle.Limit{Rate: rate}), 16, 300*time.Millisecond, 2*time.Second)
				errPct = 100 * (got - rate) / rate
				t.Logf("rate %v, default burst: measured %.1f/s (%+.2f%%)", rate, got, errPct)
				if math.Abs(errPct) <= 5 {
					break
				}
			}
			if math.Abs(errPct) > 5 {
				t.Errorf("rate %v: off by %+.2f%% in three attempts", rate, errPct)
			}
			one := measure(mustNew(t, throttle.Limit{Rate: rate, Burst: 1}), 16, 300*time.Millisecond, 2*time.Second)
			t.Logf("rate %v, burst 1: measured %.1f/s (%+.2f%%)", rate, one, 100*(one-rate)/rate)
		})
	}
}

// Many callers waiting while the limit changes under them: for the race
// detector, and every caller ends once the limit is lifted.
func TestConcurrentSetAndWait(t *testing.T) {
	lim := mustNew(t, throttle.Limit{Rate: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := throttle.WaitAllN(ctx, 3, lim, nil, lim); err != nil {
					t.Error(err)
					return
				}
				_ = lim.Stats()
			}
		})
	}
	limits := []throttle.Limit{{Rate: 200, Burst: 2}, {}, {Rate: 5000}, {Rate: 10, Burst: 1}, {Rate: 2000, Burst: 50}}
	for i := range 60 {
		if err := lim.Set(limits[i%len(limits)]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := lim.Set(throttle.Limit{}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if s := lim.Stats(); s.Waiting != 0 {
		t.Fatalf("waiting = %d after every caller returned", s.Waiting)
	}
}

func BenchmarkWaitUnlimited(b *testing.B) {
	lim := mustNew(b, throttle.Limit{})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = lim.Wait(ctx)
		}
	})
}

func BenchmarkWaitAllUnlimited(b *testing.B) {
	sub, group := mustNew(b, throttle.Limit{}), mustNew(b, throttle.Limit{})
	ctx := context.Background()
	for b.Loop() {
		_ = throttle.WaitAll(ctx, sub, group, nil)
	}
}

// BenchmarkWaitLimitedNoWait is the cost of the limited path when tokens are
// always there (a limit far above the offered rate).
func BenchmarkWaitLimitedNoWait(b *testing.B) {
	lim := mustNew(b, throttle.Limit{Rate: throttle.MaxRate, Burst: throttle.MaxBurst})
	ctx := context.Background()
	for b.Loop() {
		_ = lim.Wait(ctx)
	}
}
