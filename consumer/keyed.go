package consumer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Key-ordered subscriptions (WithKeyOrdered). The client consumes them in
// its orderly mode: one callback at a time per queue, the queue locked on
// the broker, so a queue's messages reach rmqkit in offset order and a
// queue is handled by one instance at a time. rmqkit takes up to
// KeyOrderedIntake messages per callback, queues each in its key's lane
// (keylanes.go) and returns only when every one of them is settled:
// handled, or dead-lettered after its last try. The client commits a
// queue's offset only when its callback returns success, so the committed
// offset never passes a message that is not settled.
//
// Why a barrier per callback and not a pipeline: the client's offset store
// cannot be given offsets from outside, so a pipeline would have to commit
// around it (and race its own persistence), and a queue given up at a
// rebalance would still have messages running after its callback returned,
// while its new owner starts. The barrier keeps both with the client, at a
// cost: a callback lasts as long as its longest lane. The other queues'
// callbacks fill the pool meanwhile (BenchmarkKeyOrdered).

// KeyOrderedIntake is how many messages a key-ordered subscription takes
// from a queue at once (the client's ConsumeMessageBatchMaxSize). It bounds
// a queue's messages in flight, and so the redeliveries after a crash.
const KeyOrderedIntake = 32

// KeyFunc returns the ordering key of a message. Messages with the same key
// are handled one at a time, in queue order; the empty key orders a message
// with nothing.
type KeyFunc func(*Message) string

// Sharding key properties: the Go client's producer writes the first, the
// Java client, the 5.x clients and the broker's own tools the second.
const (
	shardingKeyGo   = primitive.PropertyShardingKey // "SHARDING_KEY"
	shardingKeyJava = "__SHARDINGKEY"
)

// ShardingKey is the default KeyFunc: the message's sharding key, read from
// the __SHARDINGKEY property (Java and 5.x producers) or, when that is
// empty, SHARDING_KEY (rocketmq-client-go's producer).
func ShardingKey(m *Message) string {
	if k := m.Property(shardingKeyJava); k != "" {
		return k
	}
	return m.Property(shardingKeyGo)
}

// keyOrder is what WithKeyOrdered and WithKey set.
type keyOrder struct {
	on  bool
	key KeyFunc
}

// WithKeyOrdered makes the subscription key-ordered: messages with the same
// key (by default their sharding key, see ShardingKey and WithKey) are
// handled one at a time in queue-offset order, and messages with different
// keys run at once on the subscription's pool, up to its size. A message
// without a key is ordered with nothing: it runs as soon as a worker is
// free, like a message of a key of its own.
//
// rmqkit takes up to KeyOrderedIntake messages of a queue at a time and
// takes the queue's next ones once all of them are settled. A failed
// message is retried in place after DefaultOrderlySuspend
// (WithOrderlySuspend): its key waits, while the other keys taken in with it and the other
// queues go on; the later messages of its own queue wait for it. After the
// subscription's max retries it goes to the dead-letter queue and its key
// continues. It never passes through the retry topic, which would let the
// key's later messages overtake it.
//
// Offsets: a queue's offset is committed only once every message taken in
// with it is settled (handled or dead-lettered), so after a crash nothing is
// lost, and what is handled again is at most what was settled since the
// client last persisted the queue's offset (every 5 s, and with each pull)
// plus the messages in flight, KeyOrderedIntake per queue. The queues of a
// crashed instance resume once the broker's queue locks expire (60 s). A
// graceful Stop lets every intake that has started a message finish (within
// Stop's context; a message waiting for a retry is abandoned), so that it
// is not redelivered whole; an intake that started nothing is redelivered
// after the restart.
//
// The client consumes the subscription in its orderly mode (one intake per
// queue at a time, the queue locked on the broker): at a rebalance, no
// message of a queue given up is started later than a quarter second after
// the client dropped it, and its new owner starts only after this instance
// is done with it. The
// consumer's other subscriptions must be key-ordered too
// (ErrMixedOrdering), and WithKeyOrdered cannot be combined with WithOrderly
// or SubscribeBatch. Rate limits, pool resizing, middleware and tracing apply
// per message as in the other modes. A handler that ignores its context
// past the handler timeout keeps running while its message is retried, so
// its key then runs twice at once, as in orderly mode.
func WithKeyOrdered() SubscribeOption {
	return subOptionFunc(func(s *subConfig) { s.keyed.on = true })
}

// WithKey sets the ordering key of a key-ordered subscription (WithKeyOrdered);
// the default is ShardingKey. f runs once per delivered message, before
// its handler, and must be fast and safe for concurrent use. A panic in f is
// recovered and logged; the message is then ordered with every other
// message whose key f failed to give.
func WithKey(f KeyFunc) SubscribeOption {
	return subOptionFunc(func(s *subConfig) { s.keyed.key = f })
}

// check validates the key-ordered options of the subscription to topic.
func (k *keyOrder) check(topic string, sc *subConfig) error {
	switch {
	case k.key != nil && !k.on:
		return fmt.Errorf("%w: topic %q: WithKey without WithKeyOrdered", ErrInvalidOption, topic)
	case !k.on:
		return nil
	case sc.orderly:
		return conflict("topic %q: WithKeyOrdered and WithOrderly: key order replaces queue order", topic)
	case sc.batch != nil:
		return conflict("topic %q: WithKeyOrdered and SubscribeBatch: a key's messages are handled one at a time", topic)
	}
	return nil
}

// keyed is a key-ordered subscription's state.
type keyed struct {
	key        KeyFunc
	retryDelay time.Duration
	lanes      *keyLanes
	held       heldQueues
}

// newKeyed returns the state of a key-ordered subscription, nil if k is off.
func newKeyed(k keyOrder, retryDelay time.Duration) *keyed {
	if !k.on {
		return nil
	}
	kd := &keyed{key: k.key, retryDelay: retryDelay, lanes: newKeyLanes()}
	if kd.key == nil {
		kd.key = ShardingKey
	}
	return kd
}

// laneCount reports the keys with messages waiting or running, 0 for a
// subscription that is not key-ordered.
func (k *keyed) laneCount() int {
	if k == nil {
		return 0
	}
	return k.lanes.len()
}

// keyedCallback is one client callback of a key-ordered subscription.
type keyedCallback struct {
	mq       *primitive.MessageQueue
	received time.Time
	wg       sync.WaitGroup
	// abandoned: the consumer is stopping and some message was not
	// handled; lost: the queue was given up at a rebalance and the rest of
	// the callback was not started. Either way the callback must not be
	// acknowledged.
	abandoned atomic.Bool
	lost      atomic.Bool
	// decision: whether its messages run or are abandoned, taken by the
	// first to reach a worker or to be refused one as Stop begins (keyedDo,
	// mayRun); once they run, the others start even after Stop began.
	decision atomic.Int32
}

// handleKeyed runs one callback of a key-ordered subscription: every
// message in its key's lane, and returns once all are settled.
func (c *Consumer) handleKeyed(ctx context.Context, s *subscription, exts []*primitive.MessageExt) verdict {
	cb := &keyedCallback{mq: exts[0].Queue, received: time.Now()}
	if oc, ok := primitive.GetOrderlyCtx(ctx); ok {
		cb.mq = &oc.MQ // the client's own key for the queue
	}
	keys := make([]string, len(exts))
	tasks := make([]func(), len(exts))
	for i, e := range exts {
		d := &delivery{c: c, s: s}
		d.msg.fill(c.group, s.topic, e)
		d.msg.received = cb.received
		keys[i] = c.keyOf(s, &d.msg)
		tasks[i] = func() {
			defer cb.wg.Done()
			c.runKeyed(ctx, s, cb, d)
		}
	}
	cb.wg.Add(len(exts))
	s.queued.Add(int64(len(exts)))
	s.keyed.lanes.add(keys, tasks)
	cb.wg.Wait()
	switch {
	case cb.abandoned.Load():
		return releaseParked
	case cb.lost.Load():
		return retryInPlace
	}
	return acknowledge
}

// panickedKey is the key of messages whose key function panicked: they are
// kept in order among themselves rather than ordered with nothing.
const panickedKey = "\x00rmqkit: key function panicked"

// keyOf returns m's key, recovering a panic of the key function.
func (c *Consumer) keyOf(s *subscription, m *Message) (key string) {
	defer func() {
		if v := recover(); v != nil {
			c.cfg.logger.Error("rmqkit key function panicked; the message is ordered with the others whose key function failed",
				"group", c.group, "topic", s.topic, "msg_id", m.ID, "panic", fmt.Sprint(v))
			key = panickedKey
		}
	}()
	return s.keyed.key(m)
}

// runKeyed settles one message in its lane: it is tried until it succeeds
// or its tries are spent, then dead-lettered. It returns early, leaving the
// message unsettled (and its callback unacknowledged), when the consumer
// stops or the queue was given up.
func (c *Consumer) runKeyed(ctx context.Context, s *subscription, cb *keyedCallback, first *delivery) {
	e := first.msg.ext
	queued := true // counted in Stats.Queued until its first try starts
	defer func() {
		if queued {
			s.queued.Add(-1)
		}
	}()
	for try := 0; ; try++ {
		if !c.keyedMayStart(s, cb) {
			return
		}
		d := first
		if try > 0 {
			d = &delivery{c: c, s: s}
			d.msg.fill(c.group, s.topic, e)
			d.msg.received = cb.received
		}
		// Tries in place are redeliveries to the handler.
		d.msg.ReconsumeCount = int(e.ReconsumeTimes) + try
		switch c.keyedDo(cb, d, &queued) {
		case handled:
			return
		case abandoned:
			cb.abandoned.Store(true)
			return
		}
		if d.msg.ReconsumeCount >= s.maxRetries {
			c.deadLetterKeyed(ctx, s, cb, e, d.msg.ReconsumeCount+1)
			return
		}
		if !c.keyedPause(s, cb) {
			return
		}
	}
}

// keyedDo runs one try of d on the pool. Once a message of the callback
// has started, the others start even after Stop began ("late", as in
// intake.go), bounded by the hard stop, so that a graceful Stop finishes the
// callback instead of cutting it in two: a callback cut in two is
// redelivered whole, handled messages included.
func (c *Consumer) keyedDo(cb *keyedCallback, d *delivery, queued *bool) outcome {
	d.decided = &cb.decision
	late := cb.decision.Load() == runAll
	sctx := c.admit
	if late {
		sctx = c.handlerCtx
	}
	err := d.start(sctx)
	if err != nil && !late && c.admit.Err() != nil && decide(&cb.decision, false) {
		// Stop began while this one waited, and another of its callback
		// has started meanwhile.
		err = d.start(c.handlerCtx)
	}
	if *queued {
		*queued = false
		d.s.queued.Add(-1)
	}
	if err == nil {
		err = d.wait()
	}
	o, _ := d.finish(1, err)
	return o
}

// deadLetterKeyed sends an exhausted message to the dead-letter queue. A
// hand-back that fails is tried again after the retry delay, for as long
// as it takes: the key must not go on without it.
func (c *Consumer) deadLetterKeyed(ctx context.Context, s *subscription, cb *keyedCallback, e *primitive.MessageExt, tries int) {
	for {
		err := c.sendBack(ctx, s, e, true, 0)
		if err == nil {
			s.dlq.Add(1)
			c.cfg.logger.Warn("rmqkit message exhausted its retries; sent to the dead-letter queue and its key continues",
				"group", c.group, "topic", s.topic, "msg_id", e.MsgId, "tries", tries)
			return
		}
		c.cfg.logger.Error("rmqkit: cannot dead-letter an exhausted key-ordered message; its key waits and it is tried again",
			"group", c.group, "topic", s.topic, "msg_id", e.MsgId, "error", err)
		if !c.keyedPause(s, cb) || !c.keyedMayStart(s, cb) {
			return
		}
	}
}

// keyedPause waits the retry delay; false if the consumer began to stop.
func (c *Consumer) keyedPause(s *subscription, cb *keyedCallback) bool {
	t := time.NewTimer(s.keyed.retryDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.admit.Done():
		cb.abandoned.Store(true)
		return false
	}
}

// keyedMayStart reports whether the callback may start (or retry) its next
// message: not once one of its messages was abandoned (Stop) or its queue
// was given up. From then on the callback starts nothing more, even if the
// queue comes back or another of its messages has started: a later message
// of a key must never run after an earlier one was left out.
func (c *Consumer) keyedMayStart(s *subscription, cb *keyedCallback) bool {
	if cb.lost.Load() || cb.abandoned.Load() {
		return false
	}
	if h := c.handover; h != nil && cb.mq != nil && !s.keyed.held.has(h.queues, *cb.mq) {
		cb.lost.Store(true)
		return false
	}
	return true
}

// heldQueues caches the client's queue table for keyedMayStart: reading it
// walks every queue, too much for every message.
type heldQueues struct {
	mu  sync.Mutex
	at  time.Time
	set map[primitive.MessageQueue]bool
}

// heldRefresh is how stale the cache may be: how long a queue given up may
// still have messages started.
const heldRefresh = 250 * time.Millisecond

func (h *heldQueues) has(read func() map[primitive.MessageQueue]bool, mq primitive.MessageQueue) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == nil || time.Since(h.at) > heldRefresh {
		h.set, h.at = read(), time.Now()
	}
	return h.set[mq]
}
