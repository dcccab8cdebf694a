package consumer

import (
	"github.com/rmqkit/rmqkit/throttle"
)

// TuningOption is an option that makes sense at both levels. Given to New
// it sets the default of every subscription; given to Subscribe it sets
// that subscription's value, which wins.
type TuningOption interface {
	Option
	SubscribeOption
}

// tuning is a TuningOption: one function per level.
type tuning struct {
	consumer func(*config)
	sub      func(*subConfig)
}

func (t tuning) applyConsumer(c *config)        { t.consumer(c) }
func (t tuning) applySubscription(s *subConfig) { t.sub(s) }

// WithPoolSize sets the size of a subscription's own pool of workers: the
// most handlers it runs at once. The default is 20. Change it live with
// SetPoolSize. At subscription level it excludes WithSharedPool.
func WithPoolSize(n int) TuningOption {
	return tuning{
		consumer: func(c *config) { c.poolSize = n },
		sub:      func(s *subConfig) { s.poolSize, s.poolSizeSet = n, true },
	}
}

// WithMaxRetries sets how many times a failed message is redelivered before
// it goes to the dead-letter queue. The default is 16, as in RocketMQ; 0
// sends a failed message to the dead-letter queue at once.
func WithMaxRetries(n int) TuningOption {
	return tuning{
		consumer: func(c *config) { c.maxRetries = n },
		sub:      func(s *subConfig) { s.maxRetries = &n },
	}
}

// WithMiddleware adds middleware around handlers. Middleware given first
// runs first; the consumer's runs before the subscription's.
func WithMiddleware(mw ...Middleware) TuningOption {
	return tuning{
		consumer: func(c *config) { c.middleware = append(c.middleware, mw...) },
		sub:      func(s *subConfig) { s.middleware = append(s.middleware, mw...) },
	}
}

// WithRate caps the rate at which a subscription's handlers start. Given to
// New it is every subscription's own limit, not a shared one (that is
// WithGroupRate). The limit is passed once a worker is reserved for a
// message, right before its handler starts, so a change with SetRate is in
// force at once, whatever already waits for a worker. The default, the zero
// Limit, is unlimited. A message waiting for the limit is not failed and not
// retried.
func WithRate(l throttle.Limit) TuningOption {
	return tuning{
		consumer: func(c *config) { c.rate = l },
		sub:      func(s *subConfig) { s.rate, s.rateSet = l, true },
	}
}
