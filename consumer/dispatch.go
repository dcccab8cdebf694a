package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

// outcome of handing one message (or a batch) to its handler.
type outcome int

const (
	handled   outcome = iota // handler returned nil
	failed                   // handler returned an error, panicked or overran its hold
	abandoned                // not handled because the consumer is stopping
)

// verdict is what a callback tells the client once its messages are done.
type verdict int

const (
	acknowledge   verdict = iota // every message succeeded or was handed back by rmqkit
	retryInPlace                 // orderly: suspend the queue and deliver the same messages again
	clientRetry                  // rmqkit could not hand a failed message back: let the client do it
	releaseParked                // stopping: the result must be discarded by the client
)

// consume is the callback given to the client for every subscription. The
// client calls it from a goroutine of its own per callback of up to
// ConsumeMessageBatchMaxSize messages; it blocks until the handlers have
// run, which is what bounds the client's prefetch buffer.
//
// The client acknowledges or retries a callback as a whole (it ignores
// AckIndex), so rmqkit decides per message: a failed message is handed back
// to the broker by rmqkit itself (CONSUMER_SEND_MSG_BACK, with its
// subscription's retry budget) and the callback is then acknowledged, so a
// neighbour that succeeded is never redelivered or dead-lettered with it.
func (c *Consumer) consume(ctx context.Context, msgs ...*primitive.MessageExt) (res rmq.ConsumeResult, _ error) {
	c.callbacks.Add(1)
	c.inflight.add(msgs)
	defer func() { c.callbackReturned(msgs, res == rmq.ConsumeSuccess) }()

	octx, orderly := primitive.GetOrderlyCtx(ctx)
	if orderly && c.handover != nil {
		c.handover.enter(msgs[0].Queue)
		defer c.handover.leave(msgs[0].Queue)
	}
	v, suspend := acknowledge, time.Second
	mixed := !orderly && !oneTopic(msgs)
	if mixed {
		v = c.handleMixed(ctx, msgs)
	}
	// An orderly callback comes from one queue; a concurrent one from one
	// topic's queue, or the retry queue (mixed). Runs of one topic are handed
	// to its subscription in order.
	for i := 0; i < len(msgs) && v == acknowledge && !mixed; {
		j := i + 1
		for j < len(msgs) && msgs[j].Topic == msgs[i].Topic {
			j++
		}
		s := c.route(msgs[i:j])
		if s == nil {
			v = clientRetry
			break
		}
		v = c.handleRun(ctx, s, msgs[i:j], orderly)
		suspend = s.suspend
		i = j
	}

	switch v {
	case acknowledge:
		return rmq.ConsumeSuccess, nil
	case releaseParked:
		// Wait until the client has been shut down: it then discards this
		// result, and the messages stay unacknowledged for redelivery.
		c.parked.Add(1)
		c.signal()
		<-c.released
		c.parked.Add(-1)
		// The client is shut down: an orderly queue loop would still sleep
		// the suspend time before it notices.
		suspend = 10 * time.Millisecond
	}
	if orderly {
		octx.SuspendCurrentQueueTimeMillis = int(suspend / time.Millisecond)
		return rmq.SuspendCurrentQueueAMoment, nil
	}
	return rmq.ConsumeRetryLater, nil
}

// oneTopic reports whether msgs are all of one topic: always, except in a
// callback from the group's retry topic.
func oneTopic(msgs []*primitive.MessageExt) bool {
	for _, m := range msgs[1:] {
		if m.Topic != msgs[0].Topic {
			return false
		}
	}
	return true
}

// route returns the subscription of msgs' topic, or nil after counting and
// logging them.
func (c *Consumer) route(msgs []*primitive.MessageExt) *subscription {
	s := c.routes[msgs[0].Topic] // read-only after Start
	if s == nil {
		// The client routes by subscribed topic, so this means rmqkit
		// names topics differently from the client: say so loudly.
		c.unrouted.Add(uint64(len(msgs)))
		c.cfg.logger.Error("rmqkit: message of a topic no subscription handles; the client will redeliver it",
			"group", c.group, "topic", msgs[0].Topic, "msg_id", msgs[0].MsgId)
	}
	return s
}

// handleMixed handles a concurrent callback from the group's retry topic
// that holds several subscriptions' redeliveries: each subscription's share
// runs on its own goroutine, so that one whose redeliveries wait for a
// worker (up to retryWait, then deferred) never delays another's.
func (c *Consumer) handleMixed(ctx context.Context, msgs []*primitive.MessageExt) verdict {
	var topics []string
	byTopic := make(map[string][]*primitive.MessageExt)
	for _, m := range msgs {
		if _, ok := byTopic[m.Topic]; !ok {
			topics = append(topics, m.Topic)
		}
		byTopic[m.Topic] = append(byTopic[m.Topic], m)
	}
	subs := make([]*subscription, len(topics))
	for i, t := range topics {
		if subs[i] = c.route(byTopic[t]); subs[i] == nil {
			return clientRetry // before anything is handled
		}
	}
	verdicts := make([]verdict, len(topics))
	var wg sync.WaitGroup
	for i, t := range topics {
		wg.Go(func() { verdicts[i] = c.handleRun(ctx, subs[i], byTopic[t], false) })
	}
	wg.Wait()
	v := acknowledge
	for _, x := range verdicts {
		switch {
		case x == releaseParked:
			return releaseParked // the whole callback comes again
		case x == clientRetry:
			v = clientRetry
		}
	}
	return v
}

// callbackReturned is deferred by consume.
func (c *Consumer) callbackReturned(msgs []*primitive.MessageExt, acked bool) {
	c.inflight.remove(msgs)
	if acked && c.stopping.Load() {
		c.returns.note(msgs)
	}
	c.callbacks.Add(-1)
	c.signal()
}

// handleRun hands messages of one subscription to its handler and settles
// each failure: concurrent subscriptions hand a failed message back to the
// broker at once (retry topic, or dead-letter queue when it is exhausted);
// orderly ones retry it in place, never past it, until it is exhausted and
// dead-lettered.
func (c *Consumer) handleRun(ctx context.Context, s *subscription, exts []*primitive.MessageExt, orderly bool) verdict {
	s.received.Add(uint64(len(exts)))
	if s.keyed != nil {
		return c.handleKeyed(ctx, s, exts) // keyed.go
	}
	if !orderly {
		return c.fanOut(ctx, s, exts) // intake.go
	}
	now := time.Now()
	if s.batch != nil {
		d := &delivery{c: c, s: s, msgs: make([]*Message, len(exts))}
		for i, e := range exts {
			d.msgs[i] = newMessage(c.group, s.topic, e)
			d.msgs[i].received = now
		}
		o, failedIdx := d.do(len(exts))
		switch o {
		case handled:
			return acknowledge
		case abandoned:
			return releaseParked
		}
		return c.settleFailures(ctx, s, exts, failedIdx, orderly)
	}
	// Orderly messages of one callback run one by one, in order: a failure
	// stops the run there.
	for i, e := range exts {
		d := &delivery{c: c, s: s}
		d.msg.fill(c.group, s.topic, e)
		d.msg.received = now
		switch o, _ := d.do(1); o {
		case abandoned:
			return releaseParked
		case failed:
			if v := c.settle(ctx, s, exts[i], orderly); v != acknowledge {
				return v
			}
		}
	}
	return acknowledge
}

// settleFailures settles the failed messages of a batch: those listed in
// idx, or all when idx is nil.
func (c *Consumer) settleFailures(ctx context.Context, s *subscription, exts []*primitive.MessageExt, idx []int, orderly bool) verdict {
	if idx == nil {
		for _, e := range exts {
			if v := c.settle(ctx, s, e, orderly); v != acknowledge {
				return v
			}
		}
		return acknowledge
	}
	for _, i := range idx {
		if v := c.settle(ctx, s, exts[i], orderly); v != acknowledge {
			return v
		}
	}
	return acknowledge
}

// settle decides what happens to one failed message. Its tries so far are
// ReconsumeTimes+1; it is exhausted once ReconsumeTimes reaches the
// subscription's max retries, in both modes.
func (c *Consumer) settle(ctx context.Context, s *subscription, m *primitive.MessageExt, orderly bool) verdict {
	deferred := 0 // deferrals are not tries (retrydefer.go)
	if !orderly && m.ReconsumeTimes > 0 {
		deferred = c.deferred.get(m.MsgId)
	}
	exhausted := int(m.ReconsumeTimes)-deferred >= s.maxRetries
	if orderly && !exhausted {
		return retryInPlace
	}
	if err := c.sendBack(ctx, s, m, exhausted, deferred); err != nil {
		c.cfg.logger.Error("rmqkit: cannot hand a failed message back to the broker; the whole callback will be redelivered",
			"group", c.group, "topic", s.topic, "msg_id", m.MsgId, "error", err)
		if orderly {
			return retryInPlace
		}
		return clientRetry
	}
	if exhausted {
		c.deferred.forget(m.MsgId)
		s.dlq.Add(1)
		c.cfg.logger.Warn("rmqkit message exhausted its retries; sent to the dead-letter queue",
			"group", c.group, "topic", s.topic, "msg_id", m.MsgId, "tries", int(m.ReconsumeTimes)+1)
	}
	return acknowledge
}

// sendBacker hands a message back to the broker (internal/admin.Client).
type sendBacker interface {
	SendMessageBack(ctx context.Context, sb admin.SendBack) error
}

// sendBack hands m back for redelivery through the group's retry topic
// with the broker's back-off, or to the dead-letter queue when dlq is set.
// It tries twice: a message that cannot be handed back is redelivered by
// the client with its whole callback.
func (c *Consumer) sendBack(ctx context.Context, s *subscription, m *primitive.MessageExt, dlq bool, deferred int) error {
	if c.backer == nil {
		return errors.New("no broker connection")
	}
	sb := c.sendBackOf(m)
	sb.MaxReconsumeTimes = s.maxRetries + deferred
	if dlq {
		sb.DelayLevel = -1
	}
	var err error
	for try := 0; try < 2; try++ {
		if err = c.backer.SendMessageBack(ctx, sb); err == nil {
			return nil
		}
	}
	return err
}

// sendBackOf describes m for a hand-back to the broker that holds it.
func (c *Consumer) sendBackOf(m *primitive.MessageExt) admin.SendBack {
	sb := admin.SendBack{
		Group:       c.brokerGroup(),
		StoreHost:   m.StoreHost,
		CommitLog:   m.CommitLogOffset,
		OriginMsgID: m.MsgId,
		OriginTopic: m.Topic,
	}
	if m.Queue != nil {
		sb.BrokerName = m.Queue.BrokerName
	}
	return sb
}

// delivery carries one hand-over to a pool worker; a single allocation
// holds the message and the bound task.
type delivery struct {
	c    *Consumer
	s    *subscription
	msg  Message
	msgs []*Message
	st   pool.Started
	// decided is the decision of d's callback (mayRun): a concurrent
	// callback's is its first delivery's decision field, a key-ordered
	// one's its keyedCallback's.
	decided  *atomic.Int32
	decision atomic.Int32
	// byLane: a worker took d after its previous delivery (intake.go); st
	// is set before d runs.
	byLane bool
	ran    bool
	gated  bool  // a rate limit is set: Gate passes it
	err    error // of start, then of wait (intake.go)

	deferredOut bool // handed back untried (retrydefer.go)
	hctx        handlerContext
}

// do passes the rate limits, runs the handler on the pool and counts the
// outcome. For a batch, failedIdx lists the messages a *BatchError named.
func (d *delivery) do(n int) (o outcome, failedIdx []int) {
	err := d.start(d.c.admit)
	if err == nil {
		err = d.wait()
	}
	return d.finish(n, err)
}

// start reserves a worker (waiting until ctx ends), passes the rate limits
// and starts the handler without waiting for it.
func (d *delivery) start(ctx context.Context) (err error) {
	s := d.s
	// Rate limits, narrowest first (limits.go), are the pool's gate: they
	// are passed once a worker is reserved, right before the handler
	// starts, so that they bound handler starts and a changed limit is in
	// force at once, whatever already waits for a worker. A message held
	// there is neither failed nor retried; one still held when Stop begins
	// is abandoned like one that never got a worker.
	d.prepare()
	d.st, err = s.pool.StartRunner(ctx, d)
	return err
}

// prepare notes whether a rate limit applies, before d asks for a worker.
func (d *delivery) prepare() {
	s, c := d.s, d.c
	d.gated = s.limiter.Limited() || c.glim.lim.Limited() || c.cfg.process.Limited()
	if !d.gated {
		// No time spent at the limits (Message.Waits): zero times
		// cost no clock reading.
		d.clearGateTimes()
	}
}

func (d *delivery) clearGateTimes() {
	if d.msgs != nil {
		for _, m := range d.msgs {
			m.gated, m.admitted = time.Time{}, time.Time{}
		}
		return
	}
	d.msg.gated, d.msg.admitted = time.Time{}, time.Time{}
}

// Gate is the pool's gate (pool.Runner): the rate limits when one is set.
func (d *delivery) Gate(ctx context.Context) error {
	if !d.gated {
		return nil
	}
	return d.passLimits(ctx)
}

// Run is the task (pool.Runner).
func (d *delivery) Run(ctx context.Context) error { return d.run(ctx) }

// wait returns the started handler's error, or pool.ErrOverran once it has
// run past the handler timeout and holdGrace, or a hard stop cut it short.
func (d *delivery) wait() error {
	return d.st.Wait(d.c.cfg.handlerTimeout+holdGrace, d.c.handlerCtx.Done())
}

// finish counts the outcome of a delivery of n messages from the error of
// start or wait.
func (d *delivery) finish(n int, err error) (o outcome, failedIdx []int) {
	s, c := d.s, d.c
	switch {
	case err == nil:
		s.succeeded.Add(uint64(n))
		return handled, nil
	case errors.Is(err, pool.ErrOverran) && c.handlerCtx.Err() == nil:
		// The handler ignored its context past the timeout: stop holding
		// its message (it is handed back) and leave the handler running.
		s.overran.Add(uint64(n))
		s.failed.Add(uint64(n))
		c.cfg.logger.Error("rmqkit handler ignored its context past the handler timeout; its message is handed back for redelivery while it keeps running",
			"group", c.group, "topic", s.topic, "msg_id", d.id(), "timeout", c.cfg.handlerTimeout)
		return failed, nil
	case errors.Is(err, pool.ErrOverran), errors.Is(err, errAbandon), !d.ran && !errors.Is(err, pool.ErrClosed):
		// Stop began before a worker was free, or a hard stop cut the
		// handler short: redelivered after the restart.
		s.abandoned.Add(uint64(n))
		return abandoned, nil
	case errors.Is(err, pool.ErrClosed):
		s.failed.Add(uint64(n))
		c.cfg.logger.Error("rmqkit subscription's pool is closed; its message is handed back for redelivery",
			"group", c.group, "topic", s.topic, "pool", s.pool.Name(), "msg_id", d.id())
		return failed, nil
	}
	var be *BatchError
	if d.msgs != nil && errors.As(err, &be) && be.valid(len(d.msgs)) {
		s.failed.Add(uint64(len(be.Failed)))
		s.succeeded.Add(uint64(n - len(be.Failed)))
		failedIdx = be.Failed
	} else {
		s.failed.Add(uint64(n))
	}
	c.cfg.logger.Warn("rmqkit handler failed; message will be redelivered",
		"group", c.group, "topic", s.topic, "msg_id", d.id(), "reconsume", d.reconsume(), "error", err)
	return failed, failedIdx
}

// holdGrace is how long past its handler timeout rmqkit waits for a handler
// that ignores its context before handing its message back.
const holdGrace = time.Second

var errAbandon = errors.New("consumer stopping")

// Decisions of a callback's lead delivery.
const (
	undecided int32 = iota
	runAll
	abandonAll
)

// mayRun reports whether d's handler may start now that d has a worker.
// A callback is handled whole or abandoned whole: the client acknowledges
// or redelivers it as a whole, so a message abandoned beside handled ones
// would bring them again. The first of its deliveries to reach a worker
// decides for all, from whether Stop has begun; the others follow, even
// after Stop began (their starts are late, bounded by the hard stop). An
// orderly delivery, alone in its callback, runs only if Stop has not begun.
func (d *delivery) mayRun() bool {
	admitted := d.c.admit.Err() == nil
	if d.decided == nil {
		return admitted
	}
	return decide(d.decided, admitted)
}

// decide takes a callback's decision if nobody has yet, runAll if admitted,
// and reports whether the decision is runAll.
func decide(st *atomic.Int32, admitted bool) bool {
	want := abandonAll
	if admitted {
		want = runAll
	}
	st.CompareAndSwap(undecided, want)
	return st.Load() == runAll
}

// run executes on a pool worker.
func (d *delivery) run(context.Context) error {
	c := d.c
	// Counted before the check so that Stop, which cancels admit and then
	// waits for active to reach zero, never misses a handler.
	c.active.Add(1)
	defer c.handlerReturned()
	d.ran = true
	var now time.Time
	if d.byLane {
		now = d.st.At() // the lane read the clock as it took d
	} else {
		now = time.Now()
	}
	d.setTimes(time.Time{}, time.Time{}, now)
	if !d.mayRun() {
		return errAbandon
	}
	d.hctx.initAt(c.handlerCtx, now.Add(c.cfg.handlerTimeout))
	defer d.hctx.release()
	ctx := context.Context(&d.hctx)
	var err error
	switch {
	case d.s.batch != nil && len(d.s.middleware) > 0:
		err = batchThroughMiddleware(ctx, d.s.batch, d.s.middleware, d.msgs)
	case d.s.batch != nil:
		err = safeBatch(ctx, d.s.batch, d.msgs)
	default:
		err = d.s.handler(ctx, &d.msg)
	}
	if a := d.s.adaptive; a != nil {
		a.observe(time.Since(d.startedAt()), err)
	}
	if err != nil && c.handlerCtx.Err() != nil {
		// Hard stop: the handler was cut short; its message is redelivered
		// after the restart rather than sent to the retry topic.
		return errAbandon
	}
	return err
}

// safeBatch runs a batch handler, turning a panic into an error naming it
// (the pool would recover it too, but a batch handler may be called
// outside the pool's recovery in tests and middleware).
func safeBatch(ctx context.Context, h BatchHandler, msgs []*Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("batch handler panicked: %v", v)
		}
	}()
	return h(ctx, msgs)
}

// passLimits is the pool's gate when a rate limit is set.
func (d *delivery) passLimits(ctx context.Context) error {
	d.setTimes(time.Now(), time.Time{}, time.Time{})
	err := throttle.WaitAllN(ctx, d.count(), d.s.limiter, d.c.glim.lim, d.c.cfg.process)
	d.setTimes(time.Time{}, time.Now(), time.Time{})
	return err
}

func (d *delivery) count() int {
	if d.msgs != nil {
		return len(d.msgs)
	}
	return 1
}

// setTimes records the gated, admitted and started times; zero values are
// left.
func (d *delivery) setTimes(gated, admitted, started time.Time) {
	set := func(m *Message) {
		if !gated.IsZero() {
			m.gated = gated
		}
		if !admitted.IsZero() {
			m.admitted = admitted
		}
		if !started.IsZero() {
			m.started = started
		}
	}
	if d.msgs != nil {
		for _, m := range d.msgs {
			set(m)
		}
		return
	}
	set(&d.msg)
}

func (d *delivery) id() string {
	if d.msgs != nil {
		return d.msgs[0].ID
	}
	return d.msg.ID
}

func (d *delivery) reconsume() int {
	if d.msgs != nil {
		return d.msgs[0].ReconsumeCount
	}
	return d.msg.ReconsumeCount
}

// inflight is the set of messages rmqkit holds: waiting for a worker or
// being handled, kept per callback (one entry for its messages). It is
// sharded because every callback adds and removes itself, and thousands of
// callbacks run at once under a backlog: one mutex made them queue behind
// each other.
type inflight struct {
	shards [inflightShards]inflightShard
}

const inflightShards = 32

type inflightShard struct {
	mu sync.Mutex
	m  map[*primitive.MessageExt][]*primitive.MessageExt // a callback's first message: its messages
	_  [40]byte                                          // keep shards on separate cache lines
}

func (f *inflight) init() {
	for i := range f.shards {
		f.shards[i].m = make(map[*primitive.MessageExt][]*primitive.MessageExt)
	}
}

func (f *inflight) shard(m *primitive.MessageExt) *inflightShard {
	return &f.shards[uint64(m.QueueOffset)%inflightShards]
}

// add holds a callback's messages; a message is in one callback at a
// time, so its first message names it.
func (f *inflight) add(msgs []*primitive.MessageExt) {
	if len(msgs) == 0 {
		return
	}
	sh := f.shard(msgs[0])
	sh.mu.Lock()
	sh.m[msgs[0]] = msgs
	sh.mu.Unlock()
}

func (f *inflight) remove(msgs []*primitive.MessageExt) {
	if len(msgs) == 0 {
		return
	}
	sh := f.shard(msgs[0])
	sh.mu.Lock()
	delete(sh.m, msgs[0])
	sh.mu.Unlock()
}

// each calls fn for every held message, one shard locked at a time.
func (f *inflight) each(fn func(*primitive.MessageExt)) {
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for _, msgs := range sh.m {
			for _, m := range msgs {
				fn(m)
			}
		}
		sh.mu.Unlock()
	}
}

// renewLeases keeps the client's consume-start stamp of every held message
// fresh. The client sends a message whose stamp is older than
// ConsumeTimeout back to the broker while it is still being handled, which
// would deliver it twice; rmqkit bounds handling time itself (the handler
// timeout and its hold).
func (c *Consumer) renewLeases(every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			stamp := strconv.FormatInt(now.UnixMilli(), 10)
			c.inflight.each(func(m *primitive.MessageExt) {
				m.WithProperty(primitive.PropertyConsumeStartTime, stamp)
			})
		}
	}
}

// returnedOffsets records, while Stop runs, the highest offset of every
// queue whose callback was acknowledged, for Stop to see them booked.
type returnedOffsets struct {
	mu  sync.Mutex
	max map[primitive.MessageQueue]int64
}

func (r *returnedOffsets) note(msgs []*primitive.MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.max == nil {
		r.max = make(map[primitive.MessageQueue]int64)
	}
	for _, m := range msgs {
		if m.Queue == nil {
			continue
		}
		if o, ok := r.max[*m.Queue]; !ok || m.QueueOffset > o {
			r.max[*m.Queue] = m.QueueOffset
		}
	}
}

// booked reports whether the client booked every noted offset: the
// queue's commit offset is past it, or it is held at an older message that
// is still in the queue's cache. queue reports a queue's commit offset and
// cache; a queue the client no longer has (dropped) needs nothing.
func (r *returnedOffsets) booked(queue func(primitive.MessageQueue) (commit, cachedMin int64, cached int, ok bool)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for mq, o := range r.max {
		commit, cachedMin, cached, ok := queue(mq)
		switch {
		case !ok, commit > o:
		case cached > 0 && cachedMin <= o && commit == cachedMin:
		default:
			return false
		}
	}
	return true
}
