package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// A key-ordered subscription: the events of one order (its id is the
// sharding key the producer set) are handled one at a time, in the order
// they were stored; different orders run in parallel on the pool of 32.
func ExampleWithKeyOrdered() {
	c, err := consumer.New("billing",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Subscribe("order-events", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		// Apply the event to its order: never concurrently with another
		// event of the same order, never before an earlier one.
		return nil
	}, consumer.WithKeyOrdered(), consumer.WithOrderlySuspend(500*time.Millisecond), consumer.WithPoolSize(32))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Stop(context.Background()) }()
	s := c.Settings().Subscriptions[0]
	fmt.Println(s.Topic, "key-ordered:", s.KeyOrdered, "pool:", s.PoolSize)
	// Output: order-events key-ordered: true pool: 32
}

// WithKey orders by something other than the sharding key: here the
// customer, the first of the message's keys.
func ExampleWithKey() {
	byCustomer := func(m *consumer.Message) string {
		first, _, _ := strings.Cut(m.Keys, " ")
		return first
	}
	c, err := consumer.New("notifications",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Stop(context.Background()) }()
	err = c.Subscribe("emails", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		return nil
	}, consumer.WithKeyOrdered(), consumer.WithKey(byCustomer))
	fmt.Println(err)
	// Output: <nil>
}
