package config_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
)

func ExampleParse() {
	_, err := config.Parse([]byte(`group: orders
subscriptions:
  orders-created:
    poolSize: 100000
    rate: fast
`))
	fmt.Println(errors.Is(err, config.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// config: subscriptions.orders-created.rate (line 5): "fast" is not a number
}

func ExampleOptions() {
	doc, err := config.Parse([]byte(`group: orders
groupLimit: {rate: 2000, shared: true}
subscriptions:
  orders-created: {poolSize: 16, rate: 200}
`))
	if err != nil {
		panic(err)
	}
	opts, subOpts := config.Options(doc)
	opts = append(opts, consumer.WithNameServer("127.0.0.1:9876"), consumer.WithLogger(slog.New(slog.DiscardHandler)))
	c, err := consumer.New(doc.Group, opts...)
	if err != nil {
		panic(err)
	}
	defer c.Stop(context.Background())
	handle := func(context.Context, *consumer.Message) error { return nil }
	if err := c.Subscribe("orders-created", consumer.All, handle, subOpts["orders-created"]...); err != nil {
		panic(err)
	}
	// Later, config.Watch(path, c) keeps the consumer in line with the file.
	s := c.Settings()
	fmt.Println(s.GroupLimit, s.GroupQuota, s.Subscriptions[0].PoolSize, s.Subscriptions[0].Rate)
	// Output: 2000/s burst 200 true 16 200/s burst 20
}
