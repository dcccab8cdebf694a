//go:build integration

package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// Key-ordered benchmark: one backlog per key distribution on 8 queues,
// 1,000 keys, each key's messages in its queue (hashed, as an orderly
// producer sends them), a 2 ms handler and a pool of 64.
const (
	keyedBacklog = 30_000
	keyedKeys    = 1000
	keyedWork    = 2 * time.Millisecond
	keyedPool    = 64
)

var keyedBacklogs struct {
	mu     sync.Mutex
	topics map[string]string // by distribution
}

// keyedBacklogTopic produces the backlog of a distribution once per
// process. skewed gives one hot key a fifth of the messages and spreads the
// rest over the other keys.
func keyedBacklogTopic(b *testing.B, cl *rmqtest.Cluster, skewed bool) string {
	keyedBacklogs.mu.Lock()
	defer keyedBacklogs.mu.Unlock()
	dist := fmt.Sprint(skewed)
	if t, ok := keyedBacklogs.topics[dist]; ok {
		return t
	}
	topic := cl.NewTopic(b, rmqtest.Queues(8))
	msgs := make([]rmqtest.Msg, keyedBacklog)
	for i := range msgs {
		k := i % keyedKeys
		if skewed {
			k = 0
			if i%5 != 0 {
				k = 1 + i%(keyedKeys-1)
			}
		}
		key := fmt.Sprintf("key%04d", k)
		msgs[i] = rmqtest.Msg{ID: fmt.Sprintf("%s-%06d", key, i), ShardKey: key}
	}
	begin := time.Now()
	cl.ProduceKeyed(b, topic, msgs)
	b.Logf("produced %d messages (skewed=%v) in %v", len(msgs), skewed, time.Since(begin))
	if keyedBacklogs.topics == nil {
		keyedBacklogs.topics = map[string]string{}
	}
	keyedBacklogs.topics[dist] = topic
	return topic
}

// backlogSpan times a backlog from its first message to its last: the
// skewed backlog's tail is its hot key, so a window that left out the
// start would measure that key alone.
type backlogSpan struct {
	n     int64
	count atomic.Int64
	first atomic.Int64 // unix nanos
	end   time.Time    // written once, before done is closed
	done  chan struct{}
}

func (s *backlogSpan) add() {
	if s.first.Load() == 0 {
		s.first.CompareAndSwap(0, time.Now().UnixNano())
	}
	if s.count.Add(1) == s.n {
		s.end = time.Now()
		close(s.done)
	}
}

func (s *backlogSpan) wait(b *testing.B) time.Duration {
	select {
	case <-s.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d in 5 minutes", s.count.Load(), s.n)
	}
	return s.end.Sub(time.Unix(0, s.first.Load()))
}

// consumeKeyedBacklog consumes topic with a fresh group in one mode and
// returns messages per second from the first message to the last.
func consumeKeyedBacklog(b *testing.B, cl *rmqtest.Cluster, topic string, mode consumer.SubscribeOption) float64 {
	sp := &backlogSpan{n: keyedBacklog, done: make(chan struct{})}
	c, err := consumer.New(cl.NewGroup(b), consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest), quiet())
	if err != nil {
		b.Fatal(err)
	}
	opts := []consumer.SubscribeOption{consumer.WithPoolSize(keyedPool)}
	if mode != nil {
		opts = append(opts, mode)
	}
	err = c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		time.Sleep(keyedWork)
		sp.add()
		return nil
	}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := sp.wait(b)
	_ = c.Stop(context.Background())
	return float64(keyedBacklog) / elapsed.Seconds()
}

// BenchmarkKeyOrdered compares key-ordered consumption with orderly
// (capped at 8 queues / 2 ms = 4,000 msg/s) and concurrent consumption of
// the same backlog, uniform over the keys and skewed (one key holds 20%:
// its messages are serial whatever the mode, 2 ms each, which caps any
// key-ordered consumer at 2,500 msg/s). Each iteration runs the three
// modes; it reports their rates and the ratios keyed/orderly and
// keyed/concurrent. Done when: keyed >= 5x orderly and >= 0.7x concurrent
// on the uniform distribution.
func BenchmarkKeyOrdered(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	for _, skewed := range []bool{false, true} {
		name := "uniform"
		if skewed {
			name = "skewed"
		}
		b.Run(name, func(b *testing.B) {
			topic := keyedBacklogTopic(b, cl, skewed)
			var keyed, orderly, concurrent float64
			for range b.N {
				keyed += consumeKeyedBacklog(b, cl, topic, consumer.WithKeyOrdered())
				orderly += consumeKeyedBacklog(b, cl, topic, consumer.WithOrderly())
				concurrent += consumeKeyedBacklog(b, cl, topic, nil)
			}
			n := float64(b.N)
			b.ReportMetric(keyed/n, "keyed-msgs/s")
			b.ReportMetric(orderly/n, "orderly-msgs/s")
			b.ReportMetric(concurrent/n, "concurrent-msgs/s")
			b.ReportMetric(keyed/orderly, "keyed/orderly")
			b.ReportMetric(keyed/concurrent, "keyed/concurrent")
		})
	}
}
