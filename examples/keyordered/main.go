// Command keyordered consumes order events key-ordered: the events of one
// order (its id is the sharding key) are handled one at a time, in the
// order they were produced, while different orders are handled in parallel
// on the subscription's pool. It produces the events, consumes them, and
// prints how many were handled, how many came out of order (always 0) and
// how many handlers ran at once at the peak.
//
//	go run ./examples/keyordered -orders 200 -events 5
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
)

func main() {
	cluster := exampleutil.Flags()
	orders := flag.Int("orders", 200, "orders (keys)")
	events := flag.Int("events", 5, "events per order")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cluster, *orders, *events); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster, orders, events int) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))

	// A fresh topic and group per run, so that a run sees only its events.
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "rmqkit_keyordered_"+suffix, "rmqkit_keyordered_group_"+suffix
	if err := cluster.CreateTopic(ctx, topic, 8); err != nil {
		return err
	}

	// The producer sends each order's events to the queue its id hashes
	// to, as orderly producers do: the sharding key picks the queue.
	p, err := cluster.NewProducer(producer.WithQueueSelector(producer.NewHashQueueSelector()))
	if err != nil {
		return err
	}
	defer p.Shutdown()
	for e := range events {
		for o := range orders {
			msg := primitive.NewMessage(topic, []byte(strconv.Itoa(e)))
			msg.WithShardingKey(fmt.Sprintf("order-%d", o))
			if _, err := p.SendSync(ctx, msg); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
	}

	// The consumer: key-ordered, keyed by the sharding key (the default).
	c, err := consumer.New(group,
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(logger),
	)
	if err != nil {
		return err
	}
	var (
		mu         sync.Mutex
		next       = map[string]int{} // per order, the event due
		outOfOrder int
		handled    atomic.Int64
		running    atomic.Int64
		peak       atomic.Int64
		completed  = make(chan struct{})
	)
	err = c.Subscribe(topic, consumer.All, func(ctx context.Context, m *consumer.Message) error {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		order := consumer.ShardingKey(m)
		event, _ := strconv.Atoi(string(m.Body))
		mu.Lock()
		if event != next[order] {
			outOfOrder++
		}
		next[order] = event + 1
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // the work: update the order
		if handled.Add(1) == int64(orders*events) {
			close(completed)
		}
		return nil
	}, consumer.WithKeyOrdered(), consumer.WithPoolSize(16))
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()
	select {
	case <-completed:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("handled %d of %d events in 2 minutes", handled.Load(), orders*events)
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("handled=%d orders=%d out-of-order=%d peak-concurrency=%d in %v\n",
		handled.Load(), orders, outOfOrder, peak.Load(), time.Since(begin).Round(time.Millisecond))
	if outOfOrder != 0 {
		return fmt.Errorf("%d events out of order", outOfOrder)
	}
	return nil
}
