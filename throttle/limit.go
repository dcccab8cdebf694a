package throttle

import (
	"fmt"
	"math"
	"strconv"
)

const (
	// MaxRate is the highest rate, in messages per second, that a Limit may
	// have. Higher values are taken for typing mistakes: no consumer
	// handles that many messages per second in one process.
	MaxRate = 1e6

	// MaxBurst is the largest burst a Limit may have.
	MaxBurst = 1_000_000
)

// Limit is a rate limit: on average at most Rate messages per second, with
// at most Burst messages admitted at once after a quiet period.
//
// The zero Limit is unlimited.
type Limit struct {
	// Rate is the sustained rate in messages per second. Zero means
	// unlimited (Burst is then ignored); it must be finite and in
	// [0, MaxRate].
	Rate float64
	// Burst is how many messages may pass at once when the limiter has
	// been idle: the size of the token bucket, in [0, MaxBurst]. Zero
	// means DefaultBurst(Rate).
	Burst int
}

// Unlimited reports whether l admits everything at once (Rate is zero).
func (l Limit) Unlimited() bool { return l.Rate == 0 }

// Validate returns an error wrapping ErrInvalidLimit when l has a negative,
// NaN, infinite or too large Rate or a negative or too large Burst.
func (l Limit) Validate() error {
	switch {
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0):
		return fmt.Errorf("%w: rate %v is not a finite number", ErrInvalidLimit, l.Rate)
	case l.Rate < 0 || l.Rate > MaxRate:
		return fmt.Errorf("%w: rate %v is outside [0, %g] messages per second", ErrInvalidLimit, l.Rate, float64(MaxRate))
	case l.Burst < 0 || l.Burst > MaxBurst:
		return fmt.Errorf("%w: burst %d is outside [0, %d]", ErrInvalidLimit, l.Burst, MaxBurst)
	}
	return nil
}

// EffectiveBurst returns the bucket size the limiter uses for l: Burst, or
// DefaultBurst(Rate) when Burst is zero. It is zero for an unlimited l.
func (l Limit) EffectiveBurst() int {
	switch {
	case l.Unlimited():
		return 0
	case l.Burst > 0:
		return l.Burst
	}
	return DefaultBurst(l.Rate)
}

// String formats l as "unlimited" or "200/s burst 20".
func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + "/s burst " + strconv.Itoa(l.EffectiveBurst())
}

// DefaultBurst is the burst used when a Limit leaves Burst at zero: a tenth
// of a second's worth of messages, ceil(rate/10), and at least 1.
//
// A burst of 1 makes high rates undershoot: each waiter sleeps until the
// next token is due, every timer fires a little late, and the tokens that
// accrue meanwhile are lost because the bucket holds only one. A bucket of
// 100 ms keeps those tokens, so the average rate is met (see the package's
// accuracy tests), at the price of letting up to that many messages pass at
// once after a quiet period.
func DefaultBurst(rate float64) int {
	if !(rate > 0) { // also NaN
		return 0
	}
	b := math.Ceil(rate / 10)
	if b > MaxBurst {
		return MaxBurst
	}
	return max(1, int(b))
}
