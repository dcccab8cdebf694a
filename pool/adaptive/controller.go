package adaptive

import (
	"fmt"
	"math"
	"time"
)

// Defaults of Config and of the window the consumer uses.
const (
	DefaultMin        = 2
	DefaultMax        = 200
	DefaultWindow     = time.Second
	DefaultProbeEvery = 40
	// MinSamples is the fewest tasks a window needs for the controller to
	// act on it; a window with fewer holds the size.
	MinSamples = 20
	// Saturated is the utilization (busy worker time over the window's
	// worker time) from which the pool counts as the bound on throughput.
	Saturated = 0.8
	// maxErrorShare above which a window shrinks the pool.
	maxErrorShare = 0.05
	// slowStartRise is how far above the baseline the median may be while
	// slow start goes on.
	slowStartRise = 1.1
	// floorWindows at Min after which the baseline is measured again.
	floorWindows = 5
	// minGradient bounds the shrink of one window (to a fifth).
	minGradient = 0.2
)

// Config bounds the controller. The zero Config is DefaultMin, DefaultMax
// and DefaultProbeEvery.
type Config struct {
	// Min is the smallest size, at least 1; 0 means DefaultMin.
	Min int
	// Max is the largest size, at least Min; 0 means DefaultMax (or Min if
	// larger).
	Max int
	// ProbeEvery is the number of windows between baseline probes (one
	// window at half the size); 0 means DefaultProbeEvery, a negative value
	// turns probes off after the first measurement.
	ProbeEvery int
}

// WithDefaults returns c with its zero fields replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.Min == 0 {
		c.Min = DefaultMin
	}
	if c.Max == 0 {
		c.Max = max(DefaultMax, c.Min)
	}
	if c.ProbeEvery == 0 {
		c.ProbeEvery = DefaultProbeEvery
	}
	return c
}

// Validate reports a Config that cannot work: Min below 1 or Max below
// Min (after defaults), or a Max above maxSize when maxSize > 0. The error
// wraps ErrInvalidConfig.
func (c Config) Validate(maxSize int) error {
	d := c.WithDefaults()
	switch {
	case c.Min < 0 || d.Min < 1:
		return fmt.Errorf("%w: min %d is below 1", ErrInvalidConfig, c.Min)
	case d.Max < d.Min:
		return fmt.Errorf("%w: max %d is below min %d", ErrInvalidConfig, d.Max, d.Min)
	case maxSize > 0 && d.Max > maxSize:
		return fmt.Errorf("%w: max %d is above %d", ErrInvalidConfig, d.Max, maxSize)
	}
	return nil
}

// Window is what the pool's tasks measured during one window at the size
// State.Limit.
type Window struct {
	Samples int           // tasks that ended in the window
	Errors  int           // of those, failed (errors, timeouts, panics)
	Median  time.Duration // the tasks' median run time
	// Utilization is the tasks' total run time over the window's length
	// times the size: near 1 when every worker was busy all the time.
	Utilization float64
	// Throttled says a rate limit made tasks wait during the window: the
	// limit, not the pool, bounded throughput.
	Throttled bool
}

// Reason says why the controller made its last decision.
type Reason uint8

// Reasons, as State.Reason reports them.
const (
	ReasonStart        Reason = iota // no window yet: measuring the baseline at Min
	ReasonSlowStart                  // grew by half: no queueing seen yet
	ReasonGrow                       // grew: the median is near the baseline
	ReasonHold                       // kept the size: at the knee
	ReasonQueueing                   // shrank: the median rose above the baseline
	ReasonErrors                     // shrank by a tenth: more than 5% of tasks failed
	ReasonProbe                      // halved for one window to measure the baseline
	ReasonProbed                     // back from a probe with a new baseline
	ReasonFloorReset                 // at Min for 5 windows: baseline measured again
	ReasonFewSamples                 // kept the size: fewer than MinSamples tasks
	ReasonNotSaturated               // kept the size: the load, not the pool, is the bound
	ReasonThrottled                  // kept the size: a rate limit is the bound
	ReasonRecover                    // grew by half back toward the size before a shrink: no queueing seen
)

var reasonNames = [...]string{"start", "slow-start", "grow", "hold", "queueing", "errors", "probe", "probed", "floor-reset", "few-samples", "not-saturated", "throttled", "recover"}

// String returns the reason's name, as logs and metrics show it.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

type phase uint8

const (
	phaseSlowStart phase = iota // the first window of it measures the baseline
	phaseSteady
	phaseProbe
)

// State is the controller's state between windows. Its exported fields are
// read-only reports; create it with Start and advance it with Next.
type State struct {
	// Limit is the size to run the next window at.
	Limit int
	// Baseline is the median run time without queueing; 0 until measured.
	Baseline time.Duration
	// Estimate is the size the downstream serves without queueing,
	// Limit·Baseline/median, of the last window (0 before one).
	Estimate float64
	// Reason says why Limit is what it is.
	Reason Reason

	phase   phase
	resume  int // probe: the size to go back to
	windows int // since the last probe
	atMin   int // windows in a row at Min
	// slowWindow says the last window asked for a smaller size; a
	// shrink for queueing needs two such windows in a row.
	slowWindow bool
	// ceiling is the size before the last shrink for queueing: while
	// below it and no queueing shows, the size grows back by half per
	// window (the shrink was a pause); 0 once reached or disproved.
	ceiling int
}

// Start returns the state before the first window: slow start from Min,
// whose first window measures the baseline. The size the pool had before
// is not trusted: starting above the knee would queue at the downstream
// before the baseline is known.
func Start(cfg Config) State {
	cfg = cfg.WithDefaults()
	return State{Limit: cfg.Min, Reason: ReasonStart, phase: phaseSlowStart}
}

// Next returns the state after window w, run at s.Limit. It is a pure
// function: the same inputs give the same state.
func Next(cfg Config, s State, w Window) State {
	cfg = cfg.WithDefaults()
	s.Limit = clamp(s.Limit, cfg)
	if w.Samples < MinSamples || w.Median <= 0 {
		s.Reason = ReasonFewSamples
		return s
	}
	r := float64(w.Median)
	if float64(w.Errors) > maxErrorShare*float64(w.Samples) {
		s.slowWindow, s.ceiling = false, 0
		l := s.Limit
		if s.phase == phaseProbe {
			l = s.resume
		}
		s.phase, s.windows = phaseSteady, 0
		return s.set(cfg, min(l-1, int(math.Floor(0.9*float64(l)))), ReasonErrors)
	}
	saturated := w.Utilization >= Saturated
	s.windows++
	exiting := false // slow start ends with this window

	switch s.phase {
	case phaseProbe:
		s.Baseline = w.Median
		s.phase, s.windows, s.slowWindow = phaseSteady, 0, false
		return s.set(cfg, s.resume, ReasonProbed)
	case phaseSlowStart:
		if s.Baseline == 0 || w.Median < s.Baseline {
			s.Baseline = w.Median
		}
		s.Estimate = float64(s.Limit) * float64(s.Baseline) / r
		if r <= slowStartRise*float64(s.Baseline) {
			return s.grow(cfg, int(math.Ceil(1.5*float64(s.Limit))), ReasonSlowStart, saturated, w.Throttled)
		}
		s.phase = phaseSteady // queueing seen: the knee is below Limit
		s.slowWindow = true   // the overshoot of slow start is not noise: correct it at once
		exiting = true
	default:
		if w.Median < s.Baseline {
			s.Baseline = w.Median
		}
		if cfg.ProbeEvery > 0 && s.windows >= cfg.ProbeEvery {
			s.phase, s.resume = phaseProbe, s.Limit
			return s.set(cfg, max(cfg.Min, s.Limit/2), ReasonProbe)
		}
	}

	g := max(minGradient, min(1, float64(s.Baseline)/r))
	s.Estimate = float64(s.Limit) * float64(s.Baseline) / r
	if s.Limit == cfg.Min {
		if s.atMin++; s.atMin >= floorWindows {
			s.atMin = 0
			s.Baseline = w.Median
			s.Reason = ReasonFloorReset
			return s
		}
	} else {
		s.atMin = 0
	}
	h := max(2, s.Limit/10)
	target := int(math.Round(float64(s.Limit)*g)) + h
	// A recovery step that meets queueing was wrong: undo it at once and
	// forget the ceiling.
	afterRecover := s.Reason == ReasonRecover
	prev := s.slowWindow || afterRecover
	s.slowWindow = target < s.Limit
	switch {
	case target < s.Limit && !prev:
		// One slow window is not queueing (a pause, a noisy neighbour on
		// the CPU): shrink when the next one confirms it.
		s.Reason = ReasonHold
		return s
	case target < s.Limit:
		switch {
		case exiting || afterRecover:
			s.ceiling = 0
		case s.Reason == ReasonHold || s.Reason == ReasonGrow || s.Reason == ReasonProbed:
			// Shrinking from a settled size: remember it.
			s.ceiling = max(s.ceiling, s.Limit)
		}
		return s.set(cfg, target, ReasonQueueing)
	case target == s.Limit:
		return s.set(cfg, target, ReasonHold)
	}
	if s.ceiling <= s.Limit+h || r > slowStartRise*float64(s.Baseline) {
		s.ceiling = 0
		return s.grow(cfg, target, ReasonGrow, saturated, w.Throttled)
	}
	return s.grow(cfg, max(target, min(s.ceiling, int(math.Ceil(1.5*float64(s.Limit))))), ReasonRecover, saturated, w.Throttled)
}

// grow moves to target (above Limit) unless the pool is not what bounds
// throughput.
func (s State) grow(cfg Config, target int, why Reason, saturated, throttled bool) State {
	switch {
	case throttled:
		s.Reason = ReasonThrottled
		return s
	case !saturated:
		s.Reason = ReasonNotSaturated
		return s
	}
	return s.set(cfg, target, why)
}

func (s State) set(cfg Config, l int, why Reason) State {
	s.Limit, s.Reason = clamp(l, cfg), why
	return s
}

func clamp(l int, cfg Config) int { return max(cfg.Min, min(cfg.Max, l)) }
