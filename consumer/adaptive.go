package consumer

import (
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/pool/adaptive"
	"github.com/rmqkit/rmqkit/throttle"
)

// Adaptive configures adaptive sizing of a subscription's pool (see
// WithAdaptivePool and package pool/adaptive for the algorithm).
type Adaptive struct {
	// Min is the smallest size; 0 means 2.
	Min int
	// Max is the largest size; 0 means 200 (or Min if larger).
	Max int
	// Window is how often the size is decided, from the handlers that
	// returned meanwhile; 0 means one second. A window with fewer than 20
	// handler runs is extended (up to 30 windows). At least 100 ms.
	Window time.Duration
}

// MinAdaptiveWindow is the shortest Adaptive.Window.
const MinAdaptiveWindow = 100 * time.Millisecond

// WithDefaults returns a with its zero fields replaced by the defaults.
func (a Adaptive) WithDefaults() Adaptive {
	c := adaptive.Config{Min: a.Min, Max: a.Max}.WithDefaults()
	a.Min, a.Max = c.Min, c.Max
	if a.Window == 0 {
		a.Window = adaptive.DefaultWindow
	}
	return a
}

func (a Adaptive) validate() error {
	if err := (adaptive.Config{Min: a.Min, Max: a.Max}).Validate(pool.MaxSize); err != nil {
		return fmt.Errorf("%w: adaptive pool: %w", ErrInvalidOption, err)
	}
	if a.Window != 0 && a.Window < MinAdaptiveWindow {
		return fmt.Errorf("%w: adaptive pool: window %v is below %v", ErrInvalidOption, a.Window, MinAdaptiveWindow)
	}
	return nil
}

// WithAdaptivePool sizes the subscription's own pool by itself, within
// [a.Min, a.Max]: it finds the concurrency at which the handler's
// downstream gives its full throughput and keeps the pool there, at the
// lowest handler latency that reaches it (package pool/adaptive). The
// sample is the handler's own run time (middleware included), never the
// time a message waited for a rate limit or a worker. Handler errors count
// as overload: above 5% of a window, the pool shrinks by a tenth.
//
// Adaptive sizing starts at a.Min when the consumer starts, whatever
// WithPoolSize said, and climbs from there. It never grows the pool while a
// rate limit (the subscription's, the group's or the process limiter)
// makes messages wait: the limit, not concurrency, bounds the subscription
// then. SetPoolSize pins the size: it turns adaptive sizing off for the
// subscription until the consumer is restarted.
//
// It cannot be combined with WithSharedPool (Subscribe returns an error
// wrapping ErrInvalidOption). Stats reports the controller's state in
// SubscriptionStats.Adaptive; each decision is logged at debug level.
func WithAdaptivePool(a Adaptive) SubscribeOption {
	return subOptionFunc(func(s *subConfig) { s.adaptive = &a })
}

// AdaptiveStats is the state of a subscription's adaptive sizing.
type AdaptiveStats struct {
	Enabled bool // WithAdaptivePool was given
	// Pinned says SetPoolSize turned adaptive sizing off.
	Pinned bool
	// Size is the size the controller set last.
	Size int
	// Estimate is the controller's estimate of the concurrency the
	// downstream serves without queueing, from the last window.
	Estimate float64
	// Baseline is the handler's median run time without queueing.
	Baseline time.Duration
	// Median is the handlers' median run time in the last window.
	Median time.Duration
	// Reason says why the controller made its last decision ("slow-start",
	// "grow", "hold", "queueing", "errors", "probe", "throttled", ...).
	Reason string
	// Decisions counts the windows decided on.
	Decisions uint64
}

// adaptiveSizer drives a subscription's adaptive controller. Handlers feed
// its sampler; one goroutine per subscription decides once per window.
type adaptiveSizer struct {
	cfg    Adaptive
	sample sampler

	// mu orders the controller's resizes with SetPoolSize's pin, so that
	// no controller resize lands after a pin.
	mu     sync.Mutex
	pinned bool
	stats  AdaptiveStats
}

func newAdaptiveSizer(a Adaptive) *adaptiveSizer {
	a = a.WithDefaults()
	return &adaptiveSizer{cfg: a, stats: AdaptiveStats{Enabled: true, Size: a.Min, Reason: adaptive.ReasonStart.String()}}
}

// initAdaptive checks the subscription's adaptive option and attaches its
// sizer. Called by Subscribe with the new subscription.
func (c *Consumer) initAdaptive(s *subscription, sc subConfig) error {
	if sc.adaptive == nil {
		return nil
	}
	if err := sc.adaptive.validate(); err != nil {
		return fmt.Errorf("topic %q: %w", s.topic, err)
	}
	s.adaptive = newAdaptiveSizer(*sc.adaptive)
	return nil
}

// startAdaptive starts the controller of every adaptive subscription; they
// end when Stop closes renewDone. It requires c.mu.
func (c *Consumer) startAdaptive() {
	for _, s := range c.subs {
		if a := s.adaptive; a != nil {
			done := c.renewDone
			c.bg.Go(func() { c.runAdaptive(s, a, done) })
		}
	}
}

// pinAdaptive turns adaptive sizing off for s: SetPoolSize calls it before
// resizing, and no controller resize happens after it returns.
func (s *subscription) pinAdaptive(logger *slog.Logger, group string) {
	a := s.adaptive
	if a == nil {
		return
	}
	a.mu.Lock()
	was := a.pinned
	a.pinned, a.stats.Pinned = true, true
	a.mu.Unlock()
	if !was {
		logger.Info("rmqkit adaptive pool pinned by SetPoolSize: adaptive sizing is off until restart", "group", group, "topic", s.topic)
	}
}

// settings returns the sizer's bounds (with defaults), or nil.
func (a *adaptiveSizer) settings() *Adaptive {
	if a == nil {
		return nil
	}
	cfg := a.cfg
	return &cfg
}

func (a *adaptiveSizer) snapshot() AdaptiveStats {
	if a == nil {
		return AdaptiveStats{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// limiterWaits sums the waits of the limiters a subscription passes.
func (c *Consumer) limiterWaits(s *subscription) (waits uint64, waiting int) {
	for _, l := range []*throttle.Limiter{s.limiter, c.glim.lim, c.cfg.process} {
		st := l.Stats()
		waits += st.Waits
		waiting += st.Waiting
	}
	return waits, waiting
}

// runAdaptive decides the size of s's pool once per window until done is
// closed or the size is pinned.
func (c *Consumer) runAdaptive(s *subscription, a *adaptiveSizer, done <-chan struct{}) {
	cfg := adaptive.Config{Min: a.cfg.Min, Max: a.cfg.Max}
	st := adaptive.Start(cfg)
	if !c.applyAdaptive(s, a, st, 0) {
		return
	}
	t := time.NewTicker(a.cfg.Window)
	defer t.Stop()
	var (
		acc       window // samples not decided on yet
		since     = time.Now()
		waits, _  = c.limiterWaits(s)
		throttled bool
	)
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			acc.add(a.sample.drain())
			w, n := c.limiterWaits(s)
			throttled = throttled || w > waits || n > 0
			waits = w
			win := acc.window(now.Sub(since), st.Limit)
			win.Throttled = throttled
			st = adaptive.Next(cfg, st, win)
			if st.Reason == adaptive.ReasonFewSamples && now.Sub(since) < maxAdaptiveStretch*a.cfg.Window {
				if !c.applyAdaptive(s, a, st, win.Median) {
					return
				}
				continue // the window goes on
			}
			if !c.applyAdaptive(s, a, st, win.Median) {
				return
			}
			acc, since, throttled = window{}, now, false
		}
	}
}

// maxAdaptiveStretch is how many windows a window with too few samples may
// span before its samples are dropped.
const maxAdaptiveStretch = 30

// applyAdaptive resizes s's pool to st.Limit and records the decision; it
// reports false once the size is pinned.
func (c *Consumer) applyAdaptive(s *subscription, a *adaptiveSizer, st adaptive.State, median time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pinned {
		return false
	}
	old := s.pool.Cap()
	if old != st.Limit {
		if err := s.pool.Resize(st.Limit); err != nil {
			c.cfg.logger.Warn("rmqkit adaptive pool: resize failed", "group", c.group, "topic", s.topic, "size", st.Limit, "error", err)
			return true
		}
	}
	a.stats.Size, a.stats.Estimate, a.stats.Baseline, a.stats.Median = st.Limit, st.Estimate, st.Baseline, median
	a.stats.Reason = st.Reason.String()
	a.stats.Decisions++
	c.cfg.logger.Debug("rmqkit adaptive pool", "group", c.group, "topic", s.topic, "old", old, "size", st.Limit,
		"reason", a.stats.Reason, "estimate", st.Estimate, "baseline", st.Baseline, "median", median)
	return true
}

// observe records one handler run. It is called on the hot path: atomics
// only, no allocation.
func (a *adaptiveSizer) observe(d time.Duration, err error) {
	a.sample.add(d, err != nil)
}

// sampler accumulates handler run times with atomics only: counts, the
// total, and a log-linear histogram (16 buckets per power of two, so a
// median is read within 3%).
type sampler struct {
	count  atomic.Uint64
	errors atomic.Uint64
	busy   atomic.Int64
	hist   [histBuckets]atomic.Uint32
}

const (
	histSub     = 16 // buckets per power of two
	histMaxExp  = 40 // 2^40 ns, about 18 minutes
	histBuckets = histSub + (histMaxExp-4+1)*histSub
)

// bucket returns the histogram bucket of v nanoseconds.
func bucket(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	u := uint64(min(v, 1<<histMaxExp))
	e := bits.Len64(u) - 1 // >= 4
	return histSub + (e-4)*histSub + int((u>>(e-4))&(histSub-1))
}

// bucketBounds returns the range of values bucket i holds.
func bucketBounds(i int) (lo, hi float64) {
	if i < histSub {
		return float64(i), float64(i + 1)
	}
	e, m := (i-histSub)/histSub+4, (i-histSub)%histSub
	return float64(uint64(histSub+m) << (e - 4)), float64(uint64(histSub+m+1) << (e - 4))
}

func (s *sampler) add(d time.Duration, failed bool) {
	s.hist[bucket(int64(d))].Add(1)
	s.busy.Add(int64(d))
	if failed {
		s.errors.Add(1)
	}
	s.count.Add(1)
}

// window is the samples a controller window collected.
type window struct {
	count, errors uint64
	busy          time.Duration
	hist          [histBuckets]uint32
}

// drain moves the sampler's counts into a window; samples added meanwhile
// land in this window or the next.
func (s *sampler) drain() *window {
	w := &window{count: s.count.Swap(0), errors: s.errors.Swap(0), busy: time.Duration(s.busy.Swap(0))}
	for i := range s.hist {
		if s.hist[i].Load() != 0 {
			w.hist[i] = s.hist[i].Swap(0)
		}
	}
	return w
}

func (w *window) add(o *window) {
	w.count += o.count
	w.errors += o.errors
	w.busy += o.busy
	for i, n := range o.hist {
		w.hist[i] += n
	}
}

// median interpolates the median within its bucket.
func (w *window) median() time.Duration {
	var total uint64
	for _, n := range w.hist {
		total += uint64(n)
	}
	if total == 0 {
		return 0
	}
	half := float64(total) / 2
	var cum float64
	for i, n := range w.hist {
		if n == 0 {
			continue
		}
		if cum+float64(n) >= half {
			lo, hi := bucketBounds(i)
			return time.Duration(lo + (hi-lo)*(half-cum)/float64(n))
		}
		cum += float64(n)
	}
	return 0
}

// window returns the controller's view of the samples over elapsed at size
// limit.
func (w *window) window(elapsed time.Duration, limit int) adaptive.Window {
	out := adaptive.Window{Samples: int(w.count), Errors: int(w.errors), Median: w.median()}
	if elapsed > 0 && limit > 0 {
		out.Utilization = float64(w.busy) / (float64(elapsed) * float64(limit))
	}
	return out
}

// startedAt is when the delivery's handler started.
func (d *delivery) startedAt() time.Time {
	if d.msgs != nil {
		return d.msgs[0].started
	}
	return d.msg.started
}
