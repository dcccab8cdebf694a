package migrate

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

// Option configures a Subscription in NewSubscription.
type Option func(*config)

type config struct {
	phase         Phase
	pool          *pool.Pool
	poolSize      int
	limiter       *throttle.Limiter
	consumerOpts  []consumer.Option
	subscribeOpts []consumer.SubscribeOption
	start         [2]consumer.StartPosition
	settle        time.Duration
	lagInterval   time.Duration
	retryGrace    time.Duration
	retryDelays   []time.Duration
	stopTimeout   time.Duration
	logger        *slog.Logger
	onDrain       func(Side, bool)
	onPhase       func(from, to Phase, took time.Duration)
}

// defaultRetryDelays are the broker's default delay levels
// (messageDelayLevel "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m
// 1h 2h"). A message that failed for the n-th time (n from 1) is held for
// level 2+n, so 10 s after the first failure.
func defaultRetryDelays() []time.Duration {
	return []time.Duration{
		time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
		6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
		20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	}
}

func defaultConfig() config {
	return config{
		phase:       OldOnly,
		poolSize:    20,
		start:       [2]consumer.StartPosition{consumer.StartFromLatest, consumer.StartFromEarliest},
		settle:      10 * time.Second,
		lagInterval: 2 * time.Second,
		retryGrace:  10 * time.Second,
		retryDelays: defaultRetryDelays(),
		stopTimeout: 30 * time.Second,
		logger:      slog.Default(),
	}
}

// WithPhase sets the phase Start begins in. The default is OldOnly. It is
// taken as given: Start checks no drain.
func WithPhase(p Phase) Option { return func(c *config) { c.phase = p } }

// WithPool runs the handler of both sides on p, a pool the caller created
// and may share with other subscriptions; the Subscription never closes
// it. By default the Subscription creates one pool of WithPoolSize workers,
// shared by its two sides, and closes it in Stop.
func WithPool(p *pool.Pool) Option { return func(c *config) { c.pool = p } }

// WithPoolSize sets the size of the Subscription's own pool (without
// WithPool). The default is 20.
func WithPoolSize(n int) Option { return func(c *config) { c.poolSize = n } }

// WithProcessLimiter makes the messages of both sides pass l
// (consumer.WithProcessLimiter), so the Subscription's total rate, and
// that of other consumers sharing l, stays under its limit whatever the
// phase. The default, nil, is no limit.
func WithProcessLimiter(l *throttle.Limiter) Option { return func(c *config) { c.limiter = l } }

// WithConsumerOptions passes options to the consumer.Consumer of each
// side (logger, middleware, retries, prefetch, ...). The Subscription
// sets the name servers, credentials, namespace (Cluster.Namespace),
// instance name and start position of each side after them, so those
// given here have no effect.
func WithConsumerOptions(opts ...consumer.Option) Option {
	return func(c *config) { c.consumerOpts = append(c.consumerOpts, opts...) }
}

// WithSubscribeOptions passes options to each side's Subscribe. The pool
// is always the Subscription's (see WithPool).
func WithSubscribeOptions(opts ...consumer.SubscribeOption) Option {
	return func(c *config) { c.subscribeOpts = append(c.subscribeOpts, opts...) }
}

// WithStartPositions sets where each side starts when the group has no
// committed offset on that cluster. The defaults are StartFromLatest for
// the old cluster (the consumer's usual default) and StartFromEarliest for
// the new one, so that messages a producer sent to the new cluster before
// its consumer first started are not skipped.
func WithStartPositions(old, new consumer.StartPosition) Option {
	return func(c *config) { c.start = [2]consumer.StartPosition{old, new} }
}

// WithSettle sets how long a side's lag must stay zero, its queues
// unchanged and no retry pending before it counts as drained. The default
// is 10 s; it covers sends still in flight when producers stopped writing
// to the side. 0 accepts a single reading.
func WithSettle(d time.Duration) Option { return func(c *config) { c.settle = d } }

// WithLagInterval sets how often the consume stats of both clusters are
// read, for Stats and for the drain wait. The default is 2 s; each reading
// is two requests to each cluster's broker.
func WithLagInterval(d time.Duration) Option { return func(c *config) { c.lagInterval = d } }

// WithRetryGrace sets how long after a failed message's retry is due the
// drain logic waits before it lets a zero lag reading, rather than the
// message's redelivery on this instance, settle the retry (another
// instance of the group may have consumed it). The default is 10 s.
func WithRetryGrace(d time.Duration) Option { return func(c *config) { c.retryGrace = d } }

// WithRetryDelays sets the brokers' delay levels (their messageDelayLevel
// setting), from which the due time of a failed message's retry is
// computed: level 3 for a first failure, one more per further failure,
// capped at the last level. The default is the broker's default, "1s 5s
// 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h".
func WithRetryDelays(levels ...time.Duration) Option {
	return func(c *config) { c.retryDelays = append([]time.Duration(nil), levels...) }
}

// WithStopTimeout bounds how long stopping a side's consumer waits for its
// running handlers, when a phase switch or Stop ends that side. The
// default is 30 s.
func WithStopTimeout(d time.Duration) Option { return func(c *config) { c.stopTimeout = d } }

// WithLogger sets the logger for phase switches and drain events, and the
// default logger of the consumers. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithOnDrainChange calls f whenever a side's drained state changes, e.g.
// to set a gauge. f runs on the goroutine that noticed the change (a lag
// reading or a failed handler); it must not block nor call the
// Subscription's methods other than Stats.
func WithOnDrainChange(f func(side Side, drained bool)) Option {
	return func(c *config) { c.onDrain = f }
}

// WithOnPhaseChange calls f after every completed phase switch, with how
// long the switch took (start of a side, or drain wait and stop). By then
// the side left has stopped. f runs inside the switch: it must not block
// nor call the Subscription's methods other than Stats and Phase.
func WithOnPhaseChange(f func(from, to Phase, took time.Duration)) Option {
	return func(c *config) { c.onPhase = f }
}

func (c *config) validate() error {
	switch {
	case !c.phase.valid():
		return fmt.Errorf("%w: phase %d", ErrInvalidOption, int(c.phase))
	case c.pool == nil && (c.poolSize < 1 || c.poolSize > pool.MaxSize):
		return fmt.Errorf("%w: pool size %d is outside [1, %d]", ErrInvalidOption, c.poolSize, pool.MaxSize)
	case c.settle < 0:
		return fmt.Errorf("%w: settle %v is negative", ErrInvalidOption, c.settle)
	case c.lagInterval < 10*time.Millisecond:
		return fmt.Errorf("%w: lag interval %v is under 10ms", ErrInvalidOption, c.lagInterval)
	case c.retryGrace < 0:
		return fmt.Errorf("%w: retry grace %v is negative", ErrInvalidOption, c.retryGrace)
	case len(c.retryDelays) == 0:
		return fmt.Errorf("%w: retry delays: none", ErrInvalidOption)
	case c.stopTimeout <= 0:
		return fmt.Errorf("%w: stop timeout %v is not positive", ErrInvalidOption, c.stopTimeout)
	}
	for i, d := range c.retryDelays {
		if d <= 0 {
			return fmt.Errorf("%w: retry delay level %d is %v", ErrInvalidOption, i+1, d)
		}
	}
	for i, o := range c.consumerOpts {
		if o == nil {
			return fmt.Errorf("%w: consumer option %d is nil", ErrInvalidOption, i)
		}
	}
	return nil
}
