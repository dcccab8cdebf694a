package consumer

import (
	"context"
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

	owned    map[primitive.MessageQueue]bool
	pending  map[primitive.MessageQueue]bool // given up, not unlocked yet
	clientID string
}

func newHandover(c *Consumer, queues func() map[primitive.MessageQueue]bool, rebalance func()) *handover {
	return &handover{
		c:         c,
		queues:    queues,
		rebalance: rebalance,
		every:     time.Second,
		running:   make(map[primitive.MessageQueue]int),
		pending:   make(map[primitive.MessageQueue]bool),
	}
}

// enter and leave bracket an orderly callback of mq.
func (h *handover) enter(mq *primitive.MessageQueue) {
	if mq == nil {
		return
	}
	h.mu.Lock()
	h.running[*mq]++
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

// run checks every h.every until done is closed.
func (h *handover) run(done <-chan struct{}) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-done:
			return
		case <-t.C:
			h.check()
			if tick == 3 || tick == 6 || tick == 10 {
				h.rebalance()
			}
		}
	}
}

// check notes the queues given up since the last check and unlocks those
// whose callback has returned.
func (h *handover) check() {
	now := h.queues()
	for mq := range h.owned {
		if !now[mq] {
			h.pending[mq] = true
		}
	}
	h.owned = now
	var ready []admin.MessageQueue
	h.mu.Lock()
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.unlock(ctx, ready); err != nil {
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
