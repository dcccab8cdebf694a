package consumer

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// A queue given up at a rebalance is unlocked only once its running orderly
// callback has returned: until then its new owner cannot lock it, so the
// two never run the queue's messages at once.
func TestAGivenUpQueueIsUnlockedOnlyAfterItsCallbackReturns(t *testing.T) {
	q := primitive.MessageQueue{Topic: "orders", BrokerName: "broker-a", QueueId: 3}
	held := map[primitive.MessageQueue]bool{q: true}
	h, unlocked := recordingHandover(held)

	h.check(nil) // owned
	h.enter(&q)  // a callback of q runs
	delete(held, q)
	h.check(nil)
	h.check(nil)
	if len(*unlocked) > 0 {
		t.Fatalf("unlocked %v while its callback ran", *unlocked)
	}
	h.leave(&q)
	h.check(nil)
	want := admin.MessageQueue{Topic: q.Topic, BrokerName: q.BrokerName, QueueID: q.QueueId}
	if !slices.Equal(*unlocked, []admin.MessageQueue{want}) {
		t.Fatalf("unlocked %v after the callback returned, want [%v]", *unlocked, want)
	}
	h.check(nil)
	if len(*unlocked) != 1 {
		t.Fatalf("unlocked %v, want the queue once", *unlocked)
	}
}

// A queue taken back before its callback returned keeps its lock.
func TestAQueueTakenBackBeforeItsUnlockKeepsItsLock(t *testing.T) {
	q := primitive.MessageQueue{Topic: "orders", BrokerName: "broker-a", QueueId: 3}
	held := map[primitive.MessageQueue]bool{q: true}
	h, unlocked := recordingHandover(held)
	h.check(nil)
	h.enter(&q)
	delete(held, q)
	h.check(nil)
	held[q] = true // back at the next rebalance
	h.leave(&q)
	h.check(nil)
	h.check(nil)
	if len(*unlocked) > 0 {
		t.Fatalf("unlocked %v, a queue this instance holds again", *unlocked)
	}
}

// recordingHandover is a hand-over of an instance holding the queues in
// held (read at each check), which records the queues it unlocks.
func recordingHandover(held map[primitive.MessageQueue]bool) (*handover, *[]admin.MessageQueue) {
	h := newHandover(nil, func() map[primitive.MessageQueue]bool { return maps.Clone(held) }, func() {}, nil)
	unlocked := new([]admin.MessageQueue)
	h.release = func(_ context.Context, mqs []admin.MessageQueue) error {
		*unlocked = append(*unlocked, mqs...)
		return nil
	}
	return h, unlocked
}
