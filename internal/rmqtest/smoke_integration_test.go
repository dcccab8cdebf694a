//go:build integration

package rmqtest_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	os.Exit(m.Run())
}

// The plain client against the real broker: every produced id arrives.
func TestPlainPushConsumerReceivesEveryMessage(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	ids := cl.NewProducer(t).Produce(topic, "smoke", 1000)

	got := rmqtest.NewCollector()
	c, err := rmq.NewPushConsumer(
		rmq.WithGroupName(cl.NewGroup(t)),
		rmq.WithNsResolver(primitive.NewPassthroughResolver([]string{cl.NameServer})),
		rmq.WithInstance(rmqtest.Name(t, "i")),
		rmq.WithConsumeFromWhere(rmq.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, rmq.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (rmq.ConsumeResult, error) {
		for _, m := range msgs {
			got.Add(m.GetProperty(rmqtest.IDProperty))
		}
		return rmq.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	got.RequireAll(t, ids, 90*time.Second)
}
