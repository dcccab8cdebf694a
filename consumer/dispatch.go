package consumer

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/throttle"
)

// outcome of handing a message (or batch) to its handler.
type outcome int

const (
	handled   outcome = iota // handler returned nil
	failed                   // handler returned an error or panicked
	abandoned                // not handled because the consumer is stopping
)

// consume is the callback given to the client for every subscription. The
// client calls it from a goroutine of its own per message (or batch); it
// blocks until the handler has run, which is what bounds the client's
// prefetch buffer.
func (c *Consumer) consume(ctx context.Context, msgs ...*primitive.MessageExt) (rmq.ConsumeResult, error) {
	c.callbacks.Add(1)
	defer c.callbacks.Add(-1)
	c.inflight.add(msgs)
	defer c.inflight.remove(msgs)

	result := handled
	dlq := false
	suspend := time.Second // of the failing subscription, for orderly retries
	// A batch from the retry topic can mix topics: route each run of
	// messages to its own subscription.
	for i := 0; i < len(msgs); {
		j := i + 1
		for j < len(msgs) && msgs[j].Topic == msgs[i].Topic {
			j++
		}
		s := c.subs[msgs[i].Topic] // subs is read-only after Start
		var o outcome
		if s == nil {
			o = failed // should not happen: the client routes by topic
		} else {
			o = c.handle(s, msgs[i:j])
			if o == failed {
				suspend = s.suspend
				if s.exhausted(msgs[i:j]) {
					dlq = true
					s.dlq.Add(uint64(j - i))
				}
			}
		}
		result = max(result, o)
		i = j
	}

	switch result {
	case handled:
		return rmq.ConsumeSuccess, nil
	case abandoned:
		// Wait until the client has been shut down: it then discards this
		// result, and the messages stay unacknowledged for redelivery.
		c.parked.Add(1)
		<-c.released
		c.parked.Add(-1)
		return c.retry(ctx, false, suspend), nil
	default:
		return c.retry(ctx, dlq, suspend), nil
	}
}

// retry asks the client to redeliver. Concurrent mode goes through the
// retry topic (or straight to the dead-letter queue when dlq is set);
// orderly mode suspends the queue and retries in place, because
// ConsumeRetryLater would skip the message there.
func (c *Consumer) retry(ctx context.Context, dlq bool, suspend time.Duration) rmq.ConsumeResult {
	if octx, ok := primitive.GetOrderlyCtx(ctx); ok {
		octx.SuspendCurrentQueueTimeMillis = int(suspend / time.Millisecond)
		return rmq.SuspendCurrentQueueAMoment
	}
	if dlq {
		if cctx, ok := primitive.GetConcurrentlyCtx(ctx); ok {
			cctx.DelayLevelWhenNextConsume = -1 // the broker dead-letters at once
		}
	}
	return rmq.ConsumeRetryLater
}

// exhausted reports whether a failed message has used up its retries.
func (s *subscription) exhausted(msgs []*primitive.MessageExt) bool {
	for _, m := range msgs {
		if int(m.ReconsumeTimes) >= s.maxRetries {
			return true
		}
	}
	return false
}

// delivery carries one hand-over to a pool worker; a single allocation
// holds the message and the bound task.
type delivery struct {
	c    *Consumer
	s    *subscription
	msg  Message
	msgs []*Message
	ran  bool
	err  error
}

func (c *Consumer) handle(s *subscription, exts []*primitive.MessageExt) outcome {
	s.received.Add(uint64(len(exts)))
	now := time.Now()
	d := &delivery{c: c, s: s}
	if s.batch != nil {
		d.msgs = make([]*Message, len(exts))
		for i, e := range exts {
			d.msgs[i] = newMessage(c.group, e)
			d.msgs[i].received = now
		}
		return d.do(len(exts))
	}
	// Without a batch handler, messages of one callback run one by one.
	result := handled
	for i, e := range exts {
		if i > 0 {
			d = &delivery{c: c, s: s}
		}
		d.msg.fill(c.group, e)
		d.msg.received = now
		result = max(result, d.do(1))
	}
	return result
}

func (d *delivery) do(n int) outcome {
	s := d.s
	// Rate limits, narrowest first (limits.go). A message held here is
	// neither failed nor retried; one still held when Stop begins is
	// abandoned like one that never got a worker.
	if err := throttle.WaitAllN(d.c.admit, n, s.limiter, d.c.glim.lim, d.c.cfg.process); err != nil {
		s.abandoned.Add(uint64(n))
		return abandoned
	}
	d.setTimes(time.Now(), time.Time{})
	err := s.pool.Do(d.c.admit, d.run)
	if !d.ran {
		// Stop began before a worker was free.
		s.abandoned.Add(uint64(n))
		return abandoned
	}
	if err == nil {
		s.succeeded.Add(uint64(n))
		return handled
	}
	if errors.Is(err, errAbandon) {
		s.abandoned.Add(uint64(n))
		return abandoned
	}
	s.failed.Add(uint64(n))
	d.c.cfg.logger.Warn("rmqkit handler failed; message will be redelivered",
		"group", d.c.group, "topic", s.topic, "msg_id", d.id(), "reconsume", d.reconsume(), "error", err)
	return failed
}

var errAbandon = errors.New("consumer stopping")

// run executes on a pool worker.
func (d *delivery) run(context.Context) error {
	c := d.c
	// Counted before the check so that Stop, which cancels admit and then
	// waits for active to reach zero, never misses a handler.
	c.active.Add(1)
	defer c.active.Add(-1)
	d.ran = true
	d.setTimes(time.Time{}, time.Now())
	if c.admit.Err() != nil {
		return errAbandon
	}
	ctx := c.handlerCtx
	if c.cfg.handlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.handlerTimeout)
		defer cancel()
	}
	var err error
	if d.s.batch != nil {
		err = safeBatch(ctx, d.s.batch, d.msgs)
	} else {
		err = d.s.handler(ctx, &d.msg)
	}
	if err != nil && c.handlerCtx.Err() != nil {
		// Hard stop: the handler was cut short; its message is redelivered
		// after the restart rather than sent to the retry topic.
		return errAbandon
	}
	return err
}

func safeBatch(ctx context.Context, h BatchHandler, msgs []*Message) error { return h(ctx, msgs) }

// setTimes records the admitted and started times; zero values are left.
func (d *delivery) setTimes(admitted, started time.Time) {
	set := func(m *Message) {
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
// being handled. It is sharded because every callback adds and removes its
// messages, and thousands of callbacks run at once under a backlog: one
// mutex made them queue behind each other.
type inflight struct {
	shards [inflightShards]inflightShard
}

const inflightShards = 32

type inflightShard struct {
	mu sync.Mutex
	m  map[*primitive.MessageExt]struct{}
	_  [40]byte // keep shards on separate cache lines
}

func (f *inflight) init() {
	for i := range f.shards {
		f.shards[i].m = make(map[*primitive.MessageExt]struct{})
	}
}

func (f *inflight) shard(m *primitive.MessageExt) *inflightShard {
	return &f.shards[uint64(m.QueueOffset)%inflightShards]
}

func (f *inflight) add(msgs []*primitive.MessageExt) {
	for _, m := range msgs {
		sh := f.shard(m)
		sh.mu.Lock()
		sh.m[m] = struct{}{}
		sh.mu.Unlock()
	}
}

func (f *inflight) remove(msgs []*primitive.MessageExt) {
	for _, m := range msgs {
		sh := f.shard(m)
		sh.mu.Lock()
		delete(sh.m, m)
		sh.mu.Unlock()
	}
}

// each calls fn for every held message, one shard locked at a time.
func (f *inflight) each(fn func(*primitive.MessageExt)) {
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for m := range sh.m {
			fn(m)
		}
		sh.mu.Unlock()
	}
}

// renewLeases keeps the client's consume-start stamp of every held message
// fresh. The client sends a message whose stamp is older than
// ConsumeTimeout back to the broker while it is still being handled, which
// would deliver it twice; rmqkit bounds handling time itself.
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
