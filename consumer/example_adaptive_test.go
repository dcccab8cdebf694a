package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// A subscription whose pool sizes itself between 2 and 64 workers, for a
// handler that calls a downstream whose capacity is unknown or moves.
func ExampleWithAdaptivePool() {
	c, err := consumer.New("orders-service", consumer.WithNameServer("127.0.0.1:9876"))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Subscribe("orders", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		return nil // call the database or the HTTP service here
	}, consumer.WithAdaptivePool(consumer.Adaptive{Max: 64, Window: 500 * time.Millisecond}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// After Start, c.Stats()[0].Adaptive reports the size, the controller's
	// estimate and the reason of its last decision. SetPoolSize pins the
	// size and turns adaptive sizing off.
	a := c.Settings().Subscriptions[0].Adaptive
	fmt.Println(a.Min, a.Max, a.Window)
	_ = c.Stop(context.Background())
	// Output: 2 64 500ms
}
