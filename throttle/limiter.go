package throttle

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxSleep bounds one timer of a waiting caller; a longer wait (a very low
// rate) is slept in several parts.
const maxSleep = time.Hour

// Limiter admits messages at a rate limit that can change while callers
// wait.
//
// It implements a token bucket of size Limit().Burst, refilled at
// Limit().Rate tokens per second; each message takes one token. Callers
// that find the bucket empty wait in arrival order. Only the first of them
// watches the bucket, so a new limit applies at once to every caller
// already waiting (see Set).
//
// The zero value is an unlimited Limiter, as is a nil *Limiter for Wait,
// WaitN and WaitAll. New returns a Limiter with a limit.
//
// Most callers should use Wait, or WaitAll to pass several levels of
// limits.
//
// A Limiter is safe for simultaneous use by multiple goroutines.
type Limiter struct {
	limited atomic.Bool // false: Wait returns at once

	mu      sync.Mutex
	limit   Limit
	bucket  *rate.Limiter // nil while unlimited
	changed chan struct{} // closed and replaced by every Set
	gate    chan struct{} // holds one element while a caller watches the bucket
	clock   clock

	admitted atomic.Uint64
	waits    atomic.Uint64
	waitNs   atomic.Int64
	waiting  atomic.Int64
}

// New returns a Limiter enforcing l. It returns an error wrapping
// ErrInvalidLimit if l is invalid (see Limit.Validate).
func New(l Limit) (*Limiter, error) {
	return newWithClock(l, realClock{})
}

func newWithClock(l Limit, c clock) (*Limiter, error) {
	lim := &Limiter{clock: c}
	if err := lim.Set(l); err != nil {
		return nil, err
	}
	return lim, nil
}

// initLocked prepares a zero Limiter. It requires l.mu.
func (l *Limiter) initLocked() {
	if l.clock == nil {
		l.clock = realClock{}
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
		l.gate = make(chan struct{}, 1)
	}
}

// Limit returns the limit in force, as given to New or Set (a zero Burst
// stays zero; see Limit.EffectiveBurst).
func (l *Limiter) Limit() Limit {
	if l == nil {
		return Limit{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// Set replaces the limit. An invalid limit (see Limit.Validate) returns an
// error wrapping ErrInvalidLimit and leaves the old limit in force.
//
// The new limit applies at once to callers already waiting: the caller at
// the head of the queue recomputes its wait under the new limit, and the
// others follow it in arrival order. This differs from rate.Limiter's
// SetLimit, under which a caller keeps the delay computed when it arrived
// (so raising a low limit would not help the callers already queued).
// Tokens saved up so far are kept, up to the new burst. Setting a zero Rate
// releases every waiting caller; a Limiter that goes from unlimited to
// limited starts with a full bucket.
func (l *Limiter) Set(lim Limit) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.initLocked()
	switch {
	case lim.Unlimited():
		l.bucket = nil
	case l.bucket == nil:
		l.bucket = rate.NewLimiter(rate.Limit(lim.Rate), lim.EffectiveBurst())
	default:
		now := l.clock.Now()
		l.bucket.SetLimitAt(now, rate.Limit(lim.Rate))
		l.bucket.SetBurstAt(now, lim.EffectiveBurst())
	}
	l.limit = lim
	l.limited.Store(!lim.Unlimited())
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// Limited reports whether the Limiter has a limit now: while it does not,
// Wait and WaitN return at once. A nil *Limiter is unlimited.
func (l *Limiter) Limited() bool { return l != nil && l.limited.Load() }

// Wait is shorthand for WaitN(ctx, 1).
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil || !l.limited.Load() {
		return nil
	}
	return l.wait(ctx, 1)
}

// WaitN blocks until n messages may pass, or ctx ends. It returns nil at
// once, without looking at ctx, while the Limiter is unlimited; otherwise
// it returns ctx.Err() (unwrapped) if ctx ends first. n larger than the
// burst is admitted burst by burst; tokens already taken when ctx ends are
// not given back. n <= 0 returns nil.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil || !l.limited.Load() || n <= 0 {
		return nil
	}
	return l.wait(ctx, n)
}

func (l *Limiter) wait(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	l.initLocked()
	gate, clk := l.gate, l.clock
	l.mu.Unlock()

	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	start := clk.Now()
	blocked := false
	select {
	case gate <- struct{}{}:
	default:
		blocked = true
		select {
		case gate <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-gate }()

	for left := n; left > 0; {
		d, changed, ok := l.take(clk, &left)
		if ok {
			continue
		}
		blocked = true
		if err := sleep(ctx, clk, d, changed); err != nil {
			return err
		}
	}
	l.admitted.Add(uint64(n))
	if blocked {
		l.waits.Add(1)
		l.waitNs.Add(int64(clk.Now().Sub(start)))
	}
	return nil
}

// take takes up to *left tokens (at most a burst) if the bucket has them,
// or says how long until it will. It sets *left to zero when the limit was
// lifted.
func (l *Limiter) take(clk clock, left *int) (wait time.Duration, changed <-chan struct{}, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bucket == nil {
		*left = 0
		return 0, nil, true
	}
	now := clk.Now()
	n := min(*left, l.bucket.Burst())
	if l.bucket.AllowN(now, n) {
		*left -= n
		return 0, nil, true
	}
	missing := float64(n) - l.bucket.TokensAt(now)
	secs := math.Max(missing/l.limit.Rate, 0)
	d := maxSleep
	if secs < maxSleep.Seconds() {
		d = max(time.Duration(math.Ceil(secs*1e9)), time.Nanosecond)
	}
	return d, l.changed, false
}

// sleep waits for d, a change of limit, or the end of ctx.
func sleep(ctx context.Context, clk clock, d time.Duration, changed <-chan struct{}) error {
	c, stop := clk.NewTimer(d)
	defer stop()
	select {
	case <-c:
		return nil
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
