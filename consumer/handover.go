package consumer

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// handover releases the broker's orderly locks on the queues this instance
// gives up at a rebalance. rocketmq-client-go never unlocks such a queue
// (removeUnnecessaryMessageQueue has a "TODO orderly"), so its new owner
// could not lock it until the broker's lock expired (60 s), and the queue sat
// unconsumed that long. handover watches the client's queue table, waits
// until the given-up queue's running callback has returned (so two owners
// never run at once), then sends UNLOCK_BATCH_MQ with this client's id.
type handover struct {
	c      *Consumer
	queues func() map[primitive.MessageQueue]bool // the client's queues now
	// rebalance makes the client rebalance now. A newcomer's first
	// rebalance finds the queues it is given still locked by their old
	// owner, which gives them up only at its own rebalance; without a
	// retry the newcomer would wait for its next one, 20 s later.
	rebalance func()
	every     time.Duration

	mu      sync.Mutex
	running map[primitive.MessageQueue]int // orderly callbacks in rmqkit, per queue
	// seen are the queues with a callback since the last check: owned,
	// even if the check missed them in the client's table.
	seen map[primitive.MessageQueue]bool

	owned    map[primitive.MessageQueue]bool
	pending  map[primitive.MessageQueue]bool // given up, not unlocked yet
	clientID string

	// In the first startFor, instances starting together rebalance the
	// queues between them faster than the client's table can be read:
	// the first takes every queue, locks it and gives half of it up
	// within a few milliseconds. So every queue of the subscribed topics
	// (all) that the client has not held for two checks in a row (absent)
	// is unlocked then; the broker ignores an unlock of a queue another
	// client locked, or none did.
	all    func(ctx context.Context) []primitive.MessageQueue
	absent map[primitive.MessageQueue]bool

	// release unlocks queues on their brokers: h.unlock, a recorder in
	// the unit tests.
	release func(ctx context.Context, mqs []admin.MessageQueue) error
}

func newHandover(c *Consumer, queues func() map[primitive.MessageQueue]bool, rebalance func(), all func(ctx context.Context) []primitive.MessageQueue) *handover {
	h := &handover{
		c:         c,
		queues:    queues,
		all:       all,
		absent:    make(map[primitive.MessageQueue]bool),
		rebalance: rebalance,
		every:     time.Second,
		running:   make(map[primitive.MessageQueue]int),
		seen:      make(map[primitive.MessageQueue]bool),
		pending:   make(map[primitive.MessageQueue]bool),
	}
	h.release = h.unlock
	return h
}

// enter and leave bracket an orderly callback of mq.
func (h *handover) enter(mq *primitive.MessageQueue) {
	if mq == nil {
		return
	}
	h.mu.Lock()
	h.running[*mq]++
	h.seen[*mq] = true
	h.mu.Unlock()
}

func (h *handover) leave(mq *primitive.MessageQueue) {
	if mq == nil {
		return
	}
	h.mu.Lock()
	if h.running[*mq]--; h.running[*mq] <= 0 {
		delete(h.running, *mq)
	}
	h.mu.Unlock()
}

// run checks at once, then every startEvery for the first startFor (when
// instances starting together rebalance the queues between them within
// their first second), then every h.every, until done is closed. The
// client is nudged to rebalance 3, 6 and 10 s after the start.
func (h *handover) run(done <-chan struct{}) {
	begin := time.Now()
	var candidates []primitive.MessageQueue
	if h.all != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		candidates = h.all(ctx)
		cancel()
	}
	h.check(candidates)
	nudges := []time.Duration{3 * time.Second, 6 * time.Second, 10 * time.Second}
	t := time.NewTimer(startEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			since := time.Since(begin)
			if since >= startFor {
				candidates = nil
			}
			h.check(candidates)
			if len(nudges) > 0 && since >= nudges[0] {
				nudges = nudges[1:]
				h.rebalance()
			}
			next := h.every
			if since < startFor {
				next = startEvery
			}
			t.Reset(next)
		}
	}
}

// The hand-over's checks in its first seconds.
const (
	startEvery = 100 * time.Millisecond
	startFor   = 5 * time.Second
)

// check notes the queues given up since the last check, and the
// candidates not held for two checks in a row, and unlocks those whose
// callback has returned.
func (h *handover) check(candidates []primitive.MessageQueue) {
	now := h.queues()
	for mq := range h.owned {
		if !now[mq] {
			h.pending[mq] = true
		}
	}
	for _, mq := range candidates {
		switch {
		case now[mq]:
			delete(h.absent, mq)
		case h.absent[mq]:
			h.pending[mq] = true
			delete(h.absent, mq)
		default:
			h.absent[mq] = true
		}
	}
	h.owned = now
	var ready []admin.MessageQueue
	h.mu.Lock()
	for mq := range h.seen {
		if !now[mq] {
			h.pending[mq] = true
		}
	}
	clear(h.seen)
	for mq := range h.pending {
		switch {
		case now[mq]: // taken back before it was unlocked
			delete(h.pending, mq)
		case h.running[mq] == 0:
			ready = append(ready, admin.MessageQueue{Topic: mq.Topic, BrokerName: mq.BrokerName, QueueID: mq.QueueId})
		}
	}
	h.mu.Unlock()
	if len(ready) == 0 {
		return
	}
	// Taken (back) since the table was read: keep those locks.
	again := h.queues()
	ready = slices.DeleteFunc(ready, func(q admin.MessageQueue) bool {
		return again[primitive.MessageQueue{Topic: q.Topic, BrokerName: q.BrokerName, QueueId: q.QueueID}]
	})
	if len(ready) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.release(ctx, ready); err != nil {
		h.c.cfg.logger.Warn("rmqkit orderly hand-over: cannot unlock queues given up; their new owner waits for the broker's lock to expire",
			"group", h.c.group, "queues", len(ready), "error", err)
	}
	for _, q := range ready {
		delete(h.pending, primitive.MessageQueue{Topic: q.Topic, BrokerName: q.BrokerName, QueueId: q.QueueID})
	}
}

// unlock sends one UNLOCK_BATCH_MQ per broker.
func (h *handover) unlock(ctx context.Context, mqs []admin.MessageQueue) error {
	id, err := h.selfID(ctx)
	if err != nil {
		return err
	}
	byBroker := make(map[string][]admin.MessageQueue)
	for _, q := range mqs {
		byBroker[q.BrokerName] = append(byBroker[q.BrokerName], q)
	}
	for _, qs := range byBroker {
		if err := h.c.adm.UnlockQueues(ctx, h.c.brokerGroup(), id, qs); err != nil {
			return err
		}
	}
	h.c.cfg.logger.Info("rmqkit orderly hand-over: unlocked the queues given up at a rebalance", "group", h.c.group, "queues", len(mqs))
	return nil
}

// selfID is this client's id as the broker knows it (IP@instance), read
// once from the group's connection list.
func (h *handover) selfID(ctx context.Context) (string, error) {
	if h.clientID != "" {
		return h.clientID, nil
	}
	conns, err := h.c.adm.ConsumerConnections(ctx, h.c.brokerGroup())
	if err != nil {
		return "", err
	}
	for _, cn := range conns {
		if strings.HasSuffix(cn.ClientID, "@"+h.c.cfg.instance) {
			h.clientID = cn.ClientID
			return cn.ClientID, nil
		}
	}
	return "", admin.ErrNotFound
}
