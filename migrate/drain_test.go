package migrate

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// dualEnv returns a started Subscription in Dual on fakes.
func dualEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	e := newEnv(t, append([]Option{WithPhase(Dual)}, opts...)...)
	e.start()
	return e
}

// leave switches e to NewOnly and returns the fake time it took.
func (e *env) leave(ctx context.Context) (time.Duration, error) {
	began := e.clk.since()
	err := e.s.SetPhase(ctx, NewOnly)
	return e.clk.since() - began, err
}

func (e *env) requireOldStopped(want bool) {
	e.t.Helper()
	old := slices.Contains(e.running(), Old)
	if old == want {
		e.t.Errorf("old consumer running = %v, want %v", old, !want)
	}
}

// Leaving Dual waits for the old side's lag to reach zero and stay there
// for the settle period, then stops the old consumer.
func TestLeavingDualWaitsForZeroLagAndTheSettlePeriod(t *testing.T) {
	e := dualEnv(t, WithSettle(10*time.Second))
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if side == Old && at < 30*time.Second {
			return reading{topicLag: 5, stored: 100}, nil
		}
		return reading{stored: 100}, nil
	})
	took, err := e.leave(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if took < 40*time.Second || took > 42*time.Second {
		t.Errorf("drain took %v of fake time, want 40s (lag gone at 30s + 10s settle)", took)
	}
	e.requireOldStopped(true)
	if got := e.running(); !slices.Equal(got, []Side{New}) {
		t.Errorf("running %v, want only new", got)
	}
}

// Lag on the retry topic counts like lag on the topic.
func TestRetryTopicLagHoldsTheDrain(t *testing.T) {
	e := dualEnv(t, WithSettle(0))
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if at < 20*time.Second {
			return reading{retryLag: 1}, nil
		}
		return reading{}, nil
	})
	if took, err := e.leave(context.Background()); err != nil || took < 20*time.Second {
		t.Errorf("drain took %v, %v; want >= 20s", took, err)
	}
}

// A message that arrives during the settle period (the queues' stored
// offsets move) starts the period again, even if it was consumed before
// the next reading.
func TestNewMessagesRestartTheSettlePeriod(t *testing.T) {
	e := dualEnv(t, WithSettle(10*time.Second))
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		stored := int64(100)
		if at >= 5*time.Second {
			stored = 101 // one more message stored and consumed at 5s
		}
		return reading{stored: stored}, nil
	})
	took, err := e.leave(context.Background())
	if err != nil || took < 15*time.Second {
		t.Errorf("drain took %v, %v; want >= 15s (message at 5s + 10s settle)", took, err)
	}
}

// A failed reading says nothing about the cluster: the settle period
// starts again after it.
func TestReadingErrorsRestartTheSettlePeriod(t *testing.T) {
	e := dualEnv(t, WithSettle(10*time.Second))
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if at >= 8*time.Second && at < 9*time.Second {
			return reading{}, errors.New("broker timeout")
		}
		return reading{}, nil
	})
	if took, err := e.leave(context.Background()); err != nil || took < 19*time.Second {
		t.Errorf("drain took %v, %v; want >= 19s", took, err)
	}
}

// A topic the cluster does not report is never drained.
func TestUnknownTopicIsNeverDrained(t *testing.T) {
	e := dualEnv(t, WithSettle(0))
	e.lag.set(func(Side, time.Duration) (reading, error) { return reading{}, ErrTopicNotFound })
	ok, err := e.s.Drained(context.Background())
	if ok || !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Drained = %v, %v; want false, ErrTopicNotFound", ok, err)
	}
}

// A handler failure on the old side leaves a retry pending in the broker's
// schedule, invisible as lag: the drain waits for its redelivery.
func TestPendingRetryHoldsTheDrainUntilRedelivered(t *testing.T) {
	e := dualEnv(t, WithSettle(2*time.Second))
	failed := msg("M1", 0, nil)
	e.handle(Old, failed, errHandler) // at fake 0s; due at 10s (level 3)
	if st := e.s.Stats().Old; st.PendingRetries != 1 || st.Failed != 1 {
		t.Fatalf("stats after the failure = %+v", st)
	}
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if side == Old && at >= 12*time.Second && e.s.Stats().Old.PendingRetries > 0 {
			e.handle(Old, msg("M1", 1, nil), nil) // the redelivery, here
		}
		return reading{}, nil
	})
	took, err := e.leave(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if took < 14*time.Second || took > 16*time.Second {
		t.Errorf("drain took %v, want about 14s (redelivery at 12s + 2s settle)", took)
	}
	if st := e.s.Stats().Old; st.PendingRetries != 0 || st.Consumed != 1 {
		t.Errorf("stats after the drain = %+v", st)
	}
}

// When another instance consumed the redelivery, a zero-lag reading after
// the retry's due time plus the grace period settles it.
func TestPendingRetryExpiresAfterDueTimeAndGrace(t *testing.T) {
	e := dualEnv(t, WithSettle(2*time.Second), WithRetryGrace(5*time.Second))
	e.handle(Old, msg("M1", 1, nil), errHandler) // second failure: level 4, 30s
	took, err := e.leave(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if took < 37*time.Second || took > 39*time.Second {
		t.Errorf("drain took %v, want about 37s (due 30s + grace 5s + settle 2s)", took)
	}
}

// A retry is only settled by a reading with no lag: while the retry topic
// shows the message, it stays pending.
func TestPendingRetryStaysWhileTheRetryTopicHasLag(t *testing.T) {
	e := dualEnv(t, WithSettle(0), WithRetryGrace(time.Second))
	e.handle(Old, msg("M1", 0, nil), errHandler) // due at 10s
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if side == Old && at >= 10*time.Second && at < 60*time.Second {
			return reading{retryLag: 1}, nil // nobody consumes it until 60s
		}
		return reading{}, nil
	})
	if took, err := e.leave(context.Background()); err != nil || took < 60*time.Second {
		t.Errorf("drain took %v, %v; want >= 60s", took, err)
	}
}

// A redelivery of a message without UNIQ_KEY (sent in a client batch) has
// a new id; the broker's ORIGIN_MESSAGE_ID property links it to the failure.
func TestRedeliveryIsRecognisedByItsOriginID(t *testing.T) {
	e := dualEnv(t)
	e.handle(Old, msg("OFFSET-ID-1", 0, nil), errHandler)
	e.handle(Old, msg("OFFSET-ID-2", 1, map[string]string{originMessageID: "OFFSET-ID-1"}), nil)
	if n := e.s.Stats().Old.PendingRetries; n != 0 {
		t.Errorf("pending retries = %d after the redelivery, want 0", n)
	}
	// Failing again and redelivered a third time, still by origin.
	e.handle(Old, msg("OFFSET-ID-2", 1, map[string]string{originMessageID: "OFFSET-ID-1"}), errHandler)
	e.handle(Old, msg("OFFSET-ID-3", 2, map[string]string{originMessageID: "OFFSET-ID-1"}), nil)
	if n := e.s.Stats().Old.PendingRetries; n != 0 {
		t.Errorf("pending retries = %d after the third delivery, want 0", n)
	}
}

// Failures that leave no retry in the schedule: past the retry limit (dead
// letter) and orderly subscriptions (retried in place, visible as lag).
func TestFailuresWithoutScheduledRetryAreNotPending(t *testing.T) {
	e := dualEnv(t)
	e.s.sides[Old].maxRetries.Store(3)
	e.handle(Old, msg("DLQ", 3, nil), errHandler)
	if n := e.s.Stats().Old.PendingRetries; n != 0 {
		t.Errorf("a dead-lettered message left %d pending retries", n)
	}
	e.s.sides[New].orderly.Store(true)
	e.handle(New, msg("ORD", 0, nil), errHandler)
	if st := e.s.Stats().New; st.PendingRetries != 0 || st.Failed != 1 {
		t.Errorf("orderly failure: %+v", st)
	}
}

// A panicking handler is a failure too.
func TestPanicIsRecordedAsFailure(t *testing.T) {
	e := dualEnv(t)
	h := e.s.track(Old)(func(context.Context, *consumer.Message) error { panic("boom") })
	func() {
		defer func() { _ = recover() }()
		_ = h(context.Background(), msg("P", 0, nil))
	}()
	if st := e.s.Stats().Old; st.PendingRetries != 1 || st.Failed != 1 {
		t.Errorf("stats after a panic = %+v", st)
	}
}

// Leaving Dual for OldOnly waits for the new side, symmetrically.
func TestLeavingDualForOldOnlyWaitsForTheNewSide(t *testing.T) {
	e := dualEnv(t, WithSettle(0))
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if side == New && at < 50*time.Second {
			return reading{topicLag: 1}, nil
		}
		return reading{}, nil
	})
	began := e.clk.since()
	if err := e.s.SetPhase(context.Background(), OldOnly); err != nil {
		t.Fatal(err)
	}
	if took := e.clk.since() - began; took < 50*time.Second {
		t.Errorf("took %v, want >= 50s", took)
	}
	if got := e.running(); !slices.Equal(got, []Side{Old}) {
		t.Errorf("running %v, want only old", got)
	}
}

// The caller's context bounds the wait; nothing is stopped then.
func TestContextEndsTheDrainWait(t *testing.T) {
	e := dualEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	e.lag.set(func(side Side, at time.Duration) (reading, error) {
		if at > time.Minute {
			cancel()
		}
		return reading{topicLag: 1}, nil
	})
	if _, err := e.leave(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetPhase = %v, want context.Canceled", err)
	}
	if p := e.s.Phase(); p != Dual {
		t.Errorf("phase = %v, want dual", p)
	}
	e.requireOldStopped(false)
}

// ForcePhase does not wait.
func TestForcePhaseSkipsTheDrain(t *testing.T) {
	e := dualEnv(t)
	e.lag.set(func(Side, time.Duration) (reading, error) { return reading{topicLag: 1000}, nil })
	began := e.clk.since()
	if err := e.s.ForcePhase(context.Background(), NewOnly); err != nil {
		t.Fatal(err)
	}
	if took := e.clk.since() - began; took != 0 {
		t.Errorf("forced switch took %v of fake time", took)
	}
	e.requireOldStopped(true)
}

// Stop ends a drain wait with ErrStopped.
func TestStopEndsTheDrainWait(t *testing.T) {
	e := dualEnv(t)
	e.lag.set(func(Side, time.Duration) (reading, error) { return reading{topicLag: 1}, nil })
	errc := make(chan error, 1)
	go func() { _, err := e.leave(context.Background()); errc <- err }()
	for e.s.Stats().Target != NewOnly {
		time.Sleep(time.Millisecond)
	}
	if err := e.s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Errorf("SetPhase = %v, want ErrStopped", err)
	}
}

// Drained, the Stats field and the hook agree.
func TestDrainedStateIsExposed(t *testing.T) {
	var mu sync.Mutex
	var events []bool
	e := dualEnv(t, WithSettle(3*time.Second), WithOnDrainChange(func(side Side, d bool) {
		if side == Old {
			mu.Lock()
			events = append(events, d)
			mu.Unlock()
		}
	}))
	ctx := context.Background()
	check := func(want bool) {
		t.Helper()
		got, err := e.s.Drained(ctx)
		if err != nil || got != want {
			t.Fatalf("Drained at %v = %v, %v; want %v", e.clk.since(), got, err, want)
		}
		if st := e.s.Stats().Old; st.Drained != want {
			t.Fatalf("Stats().Old.Drained = %v, want %v", st.Drained, want)
		}
	}
	check(false) // first quiet reading: the settle period starts
	<-e.clk.After(3 * time.Second)
	check(true)
	e.handle(Old, msg("M", 0, nil), errHandler)
	if st := e.s.Stats().Old; st.Drained {
		t.Error("still drained after a failure")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false}; !slices.Equal(events, want) {
		t.Errorf("hook saw %v, want %v", events, want)
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// The background readings keep Stats and the drain hook current, and warn
// about messages waiting on a cluster that is not read.
func TestBackgroundReadingsFeedStatsAndWarnAboutUnreadMessages(t *testing.T) {
	var logs lockedBuffer
	drained := make(chan Side, 4)
	e := newEnv(t, WithSettle(0), WithLagInterval(10*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		WithOnDrainChange(func(side Side, d bool) {
			if d {
				drained <- side
			}
		}))
	e.s.clk, e.s.monitor = realClock{}, true
	e.lag.set(func(side Side, _ time.Duration) (reading, error) {
		if side == New {
			return reading{topicLag: 5, stored: 5}, nil
		}
		return reading{}, nil
	})
	e.start()
	select {
	case side := <-drained:
		if side != Old {
			t.Errorf("hook: %v drained, want old", side)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no drain event from the background readings")
	}
	eventually(t, "the warning", func() bool { return strings.Contains(logs.String(), "does not read") })
	st := e.s.Stats()
	if st.New.Lag != 5 || st.New.Reading || st.New.Drained || !st.Old.Reading || st.Old.LagAt.IsZero() {
		t.Errorf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), "does not read"); n != 1 {
		t.Errorf("warned %d times, want once per episode", n)
	}
}
