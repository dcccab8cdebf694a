//go:build integration

package consumer_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

const backlogSize = 100_000

// backlog is produced once per process and read by a fresh group per run,
// so rmqkit and the plain client consume exactly the same messages.
var backlog struct {
	once  sync.Once
	topic string
}

func sharedBacklog(b *testing.B, cl *rmqtest.Cluster) string {
	backlog.once.Do(func() {
		backlog.topic = cl.NewTopic(b, rmqtest.Queues(8))
		start := time.Now()
		cl.NewProducer(b).Produce(backlog.topic, "bl", backlogSize)
		b.Logf("produced %d messages in %v", backlogSize, time.Since(start))
	})
	return backlog.topic
}

func quiet() consumer.Option { return consumer.WithLogger(slog.New(slog.DiscardHandler)) }

// span records the time from the first to the n-th message, so that the
// group's start-up (rebalance, first pull) does not count.
type span struct {
	count atomic.Int64
	first atomic.Int64 // unix nanos
	done  chan struct{}
	n     int64
	end   time.Time
}

func newSpan(n int64) *span { return &span{n: n, done: make(chan struct{})} }

func (s *span) add(k int) {
	if s.first.Load() == 0 {
		s.first.CompareAndSwap(0, time.Now().UnixNano())
	}
	if s.count.Add(int64(k)) >= s.n && s.end.IsZero() {
		s.end = time.Now()
		close(s.done)
	}
}

func (s *span) wait(b *testing.B) time.Duration {
	select {
	case <-s.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d in 5 minutes", s.count.Load(), s.n)
	}
	return s.end.Sub(time.Unix(0, s.first.Load()))
}

// consumeAll runs a fresh rmqkit group over topic until n messages were
// handled and returns the time from the first to the last.
func consumeAllRmqkit(b *testing.B, cl *rmqtest.Cluster, topic string, n int64) time.Duration {
	sp := newSpan(n)
	c, err := consumer.New(cl.NewGroup(b), consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest), quiet())
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	err = c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		mu.Lock()
		sp.add(1)
		mu.Unlock()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := sp.wait(b)
	_ = c.Stop(context.Background())
	return elapsed
}

// consumeAllRaw runs a plain push consumer with the client's defaults plus
// extra options.
func consumeAllRaw(b *testing.B, cl *rmqtest.Cluster, topic string, n int64, extra ...rmq.Option) time.Duration {
	sp := newSpan(n)
	var mu sync.Mutex
	c, err := rmq.NewPushConsumer(append([]rmq.Option{
		rmq.WithGroupName(cl.NewGroup(b)),
		rmq.WithNsResolver(primitive.NewPassthroughResolver([]string{cl.NameServer})),
		rmq.WithInstance(rmqtest.Name(b, "raw")),
		rmq.WithConsumeFromWhere(rmq.ConsumeFromFirstOffset),
	}, extra...)...)
	if err != nil {
		b.Fatal(err)
	}
	err = c.Subscribe(topic, rmq.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (rmq.ConsumeResult, error) {
		mu.Lock()
		sp.add(len(msgs))
		mu.Unlock()
		return rmq.ConsumeSuccess, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	elapsed := sp.wait(b)
	_ = c.Shutdown()
	return elapsed
}

// BenchmarkConsumeThroughput consumes the same 100,000-message backlog with
// a no-op handler through rmqkit and through the plain client. raw uses the
// client's defaults (a 20-goroutine semaphore per topic that blocks its
// dispatcher); raw-unblocked is the plain client configured as rmqkit
// configures it (a semaphore that never blocks, the same prefetch), which
// separates the cost of that structure from rmqkit's own. Each raw
// sub-benchmark reports the rmqkit/raw ratio of the latest runs.
func BenchmarkConsumeThroughput(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	topic := sharedBacklog(b, cl)
	var rmqkitRate float64
	rate := func(b *testing.B, run func() time.Duration) float64 {
		var total time.Duration
		for range b.N {
			total += run()
		}
		r := float64(backlogSize*b.N) / total.Seconds()
		b.ReportMetric(r, "msgs/s")
		return r
	}
	b.Run("rmqkit", func(b *testing.B) {
		rmqkitRate = rate(b, func() time.Duration { return consumeAllRmqkit(b, cl, topic, backlogSize) })
	})
	b.Run("raw", func(b *testing.B) {
		raw := rate(b, func() time.Duration { return consumeAllRaw(b, cl, topic, backlogSize) })
		b.ReportMetric(rmqkitRate/raw, "rmqkit/raw")
	})
	b.Run("raw-unblocked", func(b *testing.B) {
		raw := rate(b, func() time.Duration {
			return consumeAllRaw(b, cl, topic, backlogSize,
				rmq.WithConsumeGoroutineNums(100000), rmq.WithPullThresholdForTopic(8192))
		})
		b.ReportMetric(rmqkitRate/raw, "rmqkit/raw")
	})
}

// BenchmarkIsolation measures a fast subscription's throughput alone and
// beside a subscription whose handlers are all stuck, in one consumer.
func BenchmarkIsolation(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	const fastN = 20_000
	fastTopic := cl.NewTopic(b, rmqtest.Queues(4))
	slowTopic := cl.NewTopic(b, rmqtest.Queues(4))
	p := cl.NewProducer(b)
	p.Produce(fastTopic, "fast", fastN)
	p.Produce(slowTopic, "slow", 2_000)

	run := func(withNeighbour bool) float64 {
		sp := newSpan(fastN)
		var mu sync.Mutex
		release := make(chan struct{})
		c, err := consumer.New(cl.NewGroup(b), consumer.WithNameServer(cl.NameServer),
			consumer.WithStartPosition(consumer.StartFromEarliest), quiet())
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Subscribe(fastTopic, consumer.All, func(context.Context, *consumer.Message) error {
			mu.Lock()
			sp.add(1)
			mu.Unlock()
			return nil
		}, consumer.WithPoolSize(8))
		if withNeighbour {
			_ = c.Subscribe(slowTopic, consumer.All, func(ctx context.Context, _ *consumer.Message) error {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}, consumer.WithPoolSize(8))
		}
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		rate := fastN / sp.wait(b).Seconds()
		close(release)
		_ = c.Stop(context.Background())
		return rate
	}
	for range b.N {
		alone := run(false)
		beside := run(true)
		b.ReportMetric(alone, "alone-msgs/s")
		b.ReportMetric(beside, "beside-msgs/s")
		b.ReportMetric(beside/alone, "ratio")
	}
}

// BenchmarkResizeLatency measures the time from SetPoolSize(2 -> 16) to 16
// handlers running at once.
func BenchmarkResizeLatency(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	topic := cl.NewTopic(b, rmqtest.Queues(8))
	cl.NewProducer(b).Produce(topic, "rs", 5_000)
	var cur atomic.Int64
	reached := make(chan struct{}, 1)
	target := atomic.Int64{}
	c, err := consumer.New(cl.NewGroup(b), consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest), quiet())
	if err != nil {
		b.Fatal(err)
	}
	_ = c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		if n := cur.Add(1); n == target.Load() {
			select {
			case reached <- struct{}{}:
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
		cur.Add(-1)
		return nil
	}, consumer.WithPoolSize(2))
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer c.Stop(context.Background())
	for cur.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	var total time.Duration
	for range b.N {
		_ = c.SetPoolSize(topic, 2)
		time.Sleep(300 * time.Millisecond)
		target.Store(16)
		select {
		case <-reached:
		default:
		}
		start := time.Now()
		if err := c.SetPoolSize(topic, 16); err != nil {
			b.Fatal(err)
		}
		select {
		case <-reached:
			total += time.Since(start)
		case <-time.After(10 * time.Second):
			b.Fatalf("16 concurrent handlers not reached in 10s (now %d)", cur.Load())
		}
		target.Store(0)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/resize")
}
