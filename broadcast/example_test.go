package broadcast_test

import (
	"context"
	"log"
	"time"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/consumer"
)

// Every instance of the "cache-invalidator" application receives every
// message of the topic, across restarts; a failed message is retried on the
// instance that failed it.
// A broadcast consumer is a *consumer.Consumer: live config, rmqotel,
// Stats, Lag and the setters work on it as on any other.
func Example() {
	c, err := consumer.New("cache-invalidator",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithPoolSize(8),
		consumer.WithMaxRetries(5),
		broadcast.Mode(
			// The identity comes from POD_NAME or HOSTNAME, or a state
			// file; set it explicitly where neither is stable:
			// broadcast.WithIdentity("cache-node-3"),
			broadcast.WithGarbageCollection(24*time.Hour),
		),
	)
	if err != nil {
		log.Fatal(err)
	}
	instance, _ := broadcast.InstanceOf(c)
	err = c.Subscribe("config-changes", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		log.Printf("instance %s: invalidate %s", instance.Identity(), m.Keys)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		log.Fatal(err) // errors.Is(err, broadcast.ErrIdentityInUse): another process has this identity
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	}()
	// ... run until told to stop.
}
