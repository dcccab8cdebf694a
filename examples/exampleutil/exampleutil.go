// Package exampleutil holds what the example programs share and is not part
// of rmqkit: flags for the cluster's addresses, topic creation, a producer.
package exampleutil

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Cluster holds the addresses given by -namesrv and -broker (defaults from
// RMQKIT_NAMESRV and RMQKIT_BROKER, which scripts/rocketmq.sh env exports).
type Cluster struct {
	NameServer string
	Broker     string
}

// Flags registers -namesrv and -broker on the default flag set.
func Flags() *Cluster {
	c := &Cluster{}
	flag.StringVar(&c.NameServer, "namesrv", envOr("RMQKIT_NAMESRV", "127.0.0.1:9876"), "name server address")
	flag.StringVar(&c.Broker, "broker", envOr("RMQKIT_BROKER", "127.0.0.1:10911"), "broker address (for creating topics)")
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// CreateTopic creates topic with queues queues and waits until it is routed.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, queues int) error {
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.NameServer})))
	if err != nil {
		return err
	}
	defer adm.Close()
	err = adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.Broker),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues))
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for {
		if mqs, err := adm.FetchPublishMessageQueues(ctx, topic); err == nil && len(mqs) == queues {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not routed: %w", topic, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Producer is a started rocketmq-client-go producer.
type Producer interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
	Shutdown() error
}

// NewProducer starts a producer on the cluster.
func (c *Cluster) NewProducer(opts ...producer.Option) (Producer, error) {
	base := []producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.NameServer})),
		producer.WithGroupName("rmqkit-example-producer"),
		producer.WithInstanceName(fmt.Sprintf("example-producer-%d", os.Getpid())),
		producer.WithRetry(2),
	}
	p, err := producer.NewDefaultProducer(append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}
