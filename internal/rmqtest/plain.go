package rmqtest

import (
	"context"
	"testing"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// StartPlainConsumer starts a plain rocketmq-client-go push consumer of a
// fresh group on topic that records every message's test id in got, shut
// down at the end of the test. opts follow the defaults (group, name
// server, a unique instance name), so they can override them. It is the
// baseline rmqkit is compared with.
func (c *Cluster) StartPlainConsumer(t testing.TB, topic string, got *Collector, opts ...rmq.Option) {
	t.Helper()
	base := []rmq.Option{
		rmq.WithGroupName(c.NewGroup(t)),
		rmq.WithNsResolver(primitive.NewPassthroughResolver([]string{c.NameServer})),
		rmq.WithInstance(Name(t, "plain")),
	}
	pc, err := rmq.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, rmq.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (rmq.ConsumeResult, error) {
		for _, m := range msgs {
			got.Add(m.GetProperty(IDProperty))
		}
		return rmq.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
}
