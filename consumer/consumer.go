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

	"github.com/rmqkit/rmqkit/internal/admin"
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
	group     string
	baseGroup string // given to New (mode.go)
	// instanceGroup: the mode gives each instance a group of its own
	// (ModeSetup.InstanceGroup).
	instanceGroup bool
	cfg           config

	mu             sync.Mutex
	state          state
	plugins        []Plugin                 // WithPlugin's, attached by New (plugin.go)
	pluginsStarted int                      // the first pluginsStarted plugins have started
	subs           map[string]*subscription // by topic as the user names it
	// routes maps the topic as the client delivers it (with the
	// namespace prefix, "ns%topic") to its subscription; read-only after
	// Start.
	routes map[string]*subscription
	client pushClient
	// adm is the consumer's one admin connection: the access check, Lag,
	// the quota's instance count and hand-backs of failed messages share
	// it; Stop closes it. backer is adm where tests fake it.
	adm    *admin.Client
	backer sendBacker
	// settled reports whether the client has booked the results of the
	// callbacks that returned during Stop (see returns); nil: at once.
	settled func() bool
	// offsets reports the client's commit offset of every queue it holds.
	offsets func() map[primitive.MessageQueue]int64
	// handover unlocks orderly queues given up at a rebalance; nil for
	// concurrent consumers.
	handover *handover
	bg       sync.WaitGroup // background loops, ended by closing renewDone

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
	unrouted  atomic.Uint64
	deferred  deferrals // redeliveries deferred because their subscription was saturated
	// stopping is set when Stop begins; from then on the counters above
	// signal changed, and acknowledged callbacks note their offsets in
	// returns, so that Stop waits on conditions, not sleeps.
	stopping  atomic.Bool
	changed   chan struct{}
	returns   returnedOffsets
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
	Suspend()
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
			o.applyConsumer(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.instance == "" {
		cfg.instance = "rmqkit-" + group + "-" + randomSuffix()
	}
	base, instanceGroup := group, false
	if cfg.mode != nil {
		ms := ModeSetup{Group: group, Instance: cfg.instance, Connection: cfg.connection(), Logger: cfg.logger, Start: cfg.start}
		if err := cfg.mode.Setup(&ms); err != nil {
			return nil, err
		}
		if err := checkName("group", ms.Group, 255); err != nil {
			return nil, err
		}
		group, cfg.instance, cfg.start = ms.Group, ms.Instance, ms.Start
		if ms.InstanceGroup && cfg.groupQuota {
			return nil, fmt.Errorf("%w: WithGroupQuota: each instance of this mode is a group of its own (use WithGroupRate)", ErrNotInMode)
		}
		instanceGroup = ms.InstanceGroup
	}
	var admOpts []admin.Option
	if cr := cfg.credentials; cr != nil {
		admOpts = append(admOpts, admin.WithCredentials(cr.AccessKey, cr.SecretKey))
	}
	adm, err := admin.New(cfg.nameServers, admOpts...) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("%w: name server: %w", ErrInvalidOption, err)
	}
	c := &Consumer{
		group:         group,
		baseGroup:     base,
		instanceGroup: instanceGroup,
		cfg:           cfg,
		subs:          make(map[string]*subscription),
		routes:        make(map[string]*subscription),
		adm:           adm,
		backer:        adm,
		released:      make(chan struct{}),
		changed:       make(chan struct{}, 1),
	}
	c.admit, c.stopAdmit = context.WithCancel(context.Background())
	c.handlerCtx, c.stopHandler = context.WithCancel(context.Background())
	c.inflight.init()
	if err := c.glim.init(cfg.groupLimit, cfg.groupQuota); err != nil {
		_ = adm.Close()
		return nil, fmt.Errorf("%w: group limit: %w", ErrInvalidOption, err)
	}
	for _, attach := range cfg.plugins {
		if attach == nil {
			continue
		}
		p, err := attach(c)
		if err != nil {
			_ = adm.Close()
			return nil, err
		}
		c.plugins = append(c.plugins, p)
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
// to h one at a time. It must be called before Start. Options given here
// win over the consumer's (TuningOption); a plugin's options (WithPlugin,
// such as a configuration file) win over both.
func (c *Consumer) Subscribe(topic string, sel Selector, h Handler, opts ...SubscribeOption) error {
	if h == nil {
		return fmt.Errorf("%w: topic %q: handler is nil", ErrInvalidOption, topic)
	}
	return c.subscribe(topic, sel, h, nil, opts)
}

// SubscribeBatch adds a subscription to topic whose handler h is called
// with up to WithBatchSize messages at once (default DefaultBatchSize). h
// returns a *BatchError to fail some messages only. The consumer's and the
// subscription's middleware still run per message: each message goes
// through the chain, and the chains meet where h is called once with the
// messages that reached it (a middleware that does not call next keeps its
// message out of the batch). A batch subscription cannot be orderly or
// key-ordered.
func (c *Consumer) SubscribeBatch(topic string, sel Selector, h BatchHandler, opts ...SubscribeOption) error {
	if h == nil {
		return fmt.Errorf("%w: topic %q: batch handler is nil", ErrInvalidOption, topic)
	}
	return c.subscribe(topic, sel, nil, h, opts)
}

func (c *Consumer) subscribe(topic string, sel Selector, h Handler, bh BatchHandler, opts []SubscribeOption) error {
	if err := checkName("topic", topic, 127); err != nil {
		return err
	}
	if err := sel.validate(); err != nil {
		return fmt.Errorf("topic %q: %w", topic, err)
	}
	sc := subConfig{poolSize: c.cfg.poolSize, rate: c.cfg.rate, suspend: DefaultOrderlySuspend, batch: bh, batchSize: DefaultBatchSize}
	for _, o := range opts {
		if o != nil {
			o.applySubscription(&sc)
		}
	}
	if err := c.pluginOptions(topic, &sc); err != nil {
		return err
	}
	if err := sc.check(topic); err != nil {
		return err
	}
	if err := sc.keyed.check(topic, &sc); err != nil {
		return err
	}
	// A key-ordered subscription is consumed in the client's orderly mode
	// (keyed.go) and retries in place like one (after sc.suspend).
	sc.orderly = sc.orderly || sc.keyed.on
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
		if (other.keyed != nil) != sc.keyed.on {
			return fmt.Errorf("%w: %q is key-ordered=%v, %q is key-ordered=%v", ErrMixedOrdering, topic, sc.keyed.on, other.topic, other.keyed != nil)
		}
		break
	}
	s := &subscription{
		topic:      topic,
		selector:   sel,
		batch:      sc.batch,
		batchSize:  1,
		pool:       sc.pool,
		orderly:    sc.orderly,
		suspend:    sc.suspend,
		maxRetries: maxRetries,
		limiter:    limiter,
		intake:     make(chan struct{}, 1),
		keyed:      newKeyed(sc.keyed, sc.suspend),
	}
	if sc.batch != nil {
		s.batchSize = sc.batchSize
	}
	// The consumer's middleware runs first, then the subscription's.
	mw := append(slices.Clip(c.cfg.middleware), sc.middleware...)
	if h != nil {
		s.handler = chain(h, mw)
	}
	s.middleware = mw
	if err := c.initAdaptive(s, sc); err != nil {
		return err
	}
	if s.pool == nil {
		p, err := pool.New(topic, sc.poolSize)
		if err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
		s.pool, s.ownsPool = p, true
	}
	c.subs[topic] = s
	c.routes[c.clientName(topic)] = s
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
	if m := c.cfg.mode; m != nil {
		if err := m.BeforeStart(ctx, ModeStart{Topics: c.topicsLocked()}); err != nil {
			return err
		}
	}
	if c.glim.counter == nil {
		c.glim.counter = &adminCounter{client: c.adm, self: c.cfg.instance, alive: make(map[string]bool)}
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
	client, err := rmq.NewPushConsumer(c.clientOptions(c.countQueues(ctx))...)
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
	c.settled = func() bool {
		// The client books a callback's result (its offset) just after
		// the callback returns. Every acknowledged callback that returned
		// during Stop must show in the queue's commit offset, or be held
		// back by an older message still in the queue's cache.
		mqs := client.GetConsumerRunningInfo(false).MQTable
		return c.returns.booked(func(mq primitive.MessageQueue) (commit, cachedMin int64, cached int, ok bool) {
			pi, ok := mqs[mq]
			return pi.CommitOffset, pi.CachedMsgMinOffset, pi.CachedMsgCount, ok
		})
	}
	c.offsets = func() map[primitive.MessageQueue]int64 {
		mqs := client.GetConsumerRunningInfo(false).MQTable
		out := make(map[primitive.MessageQueue]int64, len(mqs))
		for mq, pi := range mqs {
			out[mq] = pi.CommitOffset
		}
		return out
	}
	c.state = stateRunning
	c.startedAt = time.Now()
	c.renewDone = make(chan struct{})
	c.bg.Go(func() { c.renewLeases(c.cfg.consumeTimeout/3, c.renewDone) })
	if c.orderlyLocked() {
		c.handover = newHandover(c, func() map[primitive.MessageQueue]bool {
			mqs := client.GetConsumerRunningInfo(false).MQTable
			now := make(map[primitive.MessageQueue]bool, len(mqs))
			for mq := range mqs {
				now[mq] = true
			}
			return now
		}, client.Rebalance, c.allQueues)
		c.bg.Go(func() { c.handover.run(c.renewDone) })
	}
	c.glim.start(c)
	c.startAdaptive()
	c.cfg.logger.Info("rmqkit consumer started", "group", c.group, "subscriptions", c.topicsLocked(), "instance", c.cfg.instance)
	if m := c.cfg.mode; m != nil {
		if err := m.AfterStart(ctx, ModeStart{Topics: c.topicsLocked()}); err != nil {
			return c.stopAfterFailedStart(err)
		}
	}
	// Plugins start without c.mu: they use the consumer (Settings, the
	// setters), as a configuration file's first apply does.
	for _, p := range c.plugins {
		c.mu.Unlock()
		err := p.Start(ctx)
		c.mu.Lock()
		if err == nil && c.state != stateRunning {
			// Stop began meanwhile and did not see this plugin.
			c.mu.Unlock()
			p.Stop(ctx)
			c.mu.Lock()
			return ErrStopped
		}
		if err != nil {
			return c.stopAfterFailedStart(err)
		}
		c.pluginsStarted++
	}
	return nil
}

// stopAfterFailedStart stops a consumer whose client started but whose
// mode or plugin failed after it, and returns err. It requires c.mu, which
// it releases while Stop runs.
func (c *Consumer) stopAfterFailedStart(err error) error {
	c.mu.Unlock()
	defer c.mu.Lock()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Stop(sctx)
	return err
}

// countQueues counts the queues the consumer may hold: every queue of
// every subscribed topic, plus the group's retry queue on each broker (the
// thresholds are fixed when the client is created). A topic whose route
// cannot be read counts 16 queues.
// It requires c.mu.
func (c *Consumer) countQueues(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	queues, brokers := 0, map[string]bool{}
	for _, s := range c.subs {
		r, err := c.adm.TopicRoute(ctx, c.clientName(s.topic))
		if err != nil {
			queues += 16
			continue
		}
		for _, q := range r.MessageQueues() {
			queues++
			brokers[q.BrokerName] = true
		}
	}
	queues += max(len(brokers), 1)
	return min(queues, 6553500/c.cfg.queuePrefetch)
}

// allQueues returns every queue of the subscribed topics, as the client
// names them; a topic whose route cannot be read adds none.
func (c *Consumer) allQueues(ctx context.Context) []primitive.MessageQueue {
	c.mu.Lock()
	topics := c.topicsLocked()
	c.mu.Unlock()
	var out []primitive.MessageQueue
	for _, t := range topics {
		r, err := c.adm.TopicRoute(ctx, c.clientName(t))
		if err != nil {
			continue
		}
		for _, q := range r.MessageQueues() {
			out = append(out, primitive.MessageQueue{Topic: q.Topic, BrokerName: q.BrokerName, QueueId: q.QueueID})
		}
	}
	return out
}

// orderlyLocked reports whether the consumer's subscriptions are orderly.
// It requires c.mu.
func (c *Consumer) orderlyLocked() bool {
	for _, s := range c.subs {
		return s.orderly
	}
	return false
}

func (c *Consumer) topicsLocked() []string {
	ts := make([]string, 0, len(c.subs))
	for t := range c.subs {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func (c *Consumer) clientOptions(queues int) []rmq.Option {
	orderly, maxRetries, batch := false, 0, 1
	for _, s := range c.subs {
		orderly = s.orderly
		maxRetries = max(maxRetries, s.maxRetries)
		batch = max(batch, s.batchSize)
		if s.keyed != nil {
			batch = max(batch, KeyOrderedIntake)
		}
	}
	if !orderly {
		// Batch intake (intake.go): callbacks of a pull's worth.
		batch = max(batch, intakeBatch)
	}
	if orderly {
		// rmqkit dead-letters an exhausted orderly message itself, with
		// its subscription's budget (dispatch.go); -1 keeps the client from
		// doing it with the consumer-wide one.
		maxRetries = -1
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
		// The client divides the topic thresholds evenly over every queue
		// it holds at each rebalance; given per-queue prefetch x all queues,
		// each queue keeps its own share whatever other topics have
		// (prefetchThresholds).
		rmq.WithPullThresholdForTopic(c.cfg.queuePrefetch * queues),
		rmq.WithPullThresholdSizeForTopic(min(c.cfg.queuePrefetchMiB*queues, 102400)),
		rmq.WithPullThresholdForQueue(int64(c.cfg.queuePrefetch)),
		rmq.WithPullThresholdSizeForQueue(c.cfg.queuePrefetchMiB),
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

// Stop ends consumption gracefully: it stops pulling and stops handing
// messages to handlers at once, waits until the handlers already running
// return or ctx ends, commits the offsets of what was handled, and shuts
// the client down. Messages fetched but not handled are delivered again
// later. If ctx ends first, handlers' contexts are cancelled; handlers that
// return are abandoned (their messages are delivered again too), and
// handlers that ignore their context are left running, logged and counted
// in Stats. Stop then returns ctx.Err(), within ctx's deadline plus
// stopSlack (500 ms) whatever the handlers do.
//
// Stop is safe after a failed Start, without Start, and more than once.
// A stopped Consumer cannot be started again.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	prev := c.state
	c.state = stateStopped
	started := c.plugins[:c.pluginsStarted]
	c.pluginsStarted = 0
	c.mu.Unlock()
	if prev == stateStopped {
		return nil
	}
	// Plugins stop first: a configuration change never lands on a
	// stopping consumer.
	for _, p := range slices.Backward(started) {
		p.Stop(ctx)
	}
	// hard bounds every step after the handlers: ctx's deadline plus a
	// little for the shutdown itself. Without a deadline, the client's
	// bookkeeping and the pools get holdGrace each.
	hard, cancel := context.WithCancel(context.Background())
	if d, ok := ctx.Deadline(); ok {
		hard, cancel = context.WithDeadline(context.Background(), d.Add(stopSlack))
	}
	defer cancel()

	c.stopping.Store(true)
	c.stopAdmit()
	var waitErr error
	if prev == stateRunning {
		// No new pull starts; a pull in flight still delivers its messages
		// to the client's buffer, where they wait unhandled.
		c.client.Suspend()
		// Every callback ends up parked (its messages not handled) or
		// returned: a handler returned, or overran its hold.
		waitErr = c.waitFor(ctx, c.handedOver)
		if waitErr != nil {
			c.stopHandler()
			if n := c.active.Load(); n > 0 {
				c.cfg.logger.Error("rmqkit consumer stop: handlers ignore their cancelled context; abandoning them (their messages will be redelivered)",
					"group", c.group, "handlers", n)
			}
		}
		c.commitResults(hard)
		c.outliveFirstHeartbeat(hard)
		c.shutdownClient(hard)
		close(c.released)
		close(c.renewDone)
		c.bg.Wait()
		c.glim.stop()
		// Callbacks parked on released return now.
		_ = c.waitFor(hard, func() bool { return c.callbacks.Load() == 0 })
	} else {
		close(c.released)
	}
	_ = c.adm.Close()
	c.stopHandler()
	poolCtx := hard
	if waitErr != nil {
		// The handlers still running ignore their context: don't wait.
		var cancel context.CancelFunc
		poolCtx, cancel = context.WithCancel(hard)
		cancel()
	}
	errs := c.closePools(poolCtx)
	if m := c.cfg.mode; m != nil {
		m.AfterStop(hard)
	}
	c.cfg.logger.Info("rmqkit consumer stopped", "group", c.group, "graceful", waitErr == nil)
	if waitErr != nil {
		return waitErr
	}
	return errors.Join(errs...)
}

// stopSlack is how long Stop may take past its context's deadline: the
// commit and the client's shutdown after the handlers were given up.
const stopSlack = 500 * time.Millisecond

// waitFor waits until cond holds or ctx ends. The counters cond reads
// signal changed once Stop has set stopping.
func (c *Consumer) waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-c.changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// signal wakes Stop's waitFor after a counter it waits on changed.
func (c *Consumer) signal() {
	if !c.stopping.Load() {
		return
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// handedOver reports whether every callback inside rmqkit is parked.
func (c *Consumer) handedOver() bool { return c.callbacks.Load() == c.parked.Load() }

func (c *Consumer) handlerReturned() {
	c.active.Add(-1)
	c.signal()
}

// commitResults commits the offsets of the messages handled before Stop.
// The client books a result just after the callback returns, and the
// commit in its Shutdown is one-way on connections it closes at once, so
// without this the last results of a graceful stop were often lost and
// their messages delivered again after the restart.
func (c *Consumer) commitResults(hard context.Context) {
	if c.waitFor(hard, c.handedOver) != nil {
		return
	}
	if c.settled != nil {
		// The client's bookkeeping takes microseconds and signals nothing:
		// poll it, for a bounded time.
		ctx, cancel := context.WithTimeout(hard, holdGrace)
		defer cancel()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for !c.settled() {
			select {
			case <-ctx.Done():
				c.cfg.logger.Warn("rmqkit consumer stop: the client did not book every result in time; some messages may be delivered again", "group", c.group)
				goto persist
			case <-t.C:
			}
		}
	}
persist:
	if err := c.client.PersistConsumerOffset(); err != nil {
		c.cfg.logger.Warn("rmqkit consumer: persist offsets at stop", "group", c.group, "error", err)
	}
	c.commitAcknowledged(hard)
}

// offsetCommitter commits a queue's offset and waits for the broker's answer
// (internal/admin.Client).
type offsetCommitter interface {
	UpdateConsumerOffset(ctx context.Context, group string, mq admin.MessageQueue, offset int64) error
}

// commitAcknowledged commits the client's offsets once more, each waiting
// for the broker's answer. The client's persist is one-way, on connections
// its Shutdown closes at once: on a loaded machine the broker sometimes never
// read it, and the next start handled again what this one had handled
// (twice in a row once, in a test of 8 restarts).
func (c *Consumer) commitAcknowledged(hard context.Context) {
	oc, ok := c.backer.(offsetCommitter)
	if !ok || c.offsets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(hard, 2*time.Second)
	defer cancel()
	for mq, off := range c.offsets() {
		if off < 0 {
			continue // nothing consumed from this queue yet
		}
		err := oc.UpdateConsumerOffset(ctx, c.brokerGroup(), admin.MessageQueue{Topic: mq.Topic, BrokerName: mq.BrokerName, QueueID: mq.QueueId}, off)
		if err != nil {
			c.cfg.logger.Warn("rmqkit consumer: acknowledged offset commit at stop", "group", c.group, "topic", mq.Topic, "queue", mq.QueueId, "error", err)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// shutdownClient shuts the client down, giving up on waiting when hard
// ends (a broker that does not answer can hold the client's unregister).
func (c *Consumer) shutdownClient(hard context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.client.Shutdown(); err != nil {
			c.cfg.logger.Warn("rmqkit consumer shutdown", "group", c.group, "error", err)
		}
	}()
	select {
	case <-done:
	case <-hard.Done():
		c.cfg.logger.Warn("rmqkit consumer stop: the client's shutdown outlived Stop's deadline", "group", c.group)
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
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// closePools closes the pools the consumer owns, all within one bound.
func (c *Consumer) closePools(hard context.Context) []error {
	if _, ok := hard.Deadline(); !ok {
		var cancel context.CancelFunc
		hard, cancel = context.WithTimeout(hard, holdGrace)
		defer cancel()
	}
	var errs []error
	for _, s := range c.subs {
		if !s.ownsPool {
			continue
		}
		if err := s.pool.Close(hard); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
	}
	return errs
}

// clientName is a topic or group name as the client and the broker know
// it: with the namespace prefix, which the client adds unconditionally.
func (c *Consumer) clientName(name string) string {
	return Connection{Namespace: c.cfg.namespace}.Qualify(name)
}

// SetPoolSize resizes the pool of the subscription to topic to n workers,
// at run time. Running handlers finish; the new size applies to the
// messages admitted next. An invalid n or unknown topic returns an error and
// leaves the size as it was. For a shared pool, every subscription using it
// is affected. For an adaptive subscription (WithAdaptivePool) it pins the
// size: adaptive sizing is off from then on until the consumer is restarted.
func (c *Consumer) SetPoolSize(topic string, n int) error {
	s, err := c.subscription(topic)
	if err != nil {
		return err
	}
	if err := checkPoolSize(n); err != nil {
		return fmt.Errorf("topic %q: %w", topic, err)
	}
	s.pinAdaptive(c.cfg.logger, c.group)
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
