package config_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

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

func ExampleFile() {
	dir, err := os.MkdirTemp("", "rmqkit")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rmqkit.yaml")
	err = os.WriteFile(path, []byte(`group: orders
subscriptions:
  orders-created: {poolSize: 16, rate: 200}
`), 0o600)
	if err != nil {
		panic(err)
	}

	// The file drives the consumer: its settings apply at Subscribe, the
	// whole file at Start, and its changes live until Stop.
	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)), config.File(path))
	if err != nil {
		panic(err)
	}
	defer c.Stop(context.Background())
	handle := func(context.Context, *consumer.Message) error { return nil }
	if err := c.Subscribe("orders-created", consumer.All, handle, consumer.WithPoolSize(4)); err != nil {
		panic(err)
	}
	s := c.Settings().Subscriptions[0]
	fmt.Println(s.PoolSize, s.Rate) // the file's pool size wins over the code's
	// Output: 16 200/s burst 20
}
