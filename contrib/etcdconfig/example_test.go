package etcdconfig_test

import (
	"context"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/contrib/etcdconfig"
)

// A consumer configured from an etcd key instead of a file: the key holds
// the same YAML document, and every write of it applies without a restart.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:9876"))
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Subscribe("orders-created", consumer.All, func(ctx context.Context, m *consumer.Message) error { return nil })

	src, err := etcdconfig.New(cli, "/services/orders/rmqkit.yaml")
	if err != nil {
		log.Fatal(err)
	}
	w, err := config.WatchSource(src, c) // fails if the key is missing or invalid
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	if err := c.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
}
