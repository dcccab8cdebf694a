package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
)

// MaxSize is the largest size New and Resize accept. It guards against a
// mistyped configuration value spawning millions of goroutines.
const MaxSize = 1 << 16

// Task is the work a Pool runs. It receives the context given to Do.
type Task func(ctx context.Context) error

// Pool is a named, bounded, resizable worker pool.
//
// At most Cap() tasks run at once; further callers of Do wait, in arrival
// order, until a worker is free or their context ends. A Pool is safe for
// simultaneous use by multiple goroutines.
type Pool struct {
	name    string
	workers *ants.Pool
	jobs    sync.Pool

	mu      sync.Mutex
	size    int
	running int
	queue   []chan struct{} // FIFO of waiting callers, each woken by one send
	waiters sync.Pool       // of chan struct{} with room for one: reused
	timers  sync.Pool       // of *time.Timer, stopped: Lanes.Serve's, reused
	closed  bool

	busy      atomic.Bool // see noteLocked
	waiting   atomic.Int64
	overran   atomic.Int64 // tasks still running that their caller stopped waiting for
	gated     atomic.Int64 // callers holding a worker while they wait at their gate
	completed atomic.Uint64
	failed    atomic.Uint64
	panicked  atomic.Uint64
}

// New returns a pool named name that runs at most size tasks at once.
// name must not be empty and size must be in [1, MaxSize]; the error wraps
// ErrInvalidName or ErrInvalidSize.
func New(name string, size int, opts ...Option) (*Pool, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: name is empty", ErrInvalidName)
	}
	if err := checkSize(size); err != nil {
		return nil, err
	}
	o := options{idle: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	// ants runs the tasks; admission is ours so that waiting honours a
	// context, which ants' blocking Submit does not.
	w, err := ants.NewPool(size, ants.WithExpiryDuration(o.idle), ants.WithLogger(discard{}))
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", name, err)
	}
	p := &Pool{name: name, workers: w, size: size}
	p.waiters.New = func() any { return make(chan struct{}, 1) }
	p.jobs.New = func() any {
		j := &job{pool: p, done: make(chan error, 1)}
		j.runFn = j.run // bound once so Submit does not allocate per call
		return j
	}
	return p, nil
}

func checkSize(size int) error {
	if size < 1 || size > MaxSize {
		return fmt.Errorf("%w: size %d is outside [1, %d]", ErrInvalidSize, size, MaxSize)
	}
	return nil
}

// Name returns the name given to New.
func (p *Pool) Name() string { return p.name }

// Cap returns the current size: the number of tasks that may run at once.
func (p *Pool) Cap() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// Do runs task on a worker of the pool and returns its error. It waits for
// a free worker first; ctx bounds only that wait (Do returns ctx.Err() if
// it ends first) and is passed to task. A panic in task is recovered and
// returned as a *PanicError. Do returns ErrClosed after Close.
func (p *Pool) Do(ctx context.Context, task Task) error {
	return p.DoWithin(ctx, task, 0, nil)
}

// DoWithin is Do with a bound on how long the caller waits for the task
// once it runs: after hold (0 means no bound), or when quit is closed
// (nil means never), DoWithin stops waiting and returns ErrOverran while
// the task keeps its worker until it returns. Use it where a task that
// ignores its context must not hold the caller forever.
func (p *Pool) DoWithin(ctx context.Context, task Task, hold time.Duration, quit <-chan struct{}) error {
	return p.DoGated(ctx, nil, task, hold, quit)
}

// DoGated is DoWithin with a gate: once a worker is reserved for the task,
// gate(ctx) runs on the caller's goroutine before the task starts, and an
// error from it releases the worker and is returned without running the
// task. A rate limit applied as the gate bounds task starts themselves,
// so a changed limit is in force at once, whatever waits for a worker.
// Tasks waiting at their gate count in Stats.Gated, not Running.
func (p *Pool) DoGated(ctx context.Context, gate func(context.Context) error, task Task, hold time.Duration, quit <-chan struct{}) error {
	st, err := p.Start(ctx, gate, task)
	if err != nil {
		return err
	}
	return st.Wait(hold, quit)
}

// Started is a task that Start started; its result comes from Wait.
type Started struct {
	j   *job
	at  time.Time
	err error // a task of Lanes that never ran: why (j is nil)
}

// Start is the first half of DoGated: it reserves a worker (waiting for
// one until ctx ends), passes gate on it, and starts task without waiting
// for it. Every Started must be waited for, exactly once, with Wait. A
// caller with several tasks starts them all, then waits for each, so that
// they run at once on the pool's workers.
func (p *Pool) Start(ctx context.Context, gate func(context.Context) error, task Task) (Started, error) {
	return p.start(ctx, gate, task, nil)
}

// Runner is a task that carries its own state and gate. StartRunner takes
// one where Start takes two funcs, so that a caller starting many tasks
// does not allocate a closure for each.
type Runner interface {
	// Gate is passed once a worker is reserved, before Run; an error
	// releases the worker and is returned by StartRunner. Return nil for
	// no gate.
	Gate(ctx context.Context) error
	// Run is the task.
	Run(ctx context.Context) error
}

// StartRunner is Start for a Runner.
func (p *Pool) StartRunner(ctx context.Context, r Runner) (Started, error) {
	return p.start(ctx, r.Gate, nil, r)
}

func (p *Pool) start(ctx context.Context, gate func(context.Context) error, task Task, r Runner) (Started, error) {
	if err := p.acquire(ctx); err != nil {
		return Started{}, err
	}
	if gate != nil {
		p.gated.Add(1)
		err := gate(ctx)
		p.gated.Add(-1)
		if err != nil {
			p.release()
			return Started{}, err
		}
	}
	j := p.jobs.Get().(*job)
	j.ctx, j.task, j.runner, j.pool = ctx, task, r, p
	j.state.Store(jobRunning)
	at := time.Now()
	if err := p.workers.Submit(j.runFn); err != nil {
		j.ctx, j.task, j.runner = nil, nil, nil
		p.jobs.Put(j)
		p.release()
		return Started{}, fmt.Errorf("pool %q: %w", p.name, err)
	}
	return Started{j: j, at: at}, nil
}

// At returns when the task was started: right after its gate, as its
// worker was about to run it. A task of Lanes that a lane took itself can
// read it from Run, and need not read the clock again.
func (s *Started) At() time.Time { return s.at }

// Wait is the second half of DoGated: it returns the task's error, or
// ErrOverran once hold has passed since the task started (0: no bound) or
// quit is closed (nil: never); the task then keeps its worker until it
// returns.
func (s Started) Wait(hold time.Duration, quit <-chan struct{}) error {
	j := s.j
	if j == nil {
		return s.err
	}
	p := j.pool
	if j.state.Load() == jobReturned || !j.state.CompareAndSwap(jobRunning, jobWaiting) {
		// Already returned: no channel to wait on, no timer to arm. A
		// caller that started a batch finds most of its tasks here.
		err := j.err
		j.err = nil
		p.jobs.Put(j)
		return err
	}
	var err error
	if hold <= 0 && quit == nil {
		err = <-j.done
	} else {
		var expired <-chan time.Time
		if hold > 0 {
			left := max(hold-time.Since(s.at), time.Nanosecond)
			// The job's own timer, reused with the job: a timer per call
			// cost three allocations.
			if j.timer == nil {
				j.timer = time.NewTimer(left)
			} else {
				j.timer.Reset(left)
			}
			expired = j.timer.C
		}
		// The timer is stopped before the job can go back to the pool
		// (the worker puts an abandoned job back itself).
		select {
		case err = <-j.done:
			stopTimer(j, hold)
		case <-expired:
			if j.abandon() {
				return ErrOverran
			}
			err = <-j.done // it returned as the wait ended
		case <-quit:
			stopTimer(j, hold)
			if j.abandon() {
				return ErrOverran
			}
			err = <-j.done
		}
	}
	j.err = nil
	p.jobs.Put(j)
	return err
}

func stopTimer(j *job, hold time.Duration) {
	if hold > 0 {
		j.timer.Stop()
	}
}

func (p *Pool) count(err error) {
	switch {
	case err == nil:
		p.completed.Add(1)
	case isPanic(err):
		p.panicked.Add(1)
	default:
		p.failed.Add(1)
	}
}

func isPanic(err error) bool {
	_, ok := err.(*PanicError)
	return ok
}

// acquire takes a slot, waiting in FIFO order while the pool is full.
func (p *Pool) acquire(ctx context.Context) error {
	return p.acquireFor(ctx, nil)
}

// errNotNeeded is acquireFor's answer when l needed no slot any more.
var errNotNeeded = errors.New("pool: slot not needed")

// acquireFor is acquire for the caller of l when l is not nil: while it
// waits, l's lanes may continue on their slots (it is l.waiter), and it
// gives up with errNotNeeded once every task of l is claimed.
func (p *Pool) acquireFor(ctx context.Context, l *Lanes) error {
	var gone <-chan struct{}
	if l != nil {
		gone = l.all
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.running < p.size && len(p.queue) == 0 {
		p.running++
		p.mu.Unlock()
		return nil
	}
	ready := p.waiters.Get().(chan struct{})
	p.queue = append(p.queue, ready)
	p.noteLocked()
	if l != nil {
		l.waiter = ready
	}
	p.mu.Unlock()
	p.waiting.Add(1)
	defer p.waiting.Add(-1)

	var err error
	select {
	case <-ready:
		p.mu.Lock()
		closed := p.closed
		if l != nil {
			l.waiter = nil
		}
		p.mu.Unlock()
		p.waiters.Put(ready)
		if closed {
			p.release()
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-gone:
		err = errNotNeeded
	}
	p.mu.Lock()
	if l != nil {
		l.waiter = nil
	}
	for i, q := range p.queue {
		if q == ready {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			p.noteLocked()
			p.mu.Unlock()
			p.waiters.Put(ready)
			return err
		}
	}
	p.mu.Unlock()
	// Woken and cancelled at once: the slot is ours, give it back.
	<-ready
	p.waiters.Put(ready)
	p.release()
	return err
}

// tryAcquire takes a slot if one is free and no one waits for it.
func (p *Pool) tryAcquire() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.running >= p.size || len(p.queue) > 0 {
		return false
	}
	p.running++
	return true
}

func (p *Pool) release() {
	p.mu.Lock()
	p.running--
	p.wakeLocked()
	p.mu.Unlock()
}

// wakeLocked hands free slots to waiters in arrival order.
func (p *Pool) wakeLocked() {
	for len(p.queue) > 0 && (p.running < p.size || p.closed) {
		p.queue[0] <- struct{}{} // buffered: never blocks
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.running++
	}
	p.noteLocked()
}

// noteLocked records whether a lane must look at the pool under its lock
// before it takes another task (Lanes: keep): the pool is closed, runs
// more than its size, or someone waits. It requires p.mu and follows
// every change of those.
func (p *Pool) noteLocked() {
	p.busy.Store(p.closed || p.running > p.size || len(p.queue) > 0)
}

// Resize sets the number of tasks that may run at once to n, in [1, MaxSize].
// Tasks already running are not interrupted: after shrinking, the pool runs
// more than n tasks until enough of them finish. Waiting callers are admitted
// at once when the pool grows. An invalid n returns an error wrapping
// ErrInvalidSize and leaves the size unchanged.
func (p *Pool) Resize(n int) error {
	if err := checkSize(n); err != nil {
		return fmt.Errorf("pool %q: %w", p.name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.size = n
	// ants must never be the narrower bound, or admitted tasks would queue
	// inside ants where contexts are not honoured.
	p.workers.Tune(max(n, p.running))
	p.wakeLocked()
	return nil
}

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Name      string // the pool's name
	Capacity  int    // tasks that may run at once
	Running   int    // tasks running now
	Gated     int    // callers holding a worker while they wait at their gate (DoGated)
	Waiting   int    // callers of Do waiting for a worker
	Completed uint64 // tasks that returned nil
	Failed    uint64 // tasks that returned an error
	Panicked  uint64 // tasks that panicked
	Overran   int    // tasks still running that their caller stopped waiting for (DoWithin)
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	size, running := p.size, p.running
	p.mu.Unlock()
	return Stats{
		Name:      p.name,
		Capacity:  size,
		Running:   running - int(p.gated.Load()),
		Gated:     int(p.gated.Load()),
		Waiting:   int(p.waiting.Load()),
		Completed: p.completed.Load(),
		Failed:    p.failed.Load(),
		Panicked:  p.panicked.Load(),
		Overran:   int(p.overran.Load()),
	}
}

// Close stops admitting tasks: waiting and later callers of Do get
// ErrClosed. It waits for running tasks to finish until ctx ends, then
// releases the workers. It returns ctx.Err() if running tasks outlived ctx.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.wakeLocked()
	}
	p.mu.Unlock()
	return p.workers.ReleaseContext(ctx)
}

// job is one task handed to an ants worker. Jobs are recycled through a
// sync.Pool so that Do does not allocate on the hot path.
type job struct {
	ctx    context.Context
	task   Task
	runner Runner // instead of task (StartRunner)
	pool   *Pool
	lanes  *Lanes // a job of Lanes: its worker goes on to the next task
	// requested: a lane Serve started for a lane's request (Lanes.start)
	requested bool
	done      chan error // the result, sent only to a caller waiting for it (jobWaiting)
	err       error      // the result, for a caller that did not wait (jobReturned)
	runFn     func()
	state     atomic.Int32
	timer     *time.Timer // DoWithin's hold, reused (Go 1.23 timers: no stale fires after Stop/Reset)
}

// Job states: the caller and the worker race to finish; the first to move
// the state decides who recycles the job. A caller that finds its task
// returned reads its result from err; one that waits for it (jobWaiting)
// gets it from done, a channel operation only then.
const (
	jobRunning int32 = iota
	jobWaiting
	jobReturned
	jobAbandoned
)

func (j *job) run() {
	if l := j.lanes; l != nil {
		j.lanes = nil
		l.work(j)
		return
	}
	ctx, task, r, p := j.ctx, j.task, j.runner, j.pool
	j.ctx, j.task, j.runner = nil, nil, nil
	if r != nil {
		task = r.Run
	}
	err := safeRun(ctx, task)
	// The worker frees its slot as the task returns, not when the caller
	// collects the result: a caller that starts several tasks (Start) may
	// be waiting for a slot before it waits for any result.
	p.release()
	j.finish(err)
}

// finish counts a returned task and hands its result to the caller, or
// recycles the job if the caller gave up on it.
func (j *job) finish(err error) {
	p := j.pool
	p.count(err)
	j.err = err
	if j.state.CompareAndSwap(jobRunning, jobReturned) {
		return
	}
	if j.state.CompareAndSwap(jobWaiting, jobReturned) {
		j.err = nil
		j.done <- err
		return
	}
	// The caller gave up on this task: the worker recycles the job.
	j.err = nil
	p.overran.Add(-1)
	p.jobs.Put(j)
}

// abandon marks the job as no longer awaited by its waiting caller; false
// means the task has already returned and its result is in done.
func (j *job) abandon() bool {
	if !j.state.CompareAndSwap(jobWaiting, jobAbandoned) {
		return false
	}
	j.pool.overran.Add(1)
	return true
}

func safeRun(ctx context.Context, task Task) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return task(ctx)
}
