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
func Example() {
	c, err := broadcast.New("cache-invalidator",
		broadcast.WithNameServer("127.0.0.1:9876"),
		// The identity comes from POD_NAME or HOSTNAME, or a state file;
		// set it explicitly where neither is stable:
		// broadcast.WithIdentity("cache-node-3"),
		broadcast.WithGarbageCollection(24*time.Hour, 0),
		broadcast.WithConsumerOptions(consumer.WithDefaultPoolSize(8), consumer.WithMaxRetries(5)),
	)
	if err != nil {
		log.Fatal(err)
	}
	err = c.Subscribe("config-changes", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		log.Printf("instance %s: invalidate %s", c.Identity(), m.Keys)
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
