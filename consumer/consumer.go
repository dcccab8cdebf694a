package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

type state int

const (
	stateNew state = iota
	stateRunning
	stateFailed
	stateStopped
)

// Consumer consumes the subscriptions of one consumer group. Create it with
// New, add subscriptions with Subscribe, then Start; end with Stop. Its
// methods are safe for simultaneous use by multiple goroutines.
type Consumer struct {
	group string
	cfg   config

	mu     sync.Mutex
	state  state
	subs   map[string]*subscription
	client pushClient

	// admit ends when Stop begins: no handler starts after that.
	admit       context.Context
	stopAdmit   context.CancelFunc
	handlerCtx  context.Context
	stopHandler context.CancelFunc
	// released is closed after the client is shut down; callbacks whose
	// messages were not handled wait for it so that their results are
	// discarded by the client instead of sent back to the broker.
	released chan struct{}

	active    atomic.Int64 // handlers running
	callbacks atomic.Int64 // client callbacks inside rmqkit
	parked    atomic.Int64 // callbacks of unhandled messages waiting for released
	startedAt time.Time
	inflight  inflight
	renewDone chan struct{}

	// glim is the consumer's own rate limit, per instance or a share of
	// the group's quota (quota.go).
	glim groupLimit
}

// pushClient is the part of the client's (unexported) push consumer type
// that rmqkit uses.
type pushClient interface {
	Start() error
	Shutdown() error
	PersistConsumerOffset() error
	Subscribe(topic string, sel rmq.MessageSelector, f func(context.Context, ...*primitive.MessageExt) (rmq.ConsumeResult, error)) error
}

// New returns a Consumer for group. group must be a valid RocketMQ group
// name and WithNameServer must be given; errors wrap ErrInvalidOption and
// name the argument.
func New(group string, opts ...Option) (*Consumer, error) {
	if err := checkName("group", group, 255); err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.instance == "" {
		cfg.instance = "rmqkit-" + group + "-" + randomSuffix()
	}
	c := &Consumer{
		group:    group,
		cfg:      cfg,
		subs:     make(map[string]*subscription),
		released: make(chan struct{}),
	}
	c.admit, c.stopAdmit = context.WithCancel(context.Background())
	c.handlerCtx, c.stopHandler = context.WithCancel(context.Background())
	c.inflight.init()
	if err := c.glim.init(cfg.groupLimit, cfg.groupQuota); err != nil {
		return nil, fmt.Errorf("%w: group limit: %w", ErrInvalidOption, err)
	}
	return c, nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Group returns the consumer group name.
func (c *Consumer) Group() string { return c.group }

// Subscribe adds a subscription to topic, handing the messages sel selects
// to h. It must be called before Start. h may be nil only with WithBatch.
func (c *Consumer) Subscribe(topic string, sel Selector, h Handler, opts ...SubscribeOption) error {
	if err := checkName("topic", topic, 127); err != nil {
		return err
	}
	if err := sel.validate(); err != nil {
		return fmt.Errorf("topic %q: %w", topic, err)
	}
	sc := subConfig{poolSize: c.cfg.poolSize, suspend: time.Second}
	for _, o := range opts {
		if o != nil {
			o(&sc)
		}
	}
	if sc.batch == nil && h == nil {
		return fmt.Errorf("%w: topic %q: handler is nil", ErrInvalidOption, topic)
	}
	if sc.batch != nil && (sc.batchSize < 1 || sc.batchSize > 1024) {
		return fmt.Errorf("%w: topic %q: batch size %d is outside [1, 1024]", ErrInvalidOption, topic, sc.batchSize)
	}
	maxRetries := c.cfg.maxRetries
	if sc.maxRetries != nil {
		maxRetries = *sc.maxRetries
	}
	if maxRetries < 0 || maxRetries > maxRetriesLimit {
		return fmt.Errorf("%w: topic %q: max retries %d is outside [0, %d]", ErrInvalidOption, topic, maxRetries, maxRetriesLimit)
	}
	if sc.pool == nil {
		if err := checkPoolSize(sc.poolSize); err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	limiter, err := throttle.New(sc.rate)
	if err != nil {
		return fmt.Errorf("%w: topic %q: rate: %w", ErrInvalidOption, topic, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateNew {
		return ErrStarted
	}
	if _, dup := c.subs[topic]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateSubscription, topic)
	}
	for _, other := range c.subs {
		if other.orderly != sc.orderly {
			return fmt.Errorf("%w: %q is orderly=%v, %q is orderly=%v", ErrMixedOrdering, topic, sc.orderly, other.topic, other.orderly)
		}
		break
	}
	s := &subscription{
		topic:      topic,
		selector:   sel,
		batch:      sc.batch,
		batchSize:  max(sc.batchSize, 1),
		pool:       sc.pool,
		orderly:    sc.orderly,
		suspend:    sc.suspend,
		maxRetries: maxRetries,
		limiter:    limiter,
	}
	if h != nil {
		s.handler = chain(h, c.cfg.middleware)
	}
	if s.pool == nil {
		p, err := pool.New(topic, sc.poolSize)
		if err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
		s.pool, s.ownsPool = p, true
	}
	c.subs[topic] = s
	return nil
}

func chain(h Handler, mw []Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Start connects to the name server and starts consuming every
// subscription. It returns ErrStarted if called twice and ErrStopped after
// Stop. If the client fails to start, the error names the cause and the
// consumer can only be stopped.
func (c *Consumer) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateRunning, stateFailed:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	if len(c.subs) == 0 {
		return fmt.Errorf("%w: no subscriptions (call Subscribe before Start)", ErrInvalidOption)
	}
	if c.glim.counter == nil {
		c.glim.counter = newAdminCounter(c.cfg)
	}
	if c.glim.quotaMode() {
		// Count before the client registers, so that the first messages
		// already see this instance's share.
		c.recountInstances(ctx)
	}
	if err := c.checkAccess(ctx); err != nil {
		c.state = stateFailed
		return err
	}
	client, err := rmq.NewPushConsumer(c.clientOptions()...)
	if err != nil {
		c.state = stateFailed
		return fmt.Errorf("consumer %q: create client: %w", c.group, err)
	}
	for _, s := range c.subs {
		if err := client.Subscribe(s.topic, s.selector.client(), c.consume); err != nil {
			c.state = stateFailed
			return fmt.Errorf("consumer %q: subscribe %q: %w", c.group, s.topic, err)
		}
	}
	if err := client.Start(); err != nil {
		// The client cannot be shut down after a failed start (it panics);
		// Stop knows not to try.
		c.state = stateFailed
		return fmt.Errorf("consumer %q: start: %w", c.group, err)
	}
	c.client = client
	c.state = stateRunning
	c.startedAt = time.Now()
	c.renewDone = make(chan struct{})
	go c.renewLeases(c.cfg.consumeTimeout/3, c.renewDone)
	c.glim.start(c)
	c.cfg.logger.Info("rmqkit consumer started", "group", c.group, "subscriptions", c.topicsLocked(), "instance", c.cfg.instance)
	return nil
}

func (c *Consumer) topicsLocked() []string {
	ts := make([]string, 0, len(c.subs))
	for t := range c.subs {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func (c *Consumer) clientOptions() []rmq.Option {
	orderly, maxRetries, batch := false, 0, 1
	for _, s := range c.subs {
		orderly = s.orderly
		maxRetries = max(maxRetries, s.maxRetries)
		batch = max(batch, s.batchSize)
	}
	opts := []rmq.Option{
		rmq.WithGroupName(c.group),
		rmq.WithNsResolver(primitive.NewPassthroughResolver(c.cfg.nameServers)),
		rmq.WithConsumerModel(rmq.Clustering),
		rmq.WithConsumeFromWhere(c.cfg.start.where),
		rmq.WithInstance(c.cfg.instance),
		rmq.WithConsumerOrder(orderly),
		rmq.WithConsumeMessageBatchMaxSize(batch),
		// rmqkit's pools bound concurrency. The client's per-topic semaphore
		// is made large enough never to block its dispatcher, because a
		// blocked dispatcher blocks the pull loop, and a pull loop idle for
		// 120 s has its queue dropped and re-consumed (duplicates). The
		// prefetch thresholds below are the real back-pressure.
		rmq.WithConsumeGoroutineNums(100000),
		rmq.WithPullThresholdForTopic(c.cfg.prefetch),
		rmq.WithPullThresholdSizeForTopic(c.cfg.prefetchMiB),
		rmq.WithPullThresholdForQueue(int64(min(c.cfg.prefetch, 1024))),
		rmq.WithPullThresholdSizeForQueue(min(c.cfg.prefetchMiB, 100)),
		rmq.WithMaxReconsumeTimes(int32(maxRetries)),
		rmq.WithConsumeTimeout(c.cfg.consumeTimeout),
		rmq.WithAutoCommit(true),
	}
	if c.cfg.start.where == rmq.ConsumeFromTimestamp {
		opts = append(opts, rmq.WithConsumeTimestamp(c.cfg.start.at.Format("20060102150405")))
	}
	if c.cfg.credentials != nil {
		opts = append(opts, rmq.WithCredentials(*c.cfg.credentials))
	}
	if c.cfg.namespace != "" {
		opts = append(opts, rmq.WithNamespace(c.cfg.namespace))
	}
	return append(opts, c.cfg.clientOptions...)
}

// Stop ends consumption gracefully. It stops handing messages to handlers
// at once, waits until the handlers already running return or ctx ends,
// then persists offsets and shuts the client down. Messages fetched but not
// handled are delivered again later. If ctx ends first, handlers' contexts
// are cancelled, their results are discarded (those messages are delivered
// again too), and Stop returns ctx.Err() after the shutdown.
//
// Stop is safe after a failed Start, without Start, and more than once.
// A stopped Consumer cannot be started again.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	prev := c.state
	c.state = stateStopped
	c.mu.Unlock()
	if prev == stateStopped {
		return nil
	}
	c.stopAdmit()
	var waitErr error
	if prev == stateRunning {
		waitErr = c.waitHandlers(ctx)
		if waitErr != nil {
			c.stopHandler()
		} else {
			c.commitResults(ctx)
		}
		c.outliveFirstHeartbeat(ctx)
		if err := c.client.Shutdown(); err != nil {
			c.cfg.logger.Warn("rmqkit consumer shutdown", "group", c.group, "error", err)
		}
		close(c.released)
		close(c.renewDone)
		c.glim.stop()
		// Callbacks blocked on released return now; wait briefly so that no
		// goroutine of ours outlives Stop.
		c.waitCallbacks(5 * time.Second)
	} else {
		close(c.released)
	}
	c.glim.closeCounter()
	c.stopHandler()
	var errs []error
	for _, s := range c.subs {
		if s.ownsPool {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.pool.Close(cctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
			cancel()
		}
	}
	c.cfg.logger.Info("rmqkit consumer stopped", "group", c.group, "graceful", waitErr == nil)
	if waitErr != nil {
		return waitErr
	}
	return errors.Join(errs...)
}

func (c *Consumer) waitHandlers(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for c.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// commitResults commits the offsets of the messages handled before Stop.
// The client records a result just after the callback returns, and the
// commit in its Shutdown is one-way on connections it closes at once, so
// without this the last results of a graceful stop were often lost and
// their messages delivered again after the restart.
func (c *Consumer) commitResults(ctx context.Context) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for c.callbacks.Load() > c.parked.Load() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	time.Sleep(20 * time.Millisecond) // the client's bookkeeping after the return
	if err := c.client.PersistConsumerOffset(); err != nil {
		c.cfg.logger.Warn("rmqkit consumer: persist offsets at stop", "group", c.group, "error", err)
	}
}

// outliveFirstHeartbeat delays a Stop that comes right after Start. The
// client sends its first heartbeat about a second after Start from a
// goroutine that ignores Shutdown; a heartbeat that lands after the
// shutdown keeps the stopped client listed by the broker, holding its share
// of the group's queues, for up to two minutes.
func (c *Consumer) outliveFirstHeartbeat(ctx context.Context) {
	wait := time.Until(c.startedAt.Add(1500 * time.Millisecond))
	if wait <= 0 {
		return
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
}

func (c *Consumer) waitCallbacks(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for c.callbacks.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// SetPoolSize resizes the pool of the subscription to topic to n workers,
// at run time. Running handlers finish; the new size applies to the
// messages admitted next. An invalid n or unknown topic returns an error and
// leaves the size as it was. For a shared pool, every subscription using it
// is affected.
func (c *Consumer) SetPoolSize(topic string, n int) error {
	s, err := c.subscription(topic)
	if err != nil {
		return err
	}
	if err := checkPoolSize(n); err != nil {
		return fmt.Errorf("topic %q: %w", topic, err)
	}
	old := s.pool.Cap()
	if err := s.pool.Resize(n); err != nil {
		return fmt.Errorf("topic %q: %w", topic, err)
	}
	if old != n {
		c.cfg.logger.Info("rmqkit pool resized", "group", c.group, "topic", topic, "old", old, "new", n)
	}
	return nil
}

func (c *Consumer) subscription(topic string) (*subscription, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.subs[topic]
	if !ok {
		return nil, fmt.Errorf("%w: %q in group %q", ErrUnknownSubscription, topic, c.group)
	}
	return s, nil
}

// Stats returns a snapshot of every subscription's counters, by topic.
func (c *Consumer) Stats() []SubscriptionStats {
	c.mu.Lock()
	subs := make([]*subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	out := make([]SubscriptionStats, len(subs))
	for i, s := range subs {
		out[i] = s.stats()
	}
	slices.SortFunc(out, func(a, b SubscriptionStats) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}
