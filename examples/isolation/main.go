// Command isolation shows two subscriptions of one consumer with pools of
// their own: a slow one saturates its pool while a fast one keeps its pace;
// then the slow pool is resized at run time and its throughput follows.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
)

func main() {
	cluster := exampleutil.Flags()
	duration := flag.Duration("duration", 12*time.Second, "how long to run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	if err := run(ctx, cluster); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))
	const slowTopic, fastTopic = "rmqkit_isolation_slow", "rmqkit_isolation_fast"
	for _, t := range []string{slowTopic, fastTopic} {
		if err := cluster.CreateTopic(ctx, t, 4); err != nil {
			return err
		}
	}
	p, err := cluster.NewProducer()
	if err != nil {
		return err
	}
	defer p.Shutdown()
	for _, t := range []string{slowTopic, fastTopic} {
		for range 50 {
			batch := make([]*primitive.Message, 40)
			for i := range batch {
				batch[i] = primitive.NewMessage(t, []byte("x"))
			}
			if _, err := p.SendSync(ctx, batch...); err != nil {
				return err
			}
		}
	}
	fmt.Println("produced 2000 messages to each topic")

	c, err := consumer.New("rmqkit_isolation_group",
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(logger))
	if err != nil {
		return err
	}
	slow := func(ctx context.Context, _ *consumer.Message) error {
		select { // a slow downstream: 200 ms per message
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil
	}
	fast := func(context.Context, *consumer.Message) error { time.Sleep(time.Millisecond); return nil }
	if err := c.Subscribe(slowTopic, consumer.All, slow, consumer.WithPoolSize(2)); err != nil {
		return err
	}
	if err := c.Subscribe(fastTopic, consumer.All, fast, consumer.WithPoolSize(4)); err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()

	last := map[string]uint64{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sec := 1; ; sec++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if sec == 5 {
			fmt.Println("--- resizing the slow pool from 2 to 16 workers")
			if err := c.SetPoolSize(slowTopic, 16); err != nil {
				return err
			}
		}
		for _, s := range c.Stats() {
			fmt.Printf("t=%2ds %-22s %4d msg/s  done=%4d  pool %2d/%2d running, %4d waiting\n",
				sec, s.Topic, s.Succeeded-last[s.Topic], s.Succeeded, s.Pool.Running, s.Pool.Capacity, s.Pool.Waiting)
			last[s.Topic] = s.Succeeded
		}
	}
}
