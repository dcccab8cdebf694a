package consumer

import (
	"fmt"

	"github.com/rmqkit/rmqkit/throttle"
)

// A message's handler starts only after the message has passed every rate
// limit that applies to it, narrowest first, on a worker reserved for it
// (the pool's gate, so that the limits bound handler starts): the subscription's
// (WithRate, SetRate), the consumer's group limit (WithGroupRate,
// WithGroupQuota, SetGroupRate, SetGroupQuota) and the process limiter
// (WithProcessLimiter). See dispatch.go.

// SetRate replaces the rate limit of the subscription to topic, at run
// time. Messages already waiting for it follow the new limit at once (see
// throttle.Limiter.Set); the zero Limit lifts it. An invalid limit or an
// unknown topic returns an error (wrapping ErrInvalidOption and
// throttle.ErrInvalidLimit, or ErrUnknownSubscription) and leaves the limit
// as it was. A change is logged with the old and new values.
func (c *Consumer) SetRate(topic string, l throttle.Limit) error {
	s, err := c.subscription(topic)
	if err != nil {
		return err
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: topic %q: rate: %w", ErrInvalidOption, topic, err)
	}
	old := s.limiter.Limit()
	if err := s.limiter.Set(l); err != nil {
		return fmt.Errorf("%w: topic %q: rate: %w", ErrInvalidOption, topic, err)
	}
	if old != l {
		c.cfg.logger.Info("rmqkit rate changed", "group", c.group, "topic", topic, "old", old.String(), "new", l.String())
	}
	return nil
}

// SetGroupRate replaces the consumer's group limit by l, a limit for this
// instance alone, at run time; it replaces a quota set before. Messages
// already waiting follow the new limit at once. An invalid limit returns an
// error wrapping ErrInvalidOption and throttle.ErrInvalidLimit and leaves
// the limit as it was. A change is logged with the old and new values.
func (c *Consumer) SetGroupRate(l throttle.Limit) error {
	return c.setGroup(l, false)
}

// SetGroupQuota replaces the consumer's group limit by a quota: total is
// the rate of the whole group, and this instance applies its share, total
// divided by the live instances (see WithGroupQuota). It replaces a group
// rate set before. Errors are as for SetGroupRate, and ErrNotInMode in a
// mode where each instance is a group of its own (broadcast).
func (c *Consumer) SetGroupQuota(total throttle.Limit) error {
	if c.instanceGroup {
		return fmt.Errorf("%w: SetGroupQuota: each instance of this mode is a group of its own (use SetGroupRate)", ErrNotInMode)
	}
	if err := c.setGroup(total, true); err != nil {
		return err
	}
	select { // count now rather than at the next period
	case c.glim.recount <- struct{}{}:
	default:
	}
	return nil
}

func (c *Consumer) setGroup(l throttle.Limit, quota bool) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: group limit: %w", ErrInvalidOption, err)
	}
	old, now := c.glim.set(l, quota)
	if old != now {
		c.cfg.logger.Info("rmqkit group rate changed", "group", c.group, "old", old, "new", now)
	}
	return nil
}

// ProcessLimiter returns the limiter given with WithProcessLimiter, or nil.
// Its owner changes its limit; it applies to every consumer sharing it.
func (c *Consumer) ProcessLimiter() *throttle.Limiter { return c.cfg.process }
