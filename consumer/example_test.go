package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// A consumer with two subscriptions, each on a pool of its own; the pool of
// one is resized at run time.
func ExampleNew() {
	c, err := consumer.New("orders-service",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithMaxRetries(5),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Subscribe("orders", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		fmt.Println("order", m.ID, len(m.Body))
		return nil // acknowledged
	}, consumer.WithPoolSize(16))
	_ = c.Subscribe("audit", consumer.Tags("created", "cancelled"), func(ctx context.Context, m *consumer.Message) error {
		return nil
	}, consumer.WithPoolSize(2))

	// Later, from a configuration change:
	_ = c.SetPoolSize("orders", 32)

	// Start(ctx) begins consuming; Stop waits for running handlers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Stop(ctx)
	fmt.Println(c.Stats()[1].Topic, c.Stats()[1].Pool.Capacity)
	// Output: orders 32
}
