package rmqtest

import (
	"context"
	"testing"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// StartPlainConsumerFunc is StartPlainConsumer with the caller's callback
// (called as the client calls it). It returns the consumer's group.
func (c *Cluster) StartPlainConsumerFunc(t testing.TB, topic string, cb rmqCallback, opts ...rmq.Option) string {
	t.Helper()
	group := c.NewGroup(t)
	base := []rmq.Option{
		rmq.WithGroupName(group),
		rmq.WithNsResolver(primitive.NewPassthroughResolver([]string{c.NameServer})),
		rmq.WithInstance(Name(t, "plain")),
	}
	pc, err := rmq.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, rmq.MessageSelector{}, cb); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return group
}

type rmqCallback = func(context.Context, ...*primitive.MessageExt) (rmq.ConsumeResult, error)
