package consumer

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

// Selector chooses which messages of a topic a subscription receives.
type Selector struct {
	sql  bool
	expr string
}

// All selects every message of the topic.
var All = Selector{expr: "*"}

// Tags selects messages whose tag is one of tags ("a || b" in RocketMQ).
func Tags(tags ...string) Selector { return Selector{expr: strings.Join(tags, " || ")} }

// SQL selects messages whose properties match a SQL92 expression. The
// broker must run with enablePropertyFilter=true.
func SQL(expr string) Selector { return Selector{sql: true, expr: expr} }

// String describes the selector, for logs: "tag:a || b" or "sql:...".
func (s Selector) String() string {
	if s.sql {
		return "sql:" + s.expr
	}
	return "tag:" + s.expr
}

func (s Selector) client() rmq.MessageSelector {
	if s.sql {
		return rmq.MessageSelector{Type: rmq.SQL92, Expression: s.expr}
	}
	return rmq.MessageSelector{Type: rmq.TAG, Expression: s.expr}
}

func (s Selector) validate() error {
	e := strings.TrimSpace(s.expr)
	if e == "" {
		return fmt.Errorf("%w: selector: empty expression (use consumer.All)", ErrInvalidOption)
	}
	if s.sql {
		return checkSQL(e)
	}
	for _, tag := range strings.Split(e, "||") {
		if strings.TrimSpace(tag) == "" {
			return fmt.Errorf("%w: selector %q: empty tag", ErrInvalidOption, s.expr)
		}
	}
	return nil
}

// checkSQL catches the mistakes the broker would otherwise report only in
// its own log, long after Start: unbalanced parentheses and quotes.
func checkSQL(e string) error {
	depth, quoted := 0, false
	for _, r := range e {
		switch {
		case r == '\'':
			quoted = !quoted
		case quoted:
		case r == '(':
			depth++
		case r == ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("%w: selector %q: unbalanced ')'", ErrInvalidOption, e)
			}
		}
	}
	if quoted {
		return fmt.Errorf("%w: selector %q: unterminated string", ErrInvalidOption, e)
	}
	if depth != 0 {
		return fmt.Errorf("%w: selector %q: unbalanced '('", ErrInvalidOption, e)
	}
	return nil
}

// SubscribeOption configures one subscription in Subscribe or
// SubscribeBatch. TuningOptions are SubscribeOptions too.
type SubscribeOption interface{ applySubscription(*subConfig) }

// subOptionFunc is a SubscribeOption that is a function.
type subOptionFunc func(*subConfig)

func (f subOptionFunc) applySubscription(s *subConfig) { f(s) }

type subConfig struct {
	poolSize    int
	poolSizeSet bool // WithPoolSize at subscription level
	pool        *pool.Pool
	orderly     bool
	suspend     time.Duration
	suspendSet  bool // WithOrderlySuspend
	maxRetries  *int
	middleware  []Middleware
	batch       BatchHandler // SubscribeBatch
	batchSize   int
	batchSet    bool // WithBatchSize
	rate        throttle.Limit
	rateSet     bool      // WithRate at subscription level
	adaptive    *Adaptive // WithAdaptivePool (adaptive.go)
	keyed       keyOrder  // WithKeyOrdered, WithKey (keyed.go)
}

// check rejects options that exclude each other or need another.
func (s *subConfig) check(topic string) error {
	switch {
	case s.pool != nil && s.poolSizeSet:
		return conflict("topic %q: WithSharedPool and WithPoolSize: a shared pool's size is its owner's", topic)
	case s.pool != nil && s.adaptive != nil:
		return conflict("topic %q: WithSharedPool and WithAdaptivePool: an adaptive pool resizes the subscription's own pool", topic)
	case s.orderly && s.batch != nil:
		return conflict("topic %q: WithOrderly and SubscribeBatch: an orderly queue hands over one message at a time", topic)
	case s.suspendSet && !s.orderly && !s.keyed.on:
		return fmt.Errorf("%w: topic %q: WithOrderlySuspend without WithOrderly or WithKeyOrdered", ErrInvalidOption, topic)
	case s.suspendSet && s.suspend <= 0:
		return fmt.Errorf("%w: topic %q: orderly suspend %v is not positive", ErrInvalidOption, topic, s.suspend)
	case s.batchSet && s.batch == nil && s.batchSize != 1:
		// 1 is what a one-message handler has (SubscriptionSettings).
		return fmt.Errorf("%w: topic %q: batch size %d (WithBatchSize, or batchSize in a configuration file) without SubscribeBatch", ErrInvalidOption, topic, s.batchSize)
	case s.batch != nil && (s.batchSize < 1 || s.batchSize > MaxBatchSize):
		return fmt.Errorf("%w: topic %q: batch size %d is outside [1, %d]", ErrInvalidOption, topic, s.batchSize, MaxBatchSize)
	}
	for i, m := range s.middleware {
		if m == nil {
			return fmt.Errorf("%w: topic %q: middleware %d is nil", ErrInvalidOption, topic, i)
		}
	}
	return nil
}

// WithSharedPool runs the subscription on p, a pool the caller created and
// may share between subscriptions; the consumer never closes it. Use it to
// let low-priority topics share workers while important ones keep their own.
// It excludes WithPoolSize and WithAdaptivePool on the same subscription.
func WithSharedPool(p *pool.Pool) SubscribeOption {
	return subOptionFunc(func(s *subConfig) { s.pool = p })
}

// DefaultOrderlySuspend is how long an orderly subscription waits before
// it retries a failed message in place, unless WithOrderlySuspend says
// otherwise.
const DefaultOrderlySuspend = time.Second

// WithOrderly hands the subscription's messages to the handler one at a
// time per queue, in queue order. A failed message is retried in place
// after DefaultOrderlySuspend (WithOrderlySuspend) and never skipped. All
// subscriptions of a consumer must agree on ordering.
func WithOrderly() SubscribeOption { return subOptionFunc(func(s *subConfig) { s.orderly = true }) }

// WithOrderlySuspend sets how long an orderly or key-ordered subscription
// (WithOrderly, WithKeyOrdered) waits before it retries a failed message in
// place; d must be positive.
func WithOrderlySuspend(d time.Duration) SubscribeOption {
	return subOptionFunc(func(s *subConfig) { s.suspend, s.suspendSet = d, true })
}

// DefaultBatchSize is the most messages a batch handler (SubscribeBatch)
// gets at once unless WithBatchSize says otherwise: the client's pull
// batch.
const DefaultBatchSize = 32

// MaxBatchSize is the largest WithBatchSize.
const MaxBatchSize = 1024

// WithBatchSize sets the most messages a batch handler (SubscribeBatch) is
// called with, in [1, MaxBatchSize].
func WithBatchSize(n int) SubscribeOption {
	return subOptionFunc(func(s *subConfig) { s.batchSize, s.batchSet = n, true })
}

var namePattern = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)

// checkName applies the broker's rule for topic and group names.
func checkName(what, name string, maxLen int) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s: empty", ErrInvalidOption, what)
	case len(name) > maxLen:
		return fmt.Errorf("%w: %s %q: longer than %d characters", ErrInvalidOption, what, name, maxLen)
	case !namePattern.MatchString(name):
		return fmt.Errorf("%w: %s %q: only letters, digits, '%%', '|', '_' and '-' are allowed", ErrInvalidOption, what, name)
	}
	return nil
}

func checkPoolSize(n int) error {
	if n < 1 || n > pool.MaxSize {
		return fmt.Errorf("%w: pool size %d is outside [1, %d]", ErrInvalidOption, n, pool.MaxSize)
	}
	return nil
}

// subscription is one topic's handler chain and counters.
type subscription struct {
	topic      string
	selector   Selector
	handler    Handler      // with middleware applied
	middleware []Middleware // the consumer's, then the subscription's
	batch      BatchHandler
	batchSize  int
	pool       *pool.Pool
	ownsPool   bool
	orderly    bool
	suspend    time.Duration
	maxRetries int
	limiter    *throttle.Limiter
	adaptive   *adaptiveSizer // nil unless WithAdaptivePool (adaptive.go)
	intake     chan struct{}  // one callback starts its messages at a time (intake.go)
	queued     atomic.Int64   // messages held that have not started (intake.go)
	keyed      *keyed         // nil unless WithKeyOrdered (keyed.go); orderly is set too
	// slowLanes: the last callback on lanes outlasted slowCallback, so
	// the next one spreads at once (fanOutLanes).
	slowLanes atomic.Bool

	received  atomic.Uint64
	succeeded atomic.Uint64
	failed    atomic.Uint64
	abandoned atomic.Uint64
	dlq       atomic.Uint64
	overran   atomic.Uint64
	deferred  atomic.Uint64
}

// SubscriptionStats is a snapshot of one subscription's counters.
type SubscriptionStats struct {
	Topic        string
	Pool         pool.Stats
	Throttle     throttle.Stats // the subscription's own rate limit
	Received     uint64         // messages handed to rmqkit by the client
	Succeeded    uint64         // handled without error
	Failed       uint64         // handler errors and panics (each is redelivered or dead-lettered)
	Abandoned    uint64         // fetched but not handled because the consumer stopped; redelivered later
	DeadLettered uint64         // messages sent to the dead-letter queue after their last try
	// Overran counts handlers that ignored their context past the handler
	// timeout: rmqkit stopped waiting and handed their messages back for
	// redelivery (counted in Failed too) while they kept running.
	Overran uint64
	// Deferred counts redeliveries handed back to the broker with a delay,
	// untried, because the subscription had no free worker and a pool's
	// worth waiting: its stuck retries never hold back another
	// subscription's in the group's shared retry queue.
	Deferred uint64
	// Queued is the number of messages rmqkit holds for the subscription
	// that have not started: waiting for a worker, a rate limit, or their
	// turn to be handed to the pool. Pool.Waiting counts only the callers
	// waiting in the pool itself, at most one per subscription.
	Queued int64
	// Adaptive is the state of adaptive sizing (WithAdaptivePool).
	Adaptive AdaptiveStats
	// KeyLanes is, for a key-ordered subscription (WithKeyOrdered), the
	// number of keys with messages waiting or running now; a key's state is
	// freed as soon as it has none.
	KeyLanes int
}

func (s *subscription) stats() SubscriptionStats {
	return SubscriptionStats{
		Topic:        s.topic,
		Pool:         s.pool.Stats(),
		Throttle:     s.limiter.Stats(),
		Received:     s.received.Load(),
		Succeeded:    s.succeeded.Load(),
		Failed:       s.failed.Load(),
		Abandoned:    s.abandoned.Load(),
		DeadLettered: s.dlq.Load(),
		Overran:      s.overran.Load(),
		Deferred:     s.deferred.Load(),
		Queued:       s.queued.Load(),
		Adaptive:     s.adaptive.snapshot(),
		KeyLanes:     s.keyed.laneCount(),
	}
}
