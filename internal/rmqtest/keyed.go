package rmqtest

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// ProduceKeyed sends msgs as an orderly producer would: every message with
// a ShardKey goes to the queue its key hashes to (FNV-1a over the topic's
// queues, as the client's hash selector does), and each queue gets its
// messages in the order of msgs, so a key's messages are stored in order.
// Messages without a ShardKey are spread over the queues. Queues are
// written in parallel, in batches.
func (c *Cluster) ProduceKeyed(t testing.TB, topic string, msgs []Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := admin.New([]string{c.NameServer})
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	route, err := adm.TopicRoute(ctx, topic)
	_ = adm.Close()
	if err != nil {
		t.Fatalf("route of %s: %v", topic, err)
	}
	var mqs []*primitive.MessageQueue
	for _, q := range route.MessageQueues() {
		mqs = append(mqs, &primitive.MessageQueue{Topic: topic, BrokerName: q.BrokerName, QueueId: q.QueueID})
	}
	slices.SortFunc(mqs, func(a, b *primitive.MessageQueue) int {
		if a.BrokerName != b.BrokerName {
			if a.BrokerName < b.BrokerName {
				return -1
			}
			return 1
		}
		return a.QueueId - b.QueueId
	})
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.NameServer})),
		producer.WithGroupName(Name(t, "P")),
		producer.WithInstanceName(Name(t, "pk")),
		producer.WithQueueSelector(producer.NewManualQueueSelector()),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer start: %v", err)
	}
	defer func() { _ = p.Shutdown() }()

	perQueue := make([][]*primitive.Message, len(mqs))
	for i, m := range msgs {
		q := i % len(mqs)
		if m.ShardKey != "" {
			q = KeyQueue(m.ShardKey, len(mqs))
		}
		pm := m.message(topic)
		pm.Queue = mqs[q]
		perQueue[q] = append(perQueue[q], pm)
	}
	const batch = 64
	var wg sync.WaitGroup
	errs := make(chan error, len(mqs))
	for _, qm := range perQueue {
		wg.Go(func() {
			for len(qm) > 0 {
				n := min(batch, len(qm))
				if err := (&Producer{t: t, p: p}).sendOne(qm[:n]...); err != nil {
					errs <- err
					return
				}
				qm = qm[n:]
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("send to %s: %v", topic, err)
	}
}

// KeyQueue returns the index, among the topic's queues sorted by broker
// and id, of the queue ProduceKeyed sends key to.
func KeyQueue(key string, queues int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(queues))
}
