package migrate

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"
)

func queues(n int) []*primitive.MessageQueue {
	mqs := make([]*primitive.MessageQueue, n)
	for i := range mqs {
		mqs[i] = &primitive.MessageQueue{Topic: "T", BrokerName: "b", QueueId: i}
	}
	return mqs
}

// Every message of a key goes to one queue, the one the client's hash
// selector picks; keys spread over all queues.
func TestKeySelectorKeepsAKeyOnOneQueue(t *testing.T) {
	s := newKeyQueueSelector()
	client := rmqproducer.NewHashQueueSelector()
	mqs := queues(8)
	used := map[int]int{}
	for i := range 200 {
		k := fmt.Sprintf("key-%d", i)
		q := s.Select(keyed(k), mqs, "")
		if c := client.Select(keyed(k), mqs, ""); c != q {
			t.Fatalf("key %q: queue %d, the client's hash selector picks %d", k, q.QueueId, c.QueueId)
		}
		for range 5 {
			if again := s.Select(keyed(k), mqs, "b"); again != q {
				t.Fatalf("key %q: queue %d, then %d", k, q.QueueId, again.QueueId)
			}
		}
		used[q.QueueId]++
	}
	if len(used) != len(mqs) {
		t.Errorf("200 keys used queues %v of 8", used)
	}
}

// Messages without a key go round-robin, not to one queue nor at random.
func TestKeySelectorSendsKeylessRoundRobin(t *testing.T) {
	s := newKeyQueueSelector()
	mqs := queues(4)
	prev := s.Select(keyed(""), mqs, "").QueueId
	for range 20 {
		q := s.Select(keyed(""), mqs, "").QueueId
		if q != (prev+1)%len(mqs) {
			t.Fatalf("keyless: queue %d after %d, want round-robin", q, prev)
		}
		prev = q
	}
}

// A batch, which the client hands to the selector as one message without
// the properties of its messages, goes to the queue of its first message's
// key.
func TestKeySelectorRoutesABatchByItsFirstKey(t *testing.T) {
	s := newKeyQueueSelector()
	mqs := queues(8)
	for i := range 50 {
		k := fmt.Sprintf("k%d", i)
		first := keyed(k)
		first.WithProperty("other", "x")
		batch := &primitive.Message{Topic: "T", Batch: true,
			Body: rmqproducer.MarshalMessageBatch(first, keyed("another"), keyed(""))}
		if got, want := s.Select(batch, mqs, ""), s.Select(keyed(k), mqs, ""); got != want {
			t.Fatalf("batch with first key %q: queue %d, want %d", k, got.QueueId, want.QueueId)
		}
	}
	// Keyless or malformed batches go round-robin and do not panic.
	good := rmqproducer.MarshalMessageBatch(keyed("k"))
	for n := range len(good) {
		if k := batchKey(good[:n]); k != "" {
			t.Fatalf("truncated to %d bytes: key %q", n, k)
		}
	}
	if k := batchKey(good); k != "k" {
		t.Fatalf("batchKey = %q, want k", k)
	}
	if k := batchKey(rmqproducer.MarshalMessageBatch(keyed(""), keyed("k"))); k != "" {
		t.Fatalf("keyless first message: key %q", k)
	}
}

// nsSender prefixes topics in place, as the client does with a namespace,
// and records the topic it saw.
type nsSender struct {
	ns   string
	fail error
	seen []string
}

func (f *nsSender) SendSync(_ context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	for _, m := range msgs {
		m.Topic = f.ns + "%" + m.Topic
		f.seen = append(f.seen, m.Topic)
	}
	if f.fail != nil {
		return nil, f.fail
	}
	return &primitive.SendResult{Status: primitive.SendOK}, nil
}

func (f *nsSender) Shutdown() error { return nil }

// The client prefixes a message's topic with its namespace in place; the
// Producer puts the plain topic back, so a fallback to the other cluster
// and a caller's retry send to the right topic.
func TestSendRestoresTheTopicTheClientPrefixed(t *testing.T) {
	old, nw := &nsSender{ns: "a", fail: errors.New("down")}, &nsSender{ns: "b"}
	p := newProducer([2]sender{old, nw}, producerConfig{fallback: true, logger: quietLogger()})
	m := primitive.NewMessage("T", nil)
	for range 2 {
		if _, err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if m.Topic != "T" {
			t.Fatalf("topic after send: %q", m.Topic)
		}
	}
	if fmt.Sprint(old.seen, nw.seen) != "[a%T a%T] [b%T b%T]" {
		t.Fatalf("old cluster saw %v, new cluster saw %v", old.seen, nw.seen)
	}
}
