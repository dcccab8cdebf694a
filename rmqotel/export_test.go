package rmqotel

import (
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// WithWaits replaces how Middleware reads a message's waits, for tests:
// messages built by consumer.NewTestMessage never waited.
func WithWaits(f func(*consumer.Message) (throttle, pool time.Duration)) Option {
	return func(c *config) { c.waits = f }
}
