package pool_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rmqkit/rmqkit/pool"
)

// ants starts a default pool at import; only goroutines started by the tests count.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func newPool(t *testing.T, size int) *pool.Pool {
	t.Helper()
	p, err := pool.New("test", size)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func TestNewRejectsInvalidArguments(t *testing.T) {
	tests := []struct {
		name string
		pool string
		size int
		want error
	}{
		{"empty name", "", 1, pool.ErrInvalidName},
		{"zero size", "p", 0, pool.ErrInvalidSize},
		{"negative size", "p", -3, pool.ErrInvalidSize},
		{"absurd size", "p", pool.MaxSize + 1, pool.ErrInvalidSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pool.New(tt.pool, tt.size)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New(%q, %d) = %v, want %v", tt.pool, tt.size, err, tt.want)
			}
		})
	}
}

func TestDoReturnsTheTaskResult(t *testing.T) {
	p := newPool(t, 2)
	boom := errors.New("boom")
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Do(ok) = %v", err)
	}
	if err := p.Do(context.Background(), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Do(boom) = %v, want boom", err)
	}
	s := p.Stats()
	if s.Completed != 1 || s.Failed != 1 || s.Panicked != 0 {
		t.Fatalf("stats = %+v, want 1 completed, 1 failed", s)
	}
}

func TestPanicBecomesErrorAndPoolStaysUsable(t *testing.T) {
	p := newPool(t, 1)
	err := p.Do(context.Background(), func(context.Context) error { panic("kaput") })
	var pe *pool.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, pool.ErrPanic) || pe.Value != "kaput" || len(pe.Stack) == 0 {
		t.Fatalf("Do(panic) = %#v, want *PanicError{kaput} with stack", err)
	}
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Do after panic = %v", err)
	}
	if s := p.Stats(); s.Panicked != 1 || s.Completed != 1 || s.Running != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

// runConcurrently starts n tasks that block until release is closed and
// returns the peak number running at once.
func peakConcurrency(t *testing.T, p *pool.Pool, n int, hold time.Duration) int64 {
	t.Helper()
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Do(context.Background(), func(context.Context) error {
				c := cur.Add(1)
				for {
					old := peak.Load()
					if c <= old || peak.CompareAndSwap(old, c) {
						break
					}
				}
				time.Sleep(hold)
				cur.Add(-1)
				return nil
			})
		}()
	}
	wg.Wait()
	return peak.Load()
}

func TestConcurrencyNeverExceedsSize(t *testing.T) {
	for _, size := range []int{1, 3, 8} {
		p := newPool(t, size)
		if got := peakConcurrency(t, p, 40, 5*time.Millisecond); got != int64(size) {
			t.Errorf("size %d: peak concurrency %d", size, got)
		}
	}
}

func TestDoWaitsUnderContextAndDoesNotRunTheTask(t *testing.T) {
	p := newPool(t, 1)
	release := make(chan struct{})
	go func() { _ = p.Do(context.Background(), func(context.Context) error { <-release; return nil }) }()
	waitFor(t, func() bool { return p.Stats().Running == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	var ran atomic.Bool
	err := p.Do(ctx, func(context.Context) error { ran.Store(true); return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran.Load() {
		t.Fatalf("Do on a full pool = %v (ran=%v), want DeadlineExceeded and no run", err, ran.Load())
	}
	if s := p.Stats(); s.Waiting != 0 {
		t.Fatalf("waiting = %d after the cancelled caller left", s.Waiting)
	}
	close(release)
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Do after release = %v", err)
	}
}

func TestResizeGrowsAndShrinksWithoutInterruptingRunningTasks(t *testing.T) {
	p := newPool(t, 2)
	if got := peakConcurrency(t, p, 30, 5*time.Millisecond); got != 2 {
		t.Fatalf("before resize: peak %d, want 2", got)
	}
	if err := p.Resize(16); err != nil {
		t.Fatal(err)
	}
	if got := peakConcurrency(t, p, 64, 20*time.Millisecond); got != 16 {
		t.Fatalf("after growing to 16: peak %d", got)
	}
	if err := p.Resize(4); err != nil {
		t.Fatal(err)
	}
	if got := peakConcurrency(t, p, 40, 5*time.Millisecond); got != 4 {
		t.Fatalf("after shrinking to 4: peak %d", got)
	}
	s := p.Stats()
	if s.Completed != 30+64+40 || s.Capacity != 4 {
		t.Fatalf("stats = %+v, want %d completed, capacity 4", s, 30+64+40)
	}
}

func TestShrinkLetsRunningTasksFinish(t *testing.T) {
	p := newPool(t, 4)
	release := make(chan struct{})
	var wg sync.WaitGroup
	var finished atomic.Int32
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.Do(context.Background(), func(context.Context) error { <-release; return nil }) == nil {
				finished.Add(1)
			}
		}()
	}
	waitFor(t, func() bool { return p.Stats().Running == 4 })
	if err := p.Resize(1); err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	if finished.Load() != 4 {
		t.Fatalf("%d of 4 running tasks finished after shrinking", finished.Load())
	}
}

func TestResizeAdmitsWaitersAtOnce(t *testing.T) {
	p := newPool(t, 1)
	release := make(chan struct{})
	defer close(release)
	go func() { _ = p.Do(context.Background(), func(context.Context) error { <-release; return nil }) }()
	waitFor(t, func() bool { return p.Stats().Running == 1 })
	started := make(chan struct{})
	go func() { _ = p.Do(context.Background(), func(context.Context) error { close(started); return nil }) }()
	waitFor(t, func() bool { return p.Stats().Waiting == 1 })
	if err := p.Resize(2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(time.Second):
		t.Fatal("waiting task did not start after the pool grew")
	}
}

func TestResizeRejectsInvalidSizeAndKeepsTheOldOne(t *testing.T) {
	p := newPool(t, 5)
	for _, n := range []int{0, -1, pool.MaxSize + 1} {
		if err := p.Resize(n); !errors.Is(err, pool.ErrInvalidSize) {
			t.Errorf("Resize(%d) = %v, want ErrInvalidSize", n, err)
		}
	}
	if got := p.Cap(); got != 5 {
		t.Fatalf("Cap = %d after rejected resizes, want 5", got)
	}
}

func TestCloseRejectsWaitersAndLaterCallers(t *testing.T) {
	p, err := pool.New("closing", 1)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	go func() { _ = p.Do(context.Background(), func(context.Context) error { <-release; return nil }) }()
	waitFor(t, func() bool { return p.Stats().Running == 1 })
	waiterErr := make(chan error, 1)
	go func() { waiterErr <- p.Do(context.Background(), func(context.Context) error { return nil }) }()
	waitFor(t, func() bool { return p.Stats().Waiting == 1 })

	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	if err := <-waiterErr; !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("waiter got %v, want ErrClosed", err)
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDoWithinStopsWaitingForATaskPastItsHoldAndFreesTheSlotWhenItReturns(t *testing.T) {
	p, err := pool.New("hold", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	release := make(chan struct{})
	err = p.DoWithin(context.Background(), func(context.Context) error { <-release; return nil }, 20*time.Millisecond, nil)
	if !errors.Is(err, pool.ErrOverran) {
		t.Fatalf("DoWithin = %v, want ErrOverran", err)
	}
	if st := p.Stats(); st.Overran != 1 || st.Running != 1 {
		t.Fatalf("stats after overrun = %+v, want Overran 1 and Running 1 (the task keeps its worker)", st)
	}
	close(release)
	// The worker returns the slot: the next task gets it.
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Do after the overrun task returned = %v", err)
	}
	if st := p.Stats(); st.Overran != 0 || st.Running != 0 {
		t.Fatalf("stats at the end = %+v, want Overran 0, Running 0", st)
	}
}

func TestDoWithinStopsWaitingWhenQuitIsClosed(t *testing.T) {
	p, err := pool.New("quit", 1)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	quit := make(chan struct{})
	close(quit)
	err = p.DoWithin(context.Background(), func(context.Context) error { <-release; return nil }, 0, quit)
	if !errors.Is(err, pool.ErrOverran) {
		t.Fatalf("DoWithin = %v, want ErrOverran", err)
	}
	close(release)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDoWithinReturnsTheResultOfATaskWithinItsHold(t *testing.T) {
	p, err := pool.New("fast", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	boom := errors.New("boom")
	if err := p.DoWithin(context.Background(), func(context.Context) error { return boom }, time.Minute, make(chan struct{})); !errors.Is(err, boom) {
		t.Fatalf("DoWithin = %v, want boom", err)
	}
}

// A caller may start more tasks than the pool has workers before it waits
// for any: a task's worker is free as soon as the task returns.
func TestStartMoreTasksThanWorkersBeforeWaiting(t *testing.T) {
	p, err := pool.New("start", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	done := make(chan error, 1)
	go func() {
		var started []pool.Started
		for range 3 {
			st, err := p.Start(context.Background(), nil, func(context.Context) error { return nil })
			if err != nil {
				done <- err
				return
			}
			started = append(started, st)
		}
		for _, st := range started {
			if err := st.Wait(time.Second, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("starting a second task waited for the first one's caller")
	}
	if st := p.Stats(); st.Completed != 3 || st.Running != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// runner records its gate and run calls.
type runner struct {
	gateErr error
	calls   []string
}

func (r *runner) Gate(context.Context) error {
	r.calls = append(r.calls, "gate")
	return r.gateErr
}

func (r *runner) Run(context.Context) error {
	r.calls = append(r.calls, "run")
	return nil
}

// StartRunner passes the runner's gate, then runs it; a gate error frees
// the worker without running it.
func TestStartRunnerPassesTheGateThenRuns(t *testing.T) {
	p := newPool(t, 1)
	ok := &runner{}
	st, err := p.StartRunner(context.Background(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Wait(0, nil); err != nil || strings.Join(ok.calls, ",") != "gate,run" {
		t.Fatalf("Wait = %v, calls %v; want nil, gate,run", err, ok.calls)
	}
	shut := &runner{gateErr: errors.New("limit")}
	if _, err := p.StartRunner(context.Background(), shut); err != shut.gateErr || strings.Join(shut.calls, ",") != "gate" {
		t.Fatalf("StartRunner = %v, calls %v; want the gate's error, gate only", err, shut.calls)
	}
	if st := p.Stats(); st.Running != 0 || st.Completed != 1 {
		t.Fatalf("stats = %+v; want the worker free, 1 completed", st)
	}
}
