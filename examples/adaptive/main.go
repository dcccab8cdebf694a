// Command adaptive shows a subscription whose pool sizes itself: its
// handler calls a simulated downstream that serves 8 calls at once in
// 10 ms and queues beyond, and the pool finds that knee (about 8 workers)
// from the minimum, printing its size, the controller's estimate and the
// reason of its last decision every second.
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

// downstream serves knee calls at once in base; with n > knee calls in
// flight each takes base·n/knee (a saturated database, say).
type downstream struct {
	knee     int64
	base     time.Duration
	inflight atomic.Int64
}

func (d *downstream) call(ctx context.Context) error {
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	wait := d.base * time.Duration(max(n, d.knee)) / time.Duration(d.knee)
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))
	const topic = "rmqkit_adaptive"
	if err := cluster.CreateTopic(ctx, topic, 4); err != nil {
		return err
	}
	p, err := cluster.NewProducer()
	if err != nil {
		return err
	}
	defer p.Shutdown()
	for range 200 {
		batch := make([]*primitive.Message, 50)
		for i := range batch {
			batch[i] = primitive.NewMessage(topic, []byte("x"))
		}
		if _, err := p.SendSync(ctx, batch...); err != nil {
			return err
		}
	}
	fmt.Println("produced 10000 messages; the downstream serves 8 calls at once in 10 ms (800/s)")

	c, err := consumer.New("rmqkit_adaptive_group",
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(logger))
	if err != nil {
		return err
	}
	d := &downstream{knee: 8, base: 10 * time.Millisecond}
	err = c.Subscribe(topic, consumer.All, func(ctx context.Context, _ *consumer.Message) error {
		return d.call(ctx)
	}, consumer.WithAdaptivePool(consumer.Adaptive{Min: 2, Max: 64, Window: 500 * time.Millisecond}))
	if err != nil {
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

	var last uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sec := 1; ; sec++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		s := c.Stats()[0]
		a := s.Adaptive
		fmt.Printf("t=%2ds %4d msg/s  pool %2d (estimate %4.1f, baseline %v, median %v, %s)\n",
			sec, s.Succeeded-last, s.Pool.Capacity, a.Estimate, a.Baseline.Round(100*time.Microsecond), a.Median.Round(100*time.Microsecond), a.Reason)
		last = s.Succeeded
	}
}
