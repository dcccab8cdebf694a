// Command quickstart produces a few messages and consumes them through an
// rmqkit consumer, printing each message and the subscription's stats.
//
//	make demo   # starts a local cluster and runs this
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
)

func main() {
	cluster := exampleutil.Flags()
	n := flag.Int("n", 10, "messages to produce")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cluster, *n); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster, n int) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError)) // the client's own errors, never bodies

	const topic, group = "rmqkit_quickstart", "rmqkit_quickstart_group"
	if err := cluster.CreateTopic(ctx, topic, 4); err != nil {
		return err
	}

	// The consumer: one subscription with a pool of 4 workers.
	c, err := consumer.New(group,
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(logger),
	)
	if err != nil {
		return err
	}
	var consumed atomic.Int64
	err = c.Subscribe(topic, consumer.All, func(ctx context.Context, m *consumer.Message) error {
		fmt.Printf("consumed  id=%s tag=%s queue=%d offset=%d body=%q\n", m.ID, m.Tag, m.QueueID, m.QueueOffset, m.Body)
		consumed.Add(1)
		return nil
	}, consumer.WithPoolSize(4))
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()

	// A plain producer sends the messages.
	p, err := cluster.NewProducer()
	if err != nil {
		return err
	}
	defer p.Shutdown()
	for i := range n {
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("hello %d", i))).WithTag("greeting")
		if _, err := p.SendSync(ctx, msg); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	fmt.Printf("produced  %d messages to %s\n", n, topic)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for consumed.Load() < int64(n) {
		select {
		case <-tick.C:
			printStats(c)
		case <-deadline:
			return fmt.Errorf("consumed %d of %d messages in 60s", consumed.Load(), n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	printStats(c)
	return nil
}

func printStats(c *consumer.Consumer) {
	for _, s := range c.Stats() {
		fmt.Printf("stats     %s: received=%d succeeded=%d failed=%d pool=%d/%d running, %d waiting\n",
			s.Topic, s.Received, s.Succeeded, s.Failed, s.Pool.Running, s.Pool.Capacity, s.Pool.Waiting)
	}
}
