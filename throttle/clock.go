package throttle

import "time"

// clock is the time source of a Limiter; tests replace it.
type clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives after d and a stop function.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
