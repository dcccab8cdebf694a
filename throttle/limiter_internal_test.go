package throttle

import (
	"context"
	"testing"
	"time"
)

func newManual(t *testing.T, l Limit) (*Limiter, *manualClock) {
	t.Helper()
	clk := newManualClock()
	lim, err := newWithClock(l, clk)
	if err != nil {
		t.Fatal(err)
	}
	return lim, clk
}

func newAuto(t *testing.T, l Limit) (*Limiter, *autoClock) {
	t.Helper()
	clk := newAutoClock()
	lim, err := newWithClock(l, clk)
	if err != nil {
		t.Fatal(err)
	}
	return lim, clk
}

// waitAsync starts Wait in a goroutine; the channel receives its result.
func waitAsync(l *Limiter) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.Wait(context.Background()) }()
	return done
}

func requireBlocked(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Wait returned (%v) before its token was due", err)
	case <-time.After(20 * time.Millisecond):
	}
}

func requirePassed(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after its token was due")
	}
}

func TestCallersPassOneTokenIntervalApart(t *testing.T) {
	lim, clk := newManual(t, Limit{Rate: 10, Burst: 1})
	requirePassed(t, waitAsync(lim)) // the bucket starts full
	second := waitAsync(lim)
	if d := clk.waitTimer(t); d != 100*time.Millisecond {
		t.Fatalf("second caller waits %v, want 100ms at 10/s", d)
	}
	clk.Advance(99 * time.Millisecond)
	requireBlocked(t, second)
	clk.Advance(time.Millisecond)
	requirePassed(t, second)
}

func TestRaisingTheLimitSpeedsUpCallersAlreadyWaiting(t *testing.T) {
	lim, clk := newManual(t, Limit{Rate: 1, Burst: 1})
	requirePassed(t, waitAsync(lim))
	waiting := waitAsync(lim)
	if d := clk.waitTimer(t); d != time.Second {
		t.Fatalf("caller waits %v, want 1s at 1/s", d)
	}
	clk.Advance(500 * time.Millisecond) // half a token saved up
	if err := lim.Set(Limit{Rate: 100, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	// The missing half token takes 5ms at 100/s, not the 500ms left under
	// the old limit (rate.Limiter's SetLimit would keep those 500ms).
	if d := clk.waitTimer(t); d != 5*time.Millisecond {
		t.Fatalf("after raising the limit the caller waits %v, want 5ms", d)
	}
	clk.Advance(5 * time.Millisecond)
	requirePassed(t, waiting)
}

func TestLoweringTheLimitSlowsCallersAlreadyWaiting(t *testing.T) {
	lim, clk := newManual(t, Limit{Rate: 10, Burst: 1})
	requirePassed(t, waitAsync(lim))
	waiting := waitAsync(lim)
	clk.waitTimer(t)
	if err := lim.Set(Limit{Rate: 1, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	if d := clk.waitTimer(t); d != time.Second {
		t.Fatalf("after lowering the limit the caller waits %v, want 1s at 1/s", d)
	}
	clk.Advance(100 * time.Millisecond) // when the old limit would have let it pass
	requireBlocked(t, waiting)
	clk.Advance(900 * time.Millisecond)
	requirePassed(t, waiting)
}

func TestLaterCallersQueueBehindTheFirstInArrivalOrder(t *testing.T) {
	lim, clk := newManual(t, Limit{Rate: 10, Burst: 1})
	requirePassed(t, waitAsync(lim))
	first := waitAsync(lim)
	clk.waitTimer(t)
	second := waitAsync(lim)
	for lim.Stats().Waiting != 2 {
		time.Sleep(time.Millisecond)
	}
	if p := clk.pending(); len(p) != 1 {
		t.Fatalf("%d timers, want only the first caller's: later callers hold no claim on the bucket", len(p))
	}
	clk.Advance(100 * time.Millisecond)
	requirePassed(t, first)
	requireBlocked(t, second)
	if d := clk.waitTimer(t); d != 100*time.Millisecond {
		t.Fatalf("second caller waits %v after the first passed, want 100ms", d)
	}
	clk.Advance(100 * time.Millisecond)
	requirePassed(t, second)
}

func TestWaitNLargerThanTheBurstIsAdmittedBurstByBurst(t *testing.T) {
	lim, clk := newAuto(t, Limit{Rate: 10, Burst: 2})
	start := clk.Now()
	if err := lim.WaitN(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	// 2 from the full bucket, then 2, 2 and 1 more at 10/s.
	if got := clk.Now().Sub(start); got != 500*time.Millisecond {
		t.Fatalf("WaitN(7) took %v, want 500ms", got)
	}
}

func TestWaitAllIsBoundByTheNarrowestLevel(t *testing.T) {
	clk := newAutoClock()
	sub, _ := newWithClock(Limit{Rate: 200, Burst: 1}, clk)
	group, _ := newWithClock(Limit{Rate: 100, Burst: 1}, clk)
	process, _ := newWithClock(Limit{}, clk)
	start := clk.Now()
	for range 1001 {
		if err := WaitAll(context.Background(), sub, nil, group, process); err != nil {
			t.Fatal(err)
		}
	}
	if got := clk.Now().Sub(start); got != 10*time.Second {
		t.Fatalf("1001 messages through 200/s and 100/s took %v, want 10s (1 from the bucket + 1000 at 100/s)", got)
	}
}

func TestStatsCountCallsThatWaitedAndHowLong(t *testing.T) {
	lim, _ := newAuto(t, Limit{Rate: 10, Burst: 1})
	for range 3 {
		if err := lim.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	s := lim.Stats()
	want := Stats{Limit: Limit{Rate: 10, Burst: 1}, Admitted: 3, Waits: 2, WaitTime: 200 * time.Millisecond}
	if s != want {
		t.Fatalf("Stats = %+v, want %+v", s, want)
	}
}

func TestLimiterThatBecomesLimitedStartsWithAFullBucket(t *testing.T) {
	lim, clk := newAuto(t, Limit{})
	if err := lim.Set(Limit{Rate: 10, Burst: 5}); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	for range 6 {
		_ = lim.Wait(context.Background())
	}
	if got := clk.Now().Sub(start); got != 100*time.Millisecond {
		t.Fatalf("6 waits took %v, want 100ms (5 from the full bucket)", got)
	}
}
