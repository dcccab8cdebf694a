package consumer

import (
	"context"
	"log/slog"
)

// Mode is a way of consuming that attaches to a Consumer (WithMode) rather
// than wrapping it: package broadcast's is one. The Consumer calls it around
// its life cycle, and every other feature (pools, rates, live config,
// instrumentation, Stats, Lag) works in the mode unchanged.
type Mode interface {
	// Setup runs once, in New, after the options: it may choose the group
	// the consumer joins and the client's instance name. An error fails
	// New.
	Setup(s *ModeSetup) error
	// BeforeStart runs in Start once the subscriptions are checked and
	// before the client starts. An error is returned by Start and leaves
	// the Consumer unstarted: Start may be called again.
	BeforeStart(ctx context.Context, st ModeStart) error
	// AfterStart runs once the client has started. An error stops the
	// Consumer and is returned by Start.
	AfterStart(ctx context.Context, st ModeStart) error
	// AfterStop runs at the end of Stop, once the client is shut down or
	// was never started; ctx ends at Stop's deadline plus stopSlack.
	AfterStop(ctx context.Context)
}

// ModeStart is what Start tells its Mode.
type ModeStart struct {
	// Topics are the subscribed topics, as given to Subscribe (without
	// the namespace), sorted.
	Topics []string
}

// ModeSetup is what Mode.Setup reads and may change.
type ModeSetup struct {
	// Group is the group given to New; Setup may replace it with the
	// group to join. New checks the result as it checks its argument.
	Group string
	// Instance is the client instance name (WithInstanceName, or a name
	// New chose); Setup may replace it.
	Instance string
	// Connection is how the consumer reaches its cluster.
	Connection Connection
	// Logger is the consumer's logger.
	Logger *slog.Logger
	// Start is where a group without offsets starts (WithStartPosition);
	// Setup may replace it.
	Start StartPosition
	// InstanceGroup is set by a Setup whose instances each join a group of
	// their own (broadcast): a quota shared by the group's instances has no
	// meaning there, and the consumer refuses one (ErrNotInMode).
	InstanceGroup bool
}

// WithMode attaches a consumption mode. A Consumer has at most one; a
// second WithMode is rejected by New with ErrConflictingOptions.
func WithMode(m Mode) Option {
	return optionFunc(func(c *config) { c.mode, c.modes = m, c.modes+1 })
}

// Mode returns the mode attached with WithMode, or nil. A mode's package
// uses it to find its own state (for example broadcast.InstanceOf).
func (c *Consumer) Mode() Mode { return c.cfg.mode }

// Logger returns the consumer's logger (WithLogger).
func (c *Consumer) Logger() *slog.Logger { return c.cfg.logger }
