package pool

import "time"

// Option configures a Pool in New.
type Option func(*options)

type options struct {
	idle time.Duration
}

// WithIdleTimeout sets how long an idle worker goroutine is kept before it
// exits. The default is one minute; zero or negative keeps the default.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.idle = d
		}
	}
}

// discard silences ants' own logger; errors reach callers through Do.
type discard struct{}

func (discard) Printf(string, ...any) {}
