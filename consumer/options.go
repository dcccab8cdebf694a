package consumer

import (
	"fmt"
	"log/slog"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/throttle"
)

// Option configures a Consumer in New. The options that also make sense
// for one subscription (WithPoolSize, WithMaxRetries, WithMiddleware,
// WithRate) are TuningOptions, given to New or to Subscribe.
type Option interface{ applyConsumer(*config) }

// optionFunc is an Option that is a function.
type optionFunc func(*config)

func (f optionFunc) applyConsumer(c *config) { f(c) }

// StartPosition says where a group with no committed offset starts reading.
// It has no effect once the group has committed offsets.
type StartPosition struct {
	where rmq.ConsumeFromWhere
	at    time.Time
}

var (
	// StartFromLatest starts at the end of each queue: only messages
	// produced from now on are consumed. It is the default.
	StartFromLatest = StartPosition{where: rmq.ConsumeFromLastOffset}
	// StartFromEarliest starts at the oldest message the broker keeps.
	StartFromEarliest = StartPosition{where: rmq.ConsumeFromFirstOffset}
)

// StartFromTime starts at the first message stored at or after t.
func StartFromTime(t time.Time) StartPosition {
	return StartPosition{where: rmq.ConsumeFromTimestamp, at: t}
}

type config struct {
	nameServers      []string
	credentials      *primitive.Credentials
	namespace        string
	instance         string
	logger           *slog.Logger
	start            StartPosition
	maxRetries       int
	queuePrefetch    int
	queuePrefetchMiB int
	poolSize         int
	handlerTimeout   time.Duration
	consumeTimeout   time.Duration
	middleware       []Middleware
	clientOptions    []rmq.Option
	process          *throttle.Limiter
	groupLimit       throttle.Limit
	groupQuota       bool
	quotaRefresh     time.Duration
	rate             throttle.Limit // WithRate: each subscription's default (tuning.go)
	mode             Mode           // WithMode (mode.go)
	plugins          []Attach       // WithPlugin (plugin.go)

	// What was given, for the options that exclude each other.
	modes         int  // WithMode
	groupRateSet  bool // WithGroupRate
	groupQuotaSet bool // WithGroupQuota
	connSet       bool // WithConnection
	connPartSet   bool // WithNameServer, WithCredentials or WithNamespace
}

func defaultConfig() config {
	return config{
		logger:           slog.Default(),
		start:            StartFromLatest,
		maxRetries:       16,
		queuePrefetch:    256,
		queuePrefetchMiB: 16,
		poolSize:         20,
		consumeTimeout:   15 * time.Minute,
		handlerTimeout:   DefaultHandlerTimeout,
		quotaRefresh:     5 * time.Second,
	}
}

// WithNameServer sets the name server addresses ("host:port"). It is
// required: without it the client would ask an HTTP endpoint on the
// internet for them.
func WithNameServer(addrs ...string) Option {
	return optionFunc(func(c *config) { c.nameServers, c.connPartSet = append([]string(nil), addrs...), true })
}

// WithCredentials sets the access key and secret key for a broker with ACL
// enabled. The secret is never logged.
func WithCredentials(accessKey, secretKey string) Option {
	return optionFunc(func(c *config) {
		c.credentials = &primitive.Credentials{AccessKey: accessKey, SecretKey: secretKey}
		c.connPartSet = true
	})
}

// WithNamespace prefixes topics and the group with a RocketMQ namespace.
func WithNamespace(ns string) Option {
	return optionFunc(func(c *config) { c.namespace, c.connPartSet = ns, true })
}

// WithInstanceName sets the client instance name. By default every Consumer
// gets a unique one, so that two consumers in one process never share a
// client (and with it credentials, name servers or timeouts).
func WithInstanceName(name string) Option { return optionFunc(func(c *config) { c.instance = name }) }

// WithLogger sets the logger for the consumer's own events (configuration
// changes, stops, handler failures). The default is slog.Default(). Message
// bodies are never logged.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithStartPosition sets where a group with no committed offset starts. The
// default is StartFromLatest.
func WithStartPosition(p StartPosition) Option { return optionFunc(func(c *config) { c.start = p }) }

// WithQueuePrefetch bounds the messages the client buffers ahead of the
// handlers for each queue it consumes (default 256, eight pull batches). A
// subscription's share of the prefetch is thus its own queues' worth,
// whatever other subscriptions have: the client alone would divide one
// consumer-wide threshold evenly over every queue of every topic, and a
// consumer of 30 topics left each queue 34 messages, so its busy
// subscriptions stalled in flow control while stuck ones kept their share
// (BenchmarkIsolation). Memory is at most this many messages per queue of
// every subscribed topic (counted at Start), plus what handlers hold; an
// instance that holds only some of the queues may buffer more per queue,
// within the same total.
func WithQueuePrefetch(n int) Option { return optionFunc(func(c *config) { c.queuePrefetch = n }) }

// WithQueuePrefetchMiB bounds the size of the messages the client buffers
// for each queue (default 16 MiB), like WithQueuePrefetch.
func WithQueuePrefetchMiB(mib int) Option {
	return optionFunc(func(c *config) { c.queuePrefetchMiB = mib })
}

// DefaultHandlerTimeout is the handler timeout of a consumer without
// WithHandlerTimeout; it is below the client's ConsumeTimeout (15 minutes).
const DefaultHandlerTimeout = 5 * time.Minute

// WithHandlerTimeout bounds each handler call: its context ends after d,
// and a handler that returns because of it has its message redelivered
// (through the retry topic; in place for orderly subscriptions). A handler
// that ignores its context is waited for one second more; then rmqkit
// stops holding its message, hands it back for redelivery the same way,
// logs the topic and message id and counts it in SubscriptionStats.Overran,
// while the handler keeps its worker until it returns. The default is
// DefaultHandlerTimeout; d must be positive, so that a stuck handler never
// holds its queue's offset forever.
func WithHandlerTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.handlerTimeout = d })
}

// WithClientConsumeTimeout sets the client's ConsumeTimeout (default 15
// minutes), the age after which the client sends a message that is still
// being consumed back to the broker. rmqkit renews the age of every message
// it holds every third of this period, so a slow handler or a long wait for
// a worker never causes that re-send. It also sets how often the client
// looks for such messages.
func WithClientConsumeTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.consumeTimeout = d })
}

// WithClientOptions passes options to the underlying rocketmq-client-go push
// consumer, after rmqkit's own. Options that change concurrency
// (ConsumeGoroutineNums, Limiter, ConsumeOrderly, ConsumerModel) would
// undo rmqkit's guarantees; use them only if you know the client well.
func WithClientOptions(opts ...rmq.Option) Option {
	return optionFunc(func(c *config) { c.clientOptions = append(c.clientOptions, opts...) })
}

// WithProcessLimiter makes every message of the consumer pass l, a limiter
// the caller created (throttle.New) and may share between the consumers of
// a process to cap their total rate. The consumer never changes l's limit;
// its owner does, with l.Set. The default, nil, is no process limit.
func WithProcessLimiter(l *throttle.Limiter) Option {
	return optionFunc(func(c *config) { c.process = l })
}

// WithGroupRate caps the rate at which this consumer (this instance of the
// group) admits messages to handlers, across all its subscriptions. The
// default, the zero Limit, is unlimited. It excludes WithGroupQuota (New
// returns ErrConflictingOptions). Change it live with SetGroupRate.
func WithGroupRate(l throttle.Limit) Option {
	return optionFunc(func(c *config) { c.groupLimit, c.groupQuota, c.groupRateSet = l, false, true })
}

// WithGroupQuota caps the rate of the whole consumer group, all instances
// together: each instance applies total divided by the number of live
// instances (Rate and Burst divided, Burst rounded up), counted from the
// broker's consumer connection list every WithQuotaRefresh period. An
// instance that cannot reach the broker keeps its last share. It excludes
// WithGroupRate (New returns ErrConflictingOptions). Change it live with
// SetGroupQuota.
func WithGroupQuota(total throttle.Limit) Option {
	return optionFunc(func(c *config) { c.groupLimit, c.groupQuota, c.groupQuotaSet = total, true, true })
}

// WithQuotaRefresh sets how often a consumer with a group quota counts the
// live instances of its group. The default is 5 seconds; the broker itself
// notices an instance that stopped without unregistering only after its
// channel expires (about 2 minutes) or closes.
func WithQuotaRefresh(d time.Duration) Option {
	return optionFunc(func(c *config) { c.quotaRefresh = d })
}

func (c *config) validate() error {
	if err := c.conflicts(); err != nil {
		return err
	}
	if c.credentials != nil && (c.credentials.AccessKey == "" || c.credentials.SecretKey == "") {
		// WithCredentials(os.Getenv(...)) with a variable unset is noticed.
		return fmt.Errorf("%w: credentials: access key and secret key must both be set", ErrInvalidOption)
	}
	if err := c.connection().Validate(); err != nil {
		return err
	}
	if c.maxRetries < 0 || c.maxRetries > maxRetriesLimit {
		return fmt.Errorf("%w: max retries %d is outside [0, %d]", ErrInvalidOption, c.maxRetries, maxRetriesLimit)
	}
	if c.queuePrefetch < 1 || c.queuePrefetch > 65535 {
		return fmt.Errorf("%w: queue prefetch %d messages is outside [1, 65535]", ErrInvalidOption, c.queuePrefetch)
	}
	if c.queuePrefetchMiB < 1 || c.queuePrefetchMiB > 1024 {
		return fmt.Errorf("%w: queue prefetch %d MiB is outside [1, 1024]", ErrInvalidOption, c.queuePrefetchMiB)
	}
	if err := checkPoolSize(c.poolSize); err != nil {
		return err
	}
	if c.handlerTimeout <= 0 {
		return fmt.Errorf("%w: handler timeout %v is not positive", ErrInvalidOption, c.handlerTimeout)
	}
	if c.consumeTimeout < time.Second {
		return fmt.Errorf("%w: client consume timeout %v is under 1s", ErrInvalidOption, c.consumeTimeout)
	}
	if err := c.groupLimit.Validate(); err != nil {
		return fmt.Errorf("%w: group limit: %w", ErrInvalidOption, err)
	}
	if c.quotaRefresh < 100*time.Millisecond {
		return fmt.Errorf("%w: quota refresh %v is under 100ms", ErrInvalidOption, c.quotaRefresh)
	}
	for i, mw := range c.middleware {
		if mw == nil {
			return fmt.Errorf("%w: middleware %d is nil", ErrInvalidOption, i)
		}
	}
	return nil
}

// maxRetriesLimit is the broker's own ceiling on reconsume times.
const maxRetriesLimit = 32

// conflicts names the options given together that exclude each other:
// rmqkit never lets a later option silently undo an earlier one.
func (c *config) conflicts() error {
	switch {
	case c.modes > 1:
		return conflict("WithMode given %d times: a Consumer has one mode", c.modes)
	case c.groupRateSet && c.groupQuotaSet:
		return conflict("WithGroupRate and WithGroupQuota: a group limit is per instance or shared, not both")
	case c.connSet && c.connPartSet:
		return conflict("WithConnection and WithNameServer, WithCredentials or WithNamespace: give the connection once")
	}
	return nil
}

// conflict returns an error wrapping ErrInvalidOption and
// ErrConflictingOptions.
func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrInvalidOption, ErrConflictingOptions}, args...)...)
}
