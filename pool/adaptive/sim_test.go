package adaptive_test

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rmqkit/rmqkit/pool/adaptive"
)

// downstream is a simulated service: a call that starts with n calls in
// flight (itself included) takes base·f(n/knee)·noise, with f flat up to
// the knee and rising in proportion beyond it (squared when retrograde,
// so that throughput falls past the knee).
type downstream struct {
	knee      func(now time.Duration) float64
	base      time.Duration
	sigma     float64 // lognormal noise of every call
	outliers  float64 // share of calls 10 times slower
	retro     bool
	timeoutAt time.Duration // from then on every call fails after timeout
	timeout   time.Duration
	// pause makes every call pauseFactor times slower in [pauseFrom,
	// pauseTo): the consumer's process starved of CPU, say.
	pauseFrom, pauseTo time.Duration
	pauseFactor        float64
}

func (d downstream) call(now time.Duration, inflight int, rng *rand.Rand) (time.Duration, bool) {
	if d.timeout > 0 && now >= d.timeoutAt {
		return d.timeout, false
	}
	x := float64(inflight) / d.knee(now)
	f := max(1, x)
	if d.retro {
		f *= f
	}
	noise := math.Exp(d.sigma * rng.NormFloat64())
	if now >= d.pauseFrom && now < d.pauseTo {
		noise *= d.pauseFactor
	}
	if d.outliers > 0 && rng.Float64() < d.outliers {
		noise *= 10
	}
	return time.Duration(float64(d.base) * f * noise), true
}

// load is how tasks arrive: a backlog (the pool is always busy) or a
// Poisson stream of rate per second.
type load struct {
	rate float64 // 0: backlog
}

// scenario is one simulated run.
type scenario struct {
	down    downstream
	load    load
	cfg     adaptive.Config
	window  time.Duration
	windows int
	seed    uint64
	// throttled marks windows as rate-limited.
	throttled bool
}

// record is what one window did.
type record struct {
	limit      int // the size the window ran at
	next       int // the size decided after it
	throughput float64
	median     time.Duration
	reason     adaptive.Reason
	estimate   float64
}

type completion struct {
	at, dur time.Duration
	ok      bool
}

type completions []completion

func (c completions) Len() int           { return len(c) }
func (c completions) Less(i, j int) bool { return c[i].at < c[j].at }
func (c completions) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)        { *c = append(*c, x.(completion)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// simulate runs the scenario with a virtual clock: events are calls
// ending, tasks arriving and windows ending; nothing sleeps.
func simulate(sc scenario) []record {
	rng := rand.New(rand.NewPCG(sc.seed, 42))
	st := adaptive.Start(sc.cfg)
	var (
		now      time.Duration
		running  completions
		queued   int // tasks waiting for a worker
		nextArr  = time.Duration(math.MaxInt64)
		winEnd   = sc.window
		since    time.Duration // start of the samples not yet decided on
		durs     []time.Duration
		errs     int
		busy     time.Duration
		out      = make([]record, 0, sc.windows)
		limit    = st.Limit
		interval = func() time.Duration { return time.Duration(rng.ExpFloat64() / sc.load.rate * float64(time.Second)) }
	)
	if sc.load.rate > 0 {
		nextArr = interval()
	}
	startCalls := func() {
		for len(running) < limit && (sc.load.rate == 0 || queued > 0) {
			if sc.load.rate > 0 {
				queued--
			}
			d, ok := sc.down.call(now, len(running)+1, rng)
			heap.Push(&running, completion{at: now + d, dur: d, ok: ok})
		}
	}
	startCalls()
	for len(out) < sc.windows {
		nextDone := time.Duration(math.MaxInt64)
		if len(running) > 0 {
			nextDone = running[0].at
		}
		switch {
		case winEnd <= nextDone && winEnd <= nextArr:
			now = winEnd
			w := adaptive.Window{Samples: len(durs), Errors: errs, Throttled: sc.throttled,
				Utilization: float64(busy) / (float64(now-since) * float64(limit))}
			if len(durs) > 0 {
				slices.Sort(durs)
				w.Median = durs[len(durs)/2]
			}
			st = adaptive.Next(sc.cfg, st, w)
			out = append(out, record{limit: limit, next: st.Limit, median: w.Median, reason: st.Reason, estimate: st.Estimate,
				throughput: float64(len(durs)-errs) / sc.window.Seconds()})
			limit = st.Limit
			winEnd += sc.window
			// Too few samples: the window goes on, up to maxStretch
			// windows (as the consumer's driver does).
			if st.Reason != adaptive.ReasonFewSamples || now-since >= maxStretch*sc.window {
				durs, errs, busy, since = durs[:0], 0, 0, now
			}
		case nextDone <= nextArr:
			c := heap.Pop(&running).(completion)
			now = c.at
			durs = append(durs, c.dur)
			busy += c.dur
			if !c.ok {
				errs++
			}
		default:
			now = nextArr
			queued++
			nextArr = now + interval()
		}
		startCalls()
	}
	return out
}

// maxStretch is how many windows a window with too few samples may span.
const maxStretch = 30

func constant(k float64) func(time.Duration) float64 { return func(time.Duration) float64 { return k } }

// step is a knee of a before at and b from then on.
func step(a, b float64, at time.Duration) func(time.Duration) float64 {
	return func(now time.Duration) float64 {
		if now < at {
			return a
		}
		return b
	}
}
