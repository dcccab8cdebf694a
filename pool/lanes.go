package pool

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Lanes runs a caller's group of tasks, such as the messages of one
// consumer callback, so that they cost a few hand-offs between goroutines
// instead of one per task: a worker that finishes a task claims the next
// unstarted task of the group itself and runs it on the same slot (a
// "lane"), passing that task's gate first. The caller starts the first
// lane with Start and then calls Serve, which returns once every task has
// been claimed; each task's result comes from the Started that Lanes
// stored for it, with Wait, as for Start.
//
// A group starts on one lane, and fast tasks run one after another on it
// without a hand-off. Once tasks have waited unclaimed for SpreadAfter
// (Serve's timer), or from the start when the caller calls Spread, the
// group is slow: Serve starts a second lane, and a lane that starts a task
// while tasks are left and no other lane is free to claim them asks for
// one more, on a free slot or else through the caller waiting in the
// pool's queue. So the tasks of a group whose handlers block run at once,
// up to the pool's size, SpreadAfter late (up to a millisecond when the
// process is idle and the runtime's timers are coarse). Every group used
// to ask for a second lane at once, which found little left to do when the
// tasks were fast: that cost 0.3-0.7 µs per message of a no-op handler in
// BenchmarkConsumeThroughput (docs/benchmarks.md), where now about one
// group in twenty spreads. The pool's bounds hold
// as for Start: a lane goes on only while the pool runs no more than its
// size (a shrink ends lanes as their tasks return) and no other caller
// waits for a slot (it gives its slot to that caller instead), and never
// once the pool is closed; every task passes its gate, on its lane's slot,
// before it runs.
//
// A Lanes is used for one group, by one caller; its tasks' Runners may be
// claimed by several workers at once.
type Lanes struct {
	p    *Pool
	n    int32
	src  LaneSource
	lctx context.Context // the context of the tasks that lanes claim

	claimed   atomic.Int32  // tasks claimed (may run past n)
	published atomic.Int32  // tasks whose Started is stored
	all       chan struct{} // closed when every task's Started is stored
	// idle counts lanes not running a task (claiming, at a gate, or about
	// to start), a lane asked for and not yet started counting as one: a
	// lane asks for another only when none is idle.
	idle atomic.Int32
	// slow: tasks waited unclaimed for SpreadAfter, or Spread; lanes ask for more
	slow   atomic.Bool
	spread time.Duration // SpreadAfter; tests set it
	help   chan struct{} // a lane asks the caller for one more (the pool was full)

	waiter chan struct{} // the caller's place in the pool's queue, under p.mu
}

// LaneSource gives Lanes its tasks.
type LaneSource interface {
	// Task claims task i, in [0, n): it returns the task and where Lanes
	// stores its Started. byLane is false for a task started by the
	// caller (Start), true for one a lane claimed; those get the context
	// given to Init. Task is called once per task, possibly from several
	// goroutines at once for different tasks.
	Task(i int, byLane bool) (Runner, *Started)
}

// Init prepares l for n tasks on p, taken from src. ctx is the context of
// the tasks that lanes claim (their gate's and Run's); a lane does not
// start a task once ctx has ended, whose Started then carries ctx.Err().
// An earlier group must be over (Serve returned) before l is used again.
func (l *Lanes) Init(p *Pool, n int, src LaneSource, ctx context.Context) {
	*l = Lanes{p: p, n: int32(n), src: src, lctx: ctx, all: make(chan struct{}), help: make(chan struct{}, 1), spread: SpreadAfter}
	if n == 0 {
		close(l.all)
	}
}

// claim returns the next unclaimed task, or -1.
func (l *Lanes) claim() int {
	if l.claimed.Load() >= l.n {
		return -1
	}
	i := l.claimed.Add(1) - 1
	if i >= l.n {
		return -1
	}
	return int(i)
}

func (l *Lanes) left() bool { return l.claimed.Load() < l.n }

func (l *Lanes) publish() {
	if l.published.Add(1) == l.n {
		close(l.all)
	}
}

// Spread marks the group slow before its first lane starts, so that its
// lanes spread from the first task on instead of after SpreadAfter. A
// caller calls it, after Init, for a group it expects to block, such as
// the next callback of a subscription whose last one was slow.
func (l *Lanes) Spread() { l.slow.Store(true) }

// Claim claims the next task without running it, for a caller that gives
// it up: it returns its index and where its Started goes (the caller
// stores the reason it did not run), or -1 when no task is left.
func (l *Lanes) Claim() (int, *Started) {
	i := l.claim()
	if i < 0 {
		return -1, nil
	}
	_, st := l.src.Task(i, false)
	return i, st
}

// Claimed stores the Started of a task taken with Claim; every task taken
// with Claim must be given back here once its Started is set.
func (l *Lanes) Claimed() { l.publish() }

// Start starts one lane: it reserves a worker, waiting in the pool's queue
// until ctx ends or no task is left, claims the next task, passes its gate
// with ctx and starts it; the lane then goes on with the next tasks. It
// returns the task's index and the error that kept it from starting (also
// stored in its Started), or -1 when no task was left.
func (l *Lanes) Start(ctx context.Context) (int, error) { return l.start(ctx, false) }

// SpreadAfter is how long a group's tasks may wait unclaimed, with no lane
// free to claim them, before its lanes spread over more workers (see
// Lanes). The runtime may fire a timer this short up to a millisecond
// late when the process is idle; that delays only groups whose tasks
// block.
const SpreadAfter = 100 * time.Microsecond

// start is Start; requested says the lane answers a lane's request (Serve),
// whose count in idle the new lane takes over and drops when it starts:
// were Serve to drop it after start returned, the new lane could finish
// its task and leave while the count still said a lane was idle, and no
// lane would ask for the tasks left.
func (l *Lanes) start(ctx context.Context, requested bool) (int, error) {
	p := l.p
	if err := p.acquireFor(ctx, l); err != nil {
		if err == errNotNeeded {
			return -1, nil
		}
		i, st := l.Claim()
		if i < 0 {
			return -1, nil
		}
		*st = Started{err: err}
		l.publish()
		return i, err
	}
	i := l.claim()
	if i < 0 {
		p.release()
		return -1, nil
	}
	r, st := l.src.Task(i, false)
	if err := p.gate(ctx, r); err != nil {
		p.release()
		*st = Started{err: err}
		l.publish()
		return i, err
	}
	j := p.jobs.Get().(*job)
	j.ctx, j.runner, j.lanes, j.requested = ctx, r, l, requested
	j.state.Store(jobRunning)
	*st = Started{j: j, at: time.Now()}
	l.publish()
	if err := p.workers.Submit(j.runFn); err != nil {
		// No task of the group can have its Started collected before
		// Serve returns, so this one's can still be replaced.
		j.ctx, j.runner, j.lanes, j.requested = nil, nil, nil, false
		p.jobs.Put(j)
		p.release()
		err = fmt.Errorf("pool %q: %w", p.name, err)
		*st = Started{err: err}
		return i, err
	}
	return i, nil
}

// Serve starts the lanes that lanes ask for while the pool is full, with
// ctx, and the second lane of a slow group (see Lanes), until every task
// is claimed, and returns once every task's Started is stored. A task the
// pool could not start for Serve (ctx ended, the pool closed) has the
// reason in its Started.
func (l *Lanes) Serve(ctx context.Context) {
	select {
	case <-l.all: // the first lane claimed every task already
		return
	default:
	}
	t, _ := l.p.timers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(l.spread)
	} else {
		t.Reset(l.spread)
	}
	defer func() {
		t.Stop() // since Go 1.23, no stale tick is left to receive
		l.p.timers.Put(t)
	}()
	spread := t.C
	for {
		select {
		case <-l.all:
			return
		case <-l.help:
			l.serveRequest(ctx)
		case <-spread:
			spread = nil
			l.slow.Store(true)
			if l.left() && l.idle.CompareAndSwap(0, 1) {
				l.serveRequest(ctx)
			}
		}
	}
}

// serveRequest starts a lane for a request counted in idle: the lane
// takes the count over, or the count is dropped when no task is left.
func (l *Lanes) serveRequest(ctx context.Context) {
	for {
		i, err := l.start(ctx, true)
		if err == nil && i >= 0 {
			return // the lane started takes the request's count over
		}
		if i < 0 {
			l.idle.Add(-1) // no task left: the request is void
			return
		}
	}
}

// gate passes r's gate on a reserved slot.
func (p *Pool) gate(ctx context.Context, r Runner) error {
	p.gated.Add(1)
	err := r.Gate(ctx)
	p.gated.Add(-1)
	return err
}

// work runs on a worker: j's task, if it has one (a lane the caller
// started), then the tasks it claims, until none is left or the lane
// must give its slot up. A lane gives its slot up before it hands over
// its last task's result, so that a caller holding every result finds
// the lane's slot free.
func (l *Lanes) work(j *job) {
	p := l.p
	if j.requested {
		// Started by Serve for a request: no longer idle.
		j.requested = false
		l.idle.Add(-1)
	}
	if j.runner == nil {
		// A lane asked for by another: it starts idle.
		p.jobs.Put(j)
		if j = l.next(l.claim()); j == nil {
			return
		}
	}
	for {
		if l.slow.Load() && l.left() && l.idle.CompareAndSwap(0, 1) {
			l.more()
		}
		err := safeRun(j.ctx, j.runner.Run)
		j.ctx, j.runner = nil, nil
		l.idle.Add(1)
		if !p.keep(l) {
			l.idle.Add(-1)
			j.finish(err)
			if l.left() && l.idle.CompareAndSwap(0, 1) {
				l.ask()
			}
			return
		}
		i := l.claim()
		if i < 0 {
			l.idle.Add(-1)
			p.release()
			j.finish(err)
			return
		}
		j.finish(err)
		if j = l.next(i); j == nil {
			return
		}
	}
}

// next starts task i, claimed by an idle lane holding a slot, or the
// next one whose gate it passes; with none left it gives the slot up and
// returns nil.
func (l *Lanes) next(i int) *job {
	p := l.p
	for ; i >= 0; i = l.claim() {
		r, st := l.src.Task(i, true)
		err := l.lctx.Err()
		if err == nil {
			err = p.gate(l.lctx, r)
		}
		if err != nil {
			*st = Started{err: err}
			l.publish()
			continue
		}
		j := p.jobs.Get().(*job)
		j.ctx, j.runner = l.lctx, r
		j.state.Store(jobRunning)
		*st = Started{j: j, at: time.Now()}
		l.idle.Add(-1)
		l.publish()
		return j
	}
	l.idle.Add(-1)
	p.release()
	return nil
}

// more starts one more lane on a free slot, or asks the caller for one
// when the pool is full. The caller set idle for it.
func (l *Lanes) more() {
	p := l.p
	if !p.tryAcquire() {
		l.ask()
		return
	}
	j := p.jobs.Get().(*job)
	j.runner, j.lanes = nil, l
	if err := p.workers.Submit(j.runFn); err != nil {
		j.lanes = nil
		p.jobs.Put(j)
		p.release()
		l.ask()
	}
}

// ask has the caller (Serve) start one more lane, waiting in the pool's
// queue. The caller set idle for it.
func (l *Lanes) ask() {
	select {
	case l.help <- struct{}{}:
	default:
	}
}

// keep reports whether a lane whose task returned may claim another on its
// slot: the pool is open, runs no more than its size, and no one but the
// lane's own caller waits for a slot. Otherwise it gives the slot up.
func (p *Pool) keep(l *Lanes) bool {
	if !p.busy.Load() {
		return true // the common case, without the lock
	}
	p.mu.Lock()
	ok := !p.closed && p.running <= p.size && (len(p.queue) == 0 || len(p.queue) == 1 && p.queue[0] == l.waiter)
	if !ok {
		p.running--
		p.wakeLocked()
	}
	p.mu.Unlock()
	return ok
}
