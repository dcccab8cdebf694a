// Command broadcast runs one instance of a broadcast subscription: every
// instance receives every message, across restarts. Run it in two or three
// terminals with different identities, kill one (Ctrl-\ sends SIGQUIT, or
// kill -9), start it again with the same identity, and see that it gets what
// it missed:
//
//	go run ./examples/broadcast -identity a
//	go run ./examples/broadcast -identity b -produce=false
//
// Each instance produces one message per second (unless -produce=false) and
// prints every message it consumes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
)

const (
	topic     = "rmqkit_broadcast_demo"
	baseGroup = "rmqkit_broadcast_demo"
)

func main() {
	cluster := exampleutil.Flags()
	identity := flag.String("identity", "", "instance identity (default: POD_NAME, HOSTNAME, or one persisted in the state directory)")
	duration := flag.Duration("duration", time.Minute, "how long to run (0: until interrupted)")
	produce := flag.Bool("produce", true, "produce one message per second")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, cluster, *identity, *produce); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster, identity string, produce bool) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))

	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cluster.CreateTopic(setup, topic, 4); err != nil {
		return err
	}

	opts := []broadcast.Option{
		// Instances gone for an hour lose their group, and with it what was
		// produced while they were away. Production would use days.
		broadcast.WithGarbageCollection(time.Hour),
	}
	if identity != "" {
		opts = append(opts, broadcast.WithIdentity(identity))
	}
	// A broadcast consumer is a consumer.Consumer with the broadcast mode:
	// everything else (pools, retries, config, rmqotel) is as for any other.
	c, err := consumer.New(baseGroup,
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithLogger(logger),
		consumer.WithPoolSize(4),
		consumer.WithMaxRetries(3),
		broadcast.Mode(opts...),
	)
	if err != nil {
		return err
	}
	inst, _ := broadcast.InstanceOf(c)
	err = c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		fmt.Printf("instance %s consumed %s (queue %d offset %d, delivery %d)\n",
			inst.Identity(), m.Body, m.QueueID, m.QueueOffset, m.ReconsumeCount+1)
		return nil
	})
	if err != nil {
		return err
	}
	if err := c.Start(setup); err != nil {
		return err // broadcast.ErrIdentityInUse: another process runs with this identity
	}
	fmt.Printf("instance %s started; its consumer group is %s\n", inst.Identity(), c.Group())
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
		for _, s := range c.Stats() {
			fmt.Printf("stats %s: received=%d succeeded=%d failed=%d\n", s.Topic, s.Received, s.Succeeded, s.Failed)
		}
	}()

	if !produce {
		<-ctx.Done()
		return ctx.Err()
	}
	p, err := cluster.NewProducer()
	if err != nil {
		return err
	}
	defer p.Shutdown()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		body := fmt.Sprintf("message %d from %s at %s", i, inst.Identity(), time.Now().Format(time.TimeOnly))
		if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body))); err != nil && ctx.Err() == nil {
			logger.Warn("send", "error", err)
		}
	}
}
