package pool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/pool"
)

// laneTask is one task of a group run on Lanes.
type laneTask struct {
	g      *laneGroup
	i      int
	st     pool.Started
	gated  atomic.Bool
	runs   atomic.Int32
	byLane bool
}

func (t *laneTask) Gate(ctx context.Context) error {
	if t.g.gate != nil {
		if err := t.g.gate(ctx, t.i); err != nil {
			return err
		}
	}
	t.gated.Store(true)
	return nil
}

func (t *laneTask) Run(ctx context.Context) error {
	if !t.gated.Load() {
		t.g.ungated.Add(1)
	}
	t.runs.Add(1)
	return t.g.run(ctx, t.i)
}

// laneGroup is a LaneSource of n tasks running run, each behind gate.
type laneGroup struct {
	tasks   []laneTask
	run     func(ctx context.Context, i int) error
	gate    func(ctx context.Context, i int) error
	ungated atomic.Int32 // tasks that ran without passing their gate
	lanes   pool.Lanes
}

func (g *laneGroup) Task(i int, byLane bool) (pool.Runner, *pool.Started) {
	t := &g.tasks[i]
	t.byLane = byLane
	return t, &t.st
}

// runGroup runs n tasks on p's lanes the way a caller does (Start, then
// Serve) and returns each task's result.
func runGroup(t *testing.T, p *pool.Pool, n int, run func(context.Context, int) error, gate func(context.Context, int) error) (*laneGroup, []error) {
	t.Helper()
	return runGroupSpread(t, p, n, pool.SpreadAfter, run, gate)
}

// runGroupSpread is runGroup with the group's SpreadAfter set to spread.
func runGroupSpread(t *testing.T, p *pool.Pool, n int, spread time.Duration, run func(context.Context, int) error, gate func(context.Context, int) error) (*laneGroup, []error) {
	t.Helper()
	return runGroupOpts(t, p, n, spread, false, run, gate)
}

// runGroupOpts is runGroupSpread, the group marked slow from the start
// (Spread) when slow is set.
func runGroupOpts(t *testing.T, p *pool.Pool, n int, spread time.Duration, slow bool, run func(context.Context, int) error, gate func(context.Context, int) error) (*laneGroup, []error) {
	t.Helper()
	g := &laneGroup{tasks: make([]laneTask, n), run: run, gate: gate}
	for i := range g.tasks {
		g.tasks[i].g, g.tasks[i].i = g, i
	}
	ctx := context.Background()
	g.lanes.Init(p, n, g, ctx)
	pool.SetSpreadAfter(&g.lanes, spread)
	if slow {
		g.lanes.Spread()
	}
	for {
		i, err := g.lanes.Start(ctx)
		if i < 0 || err == nil {
			break
		}
	}
	g.lanes.Serve(ctx)
	errs := make([]error, n)
	for i := range g.tasks {
		errs[i] = g.tasks[i].st.Wait(time.Minute, nil)
	}
	if u := g.ungated.Load(); u != 0 {
		t.Errorf("%d tasks ran without passing their gate", u)
	}
	return g, errs
}

// Every task of a group runs once, with its own result, a panic included.
func TestLanesRunEveryTaskOnceWithItsOwnResult(t *testing.T) {
	p := newPool(t, 4)
	for round := range 50 {
		g, errs := runGroup(t, p, 32, func(_ context.Context, i int) error {
			switch i % 8 {
			case 3:
				return fmt.Errorf("task %d", i)
			case 5:
				panic(i)
			}
			return nil
		}, nil)
		for i, err := range errs {
			switch i % 8 {
			case 3:
				if err == nil || err.Error() != fmt.Sprintf("task %d", i) {
					t.Fatalf("round %d: task %d: %v, want its own error", round, i, err)
				}
			case 5:
				if !errors.Is(err, pool.ErrPanic) {
					t.Fatalf("round %d: task %d: %v, want its panic", round, i, err)
				}
			default:
				if err != nil {
					t.Fatalf("round %d: task %d: %v, want nil", round, i, err)
				}
			}
			if n := g.tasks[i].runs.Load(); n != 1 {
				t.Fatalf("round %d: task %d ran %d times", round, i, n)
			}
		}
	}
	// A lane asked for when the group was nearly done may hold a slot for
	// a moment after it, finding nothing to claim.
	waitUntil(t, "every slot to be free", func() bool { return p.Stats().Running == 0 })
	if st := p.Stats(); st.Completed != 50*24 || st.Failed != 50*4 || st.Panicked != 50*4 {
		t.Fatalf("stats = %+v", st)
	}
}

// Tasks that block run at once, up to the pool's size: once tasks have
// waited unclaimed for SpreadAfter, a lane that starts a task with others
// left asks for another lane.
func TestLanesRunBlockingTasksAtOnce(t *testing.T) {
	p := newPool(t, 8)
	_, errs := runGroup(t, p, 8, untilAllStarted(8), nil)
	requireNoErrors(t, errs)
}

// Tasks that finish before SpreadAfter run one after another on one lane:
// a group of fast tasks costs no hand-off between workers. (SpreadAfter is
// an hour here, and the first task stays running until another task
// starts or 100 ms pass: a second lane would start one within that time.)
func TestLanesRunFastTasksOnOneLane(t *testing.T) {
	p := newPool(t, 8)
	var running, most atomic.Int32
	other := make(chan struct{})
	var once sync.Once
	_, errs := runGroupSpread(t, p, 16, time.Hour, func(_ context.Context, i int) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if i == 0 {
			select {
			case <-other:
			case <-time.After(100 * time.Millisecond):
			}
		} else {
			once.Do(func() { close(other) })
		}
		running.Add(-1)
		return nil
	}, nil)
	requireNoErrors(t, errs)
	if m := most.Load(); m != 1 {
		t.Fatalf("%d tasks ran at once, want 1: a fast group spread over several lanes", m)
	}
}

// A group its caller marks slow (Spread) runs its blocking tasks at once
// from the start, without waiting SpreadAfter (an hour here).
func TestLanesSpreadAtOnceWhenTheCallerSaysTheGroupIsSlow(t *testing.T) {
	p := newPool(t, 8)
	_, errs := runGroupOpts(t, p, 8, time.Hour, true, untilAllStarted(8), nil)
	requireNoErrors(t, errs)
}

// A lane goes on to the next task only while the pool runs no more than
// its size: after a shrink, lanes end as their tasks return until the
// pool is within the new size, and no task starts beyond it.
func TestLanesKeepThePoolsSizeAfterAShrink(t *testing.T) {
	p := newPool(t, 4)
	var cur, over atomic.Int32
	var shrunk atomic.Bool
	release := make(chan struct{})
	res := make(chan []error, 1)
	go func() {
		_, errs := runGroup(t, p, 40, func(context.Context, int) error {
			n := cur.Add(1)
			defer cur.Add(-1)
			if shrunk.Load() && n > 2 {
				over.Add(1)
			}
			<-release
			time.Sleep(100 * time.Microsecond)
			return nil
		}, nil)
		res <- errs
	}()
	waitUntil(t, "four tasks to run at once", func() bool { return cur.Load() == 4 })
	if err := p.Resize(2); err != nil {
		t.Fatal(err)
	}
	shrunk.Store(true)
	close(release)
	for i, err := range <-res {
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if n := over.Load(); n != 0 {
		t.Fatalf("%d tasks started with more than 2 running after the pool shrank to 2", n)
	}
}

// Every task passes its gate on its lane's slot before it runs, also the
// tasks a lane takes itself; a task whose gate fails does not run and has
// the gate's error, and the others go on.
func TestLanesPassTheGateBeforeEveryTask(t *testing.T) {
	p := newPool(t, 2)
	limit := errors.New("limit")
	var inGate atomic.Int32
	var gatedSeen atomic.Int32
	g, errs := runGroup(t, p, 20, func(context.Context, int) error { return nil }, func(_ context.Context, i int) error {
		inGate.Add(1)
		defer inGate.Add(-1)
		if p.Stats().Gated > 0 {
			gatedSeen.Add(1)
		}
		time.Sleep(200 * time.Microsecond) // a rate limit's wait
		if i == 7 {
			return limit
		}
		return nil
	})
	for i, err := range errs {
		want := error(nil)
		if i == 7 {
			want = limit
		}
		if err != want {
			t.Fatalf("task %d: %v, want %v", i, err, want)
		}
		if runs, want := g.tasks[i].runs.Load(), int32(1); i != 7 && runs != want || i == 7 && runs != 0 {
			t.Fatalf("task %d ran %d times", i, runs)
		}
	}
	byLane := 0
	for i := range g.tasks {
		if g.tasks[i].byLane {
			byLane++
		}
	}
	if byLane == 0 || gatedSeen.Load() != 20 {
		t.Fatalf("%d tasks taken by lanes, %d gates counted in Stats.Gated; want some, 20", byLane, gatedSeen.Load())
	}
}

// A lane gives its slot to another caller waiting for one instead of
// taking the next task of its group: a shared pool stays fair.
func TestLanesGiveTheSlotToAnotherWaiter(t *testing.T) {
	p := newPool(t, 1)
	var started atomic.Int32
	var otherAt atomic.Int32
	other := make(chan error, 1)
	_, errs := runGroup(t, p, 20, func(_ context.Context, i int) error {
		if started.Add(1) == 2 {
			go func() {
				other <- p.Do(context.Background(), func(context.Context) error {
					otherAt.Store(started.Load())
					return nil
				})
			}()
			waitUntil(t, "the other caller to wait", func() bool { return p.Stats().Waiting >= 1 })
			time.Sleep(10 * time.Millisecond) // the group's own caller may wait too
		}
		return nil
	}, nil)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	// Right after the second task, or after the third when the group's own
	// caller waited first for a lane of its own.
	if at := otherAt.Load(); at < 2 || at > 3 {
		t.Fatalf("the other caller ran after %d tasks of the group; want after the second or third", at)
	}
}

// Closing the pool ends its lanes: the tasks not started have ErrClosed.
func TestLanesEndWhenThePoolCloses(t *testing.T) {
	p, err := pool.New("close", 2)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	_, errs := runGroup(t, p, 10, func(_ context.Context, i int) error {
		if i == 0 {
			go func() { _ = p.Close(context.Background()); close(closed) }()
		}
		time.Sleep(5 * time.Millisecond)
		return nil
	}, nil)
	<-closed
	n := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, pool.ErrClosed):
			n++
		case err != nil:
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if n == 0 {
		t.Fatal("every task ran after Close; want the ones not started refused")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// untilAllStarted is a task that returns once n tasks have started, or
// fails after 5 s: the tasks of a group that does not run them at once.
func untilAllStarted(n int) func(context.Context, int) error {
	var all sync.WaitGroup
	all.Add(n)
	return func(context.Context, int) error {
		all.Done()
		done := make(chan struct{})
		go func() { all.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the other tasks did not start")
		}
	}
}

func requireNoErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
}
