package consumer

import (
	"context"
	"strings"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// All subscriptions of a group share its retry queue (%RETRY%group), and
// the client stops pulling a queue whose prefetch share is full: one
// subscription whose redeliveries hang would hold back every other
// subscription's retries. So a redelivery that cannot start within
// retryWait (intake.go) is not held: rmqkit hands it back to the broker
// with a delay (deferLevel), and the retry queue moves on. A deferral is not a try: rmqkit counts it per message
// and raises that message's budget by as much (in memory: a restart or
// another instance forgets it, and the message then has fewer tries left).

// deferLevel is the broker's delay level for a deferred redelivery: 30 s.
const deferLevel = 4

// maxDeferred bounds the deferral counts kept in memory.
const maxDeferred = 100_000

// retryTopicPrefix starts the name of every group's retry topic.
const retryTopicPrefix = "%RETRY%"

// deferrals counts, per message id, the times rmqkit deferred a message.
type deferrals struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *deferrals) get(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[id]
}

func (d *deferrals) add(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = make(map[string]int)
	}
	if _, ok := d.n[id]; !ok && len(d.n) >= maxDeferred {
		return // full: the message keeps its plain budget
	}
	d.n[id]++
}

func (d *deferrals) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.n, id)
}

// fromRetryTopic reports whether the client pulled m from a retry queue.
func fromRetryTopic(m *primitive.MessageExt) bool {
	return m.Queue != nil && strings.HasPrefix(m.Queue.Topic, retryTopicPrefix)
}

// deferMsg hands a redelivery back to the broker with a delay, untried,
// and reports whether it did.
func (c *Consumer) deferMsg(ctx context.Context, s *subscription, m *primitive.MessageExt) bool {
	sb := c.sendBackOf(m)
	sb.DelayLevel = deferLevel
	sb.MaxReconsumeTimes = int(m.ReconsumeTimes) + 2 // never the dead-letter queue: a deferral is not a try
	if err := c.backer.SendMessageBack(ctx, sb); err != nil {
		return false // hold it as usual
	}
	c.deferred.add(m.MsgId)
	s.deferred.Add(1)
	return true
}
