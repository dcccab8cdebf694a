package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/pool"
)

// Batch intake. A concurrent consumer takes messages from the client in
// callbacks of up to intakeBatch, and each callback fans its messages out
// to the subscription's pool, one delivery per message (or per batch of a
// batch handler), then waits for them all and settles each failure on its
// own. The client starts a goroutine per callback: one per 32 messages
// instead of one per message, which is what a subscription's held backlog
// (a hung neighbour's prefetch) used to cost in parked goroutines, stack
// growth and GC scanning.
//
// The client acknowledges a callback as a whole, so a callback whose
// messages were partly handled when Stop began would be redelivered whole,
// handled messages included. Two rules keep that from happening:
//   - a subscription's callbacks start their messages one callback at a
//     time (the intake), so at most one callback per subscription is partly
//     started at any moment;
//   - once a callback has started a message, it starts the rest even after
//     Stop began ("late" starts, bounded by the hard stop), so Stop waits
//     for it instead of cutting it in two.
// A callback that started nothing when Stop begins is parked whole.
//
// Lanes. The deliveries of a callback of first deliveries run on
// pool.Lanes: the callback starts one worker, and a worker whose handler
// returns takes the callback's next delivery itself, on the same slot,
// after its rate limits. Only when deliveries wait unclaimed for
// pool.SpreadAfter (100 µs) do more workers join, and from then on a
// worker starting a handler while deliveries are left and no other worker
// is free to take them asks for one more. A callback of no-op handlers
// costs one hand-off instead of one per message, while handlers that
// block still run at once, up to the pool's size, SpreadAfter late. The
// pool's bounds hold as before: a shrink ends workers as their handlers
// return, another caller waiting for a shared pool gets the next slot,
// and every handler starts after its limits. Redeliveries (which may be
// deferred) and single messages start one by one.

// intakeBatch is the client's callback size for concurrent consumers: its
// pull batch, so that one pull is one callback.
const intakeBatch = 32

// slowCallback is how long a callback on lanes may take before the
// subscription's next one spreads over its pool at once (pool.Lanes.Spread):
// ten times pool.SpreadAfter, so that a callback of fast handlers that was
// only descheduled a while rarely counts (with SpreadAfter itself, one
// callback in twelve of a no-op handler spread for nothing, and its
// hand-offs cost what spreading late saves). A pool grown from 2 to 16
// under blocking handlers runs 16 at once 0.21 ms after the resize with
// this, 0.57 ms without (BenchmarkResizeLatency).
const slowCallback = 10 * pool.SpreadAfter

// retryWait bounds how long a redelivery waits for its subscription's
// intake and a worker before it is deferred (retrydefer.go): the group's
// retry queue is shared, and a subscription whose redeliveries hang must
// not hold it.
const retryWait = time.Second

// enterIntake takes s's intake, waiting until stop is closed, or at most
// wait when wait > 0. It reports whether it took it.
func (s *subscription) enterIntake(stop <-chan struct{}, wait time.Duration) bool {
	select {
	case s.intake <- struct{}{}:
		return true
	default:
	}
	var expired <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case s.intake <- struct{}{}:
		return true
	case <-stop:
	case <-expired:
	}
	return false
}

func (s *subscription) leaveIntake() { <-s.intake }

// fanOut runs one callback's messages of a concurrent subscription on its
// pool, all at once up to the pool's free workers, and settles each
// failure.
func (c *Consumer) fanOut(ctx context.Context, s *subscription, exts []*primitive.MessageExt) verdict {
	// A redelivery that cannot start within retryWait is deferred, never
	// held (retrydefer.go). Batch handlers' redeliveries are held: a batch
	// is not split between deferral and handling.
	redelivery := s.batch == nil && c.backer != nil && fromRetryTopic(exts[0])
	if !redelivery && len(exts) > 1 {
		return c.fanOutLanes(ctx, s, exts)
	}
	ds := c.deliveries(s, exts)
	s.queued.Add(int64(len(exts)))
	var wait time.Duration
	if redelivery {
		wait = retryWait
	}
	entered := s.enterIntake(c.admit.Done(), wait)
	deferring := redelivery && !entered && c.admit.Err() == nil
	if !entered && !deferring {
		// Stop began before any of these messages started: the callback is
		// parked whole and its messages come again after the restart.
		s.queued.Add(-int64(len(exts)))
		s.abandoned.Add(uint64(len(exts)))
		return releaseParked
	}

	began, stopped := false, false
	for i := range ds {
		d := &ds[i]
		n := d.count()
		if stopped {
			d.err = errAbandon
			s.queued.Add(-int64(n))
			continue
		}
		if deferring && c.deferMsg(ctx, s, d.msg.ext) {
			d.deferredOut = true
			s.queued.Add(-int64(n))
			continue
		}
		sctx := c.admit
		if began { // a late start: the callback runs whole (mayRun)
			sctx = c.handlerCtx
		}
		if redelivery && !deferring {
			tctx, cancel := context.WithTimeout(sctx, retryWait)
			d.err = d.start(tctx)
			cancel()
			if errors.Is(d.err, context.DeadlineExceeded) && sctx.Err() == nil {
				// No worker within retryWait: defer this one and the
				// rest; one that cannot be deferred is held as usual.
				deferring = true
				if c.deferMsg(ctx, s, d.msg.ext) {
					d.deferredOut = true
					s.queued.Add(-int64(n))
					continue
				}
				d.err = d.start(sctx)
			}
		} else {
			d.err = d.start(sctx)
		}
		s.queued.Add(-int64(n))
		switch {
		case d.err == nil:
			began = true
		case !began && c.admit.Err() != nil:
			// Stop began before this callback started anything.
			stopped = true
		}
	}
	if entered {
		s.leaveIntake()
	}
	return c.collect(ctx, s, exts, ds, redelivery)
}

// fanOutLanes is fanOut for a callback of first deliveries: its messages
// run on lanes of the subscription's pool (pool.Lanes), a worker that
// finishes one taking the next itself, so that a callback costs a few
// hand-offs between goroutines instead of one per message. The rules are
// fanOut's: one callback of the subscription starts its messages at a
// time, the first start waits for a worker under admit (a callback that
// started nothing when Stop begins is parked whole), and the others are
// late starts, bounded by the hard stop; each message passes the rate
// limits on its worker before it starts.
func (c *Consumer) fanOutLanes(ctx context.Context, s *subscription, exts []*primitive.MessageExt) verdict {
	f := &fan{c: c, s: s, ds: c.deliveries(s, exts)}
	ds := f.ds
	s.queued.Add(int64(len(exts)))
	if !s.enterIntake(c.admit.Done(), 0) {
		s.queued.Add(-int64(len(exts)))
		s.abandoned.Add(uint64(len(exts)))
		return releaseParked
	}
	f.lanes.Init(s.pool, len(ds), f, c.handlerCtx)
	if s.slowLanes.Load() {
		f.lanes.Spread()
	}
	for !f.began {
		i, err := f.lanes.Start(c.admit)
		if i < 0 {
			break
		}
		ds[i].err = err
		switch {
		case err == nil:
			f.began = true
		case c.admit.Err() != nil:
			// Stop began before this callback started anything.
			for {
				i, st := f.lanes.Claim()
				if i < 0 {
					break
				}
				ds[i].err = errAbandon
				*st = pool.Started{}
				f.lanes.Claimed()
			}
		}
	}
	var begun time.Time
	if f.began {
		begun = time.Now()
		f.lanes.Serve(c.handlerCtx)
	}
	s.leaveIntake()
	v := c.collect(ctx, s, exts, ds, false)
	if f.began {
		// A callback that outlasted slowCallback had handlers that block:
		// the subscription's next callback spreads over the pool at once
		// rather than after its own SpreadAfter.
		s.slowLanes.Store(time.Since(begun) > slowCallback)
	}
	return v
}

// fan is one callback's deliveries as the tasks of pool.Lanes.
type fan struct {
	c     *Consumer
	s     *subscription
	ds    []delivery
	lanes pool.Lanes
	began bool // a message started; the caller's later starts are late
}

// Task is the pool.LaneSource: delivery i, about to pass the gate.
func (f *fan) Task(i int, byLane bool) (pool.Runner, *pool.Started) {
	d := &f.ds[i]
	d.byLane = byLane
	d.prepare()
	f.s.queued.Add(-int64(d.count()))
	return d, &d.st
}

// collect waits for the started deliveries of a callback and settles each
// failure.
func (c *Consumer) collect(ctx context.Context, s *subscription, exts []*primitive.MessageExt, ds []delivery, redelivery bool) verdict {
	parked := false
	var failures []int // indexes into exts
	at := 0
	for i := range ds {
		d := &ds[i]
		n := d.count()
		first := at
		at += n
		if d.deferredOut {
			continue
		}
		if d.err == nil {
			d.err = d.wait()
		}
		switch o, idx := d.finish(n, d.err); o {
		case handled:
			if redelivery {
				c.deferred.forget(d.msg.ID)
			}
		case abandoned:
			parked = true
		case failed:
			if idx == nil {
				for k := 0; k < n; k++ {
					failures = append(failures, first+k)
				}
			} else {
				for _, k := range idx {
					failures = append(failures, first+k)
				}
			}
		}
	}
	if parked {
		// The callback comes again whole after the restart: its failed
		// messages with it, so they are not handed back now.
		return releaseParked
	}
	for _, k := range failures {
		if v := c.settle(ctx, s, exts[k], false); v != acknowledge {
			return v
		}
	}
	return acknowledge
}

// deliveries prepares one delivery per message, or per batch of a batch
// handler, in as few allocations as the shape allows.
func (c *Consumer) deliveries(s *subscription, exts []*primitive.MessageExt) []delivery {
	now := time.Now()
	if s.batch == nil {
		ds := make([]delivery, len(exts))
		for i, e := range exts {
			d := &ds[i]
			d.c, d.s = c, s
			d.decided = &ds[0].decision
			d.msg.fill(c.group, s.topic, e)
			d.msg.received = now
		}
		return ds
	}
	size := max(s.batchSize, 1)
	msgs := make([]Message, len(exts))
	ptrs := make([]*Message, len(exts))
	ds := make([]delivery, (len(exts)+size-1)/size)
	for i, e := range exts {
		msgs[i].fill(c.group, s.topic, e)
		msgs[i].received = now
		ptrs[i] = &msgs[i]
	}
	for i := range ds {
		d := &ds[i]
		d.c, d.s, d.decided = c, s, &ds[0].decision
		d.msgs = ptrs[i*size : min((i+1)*size, len(exts))]
	}
	return ds
}
