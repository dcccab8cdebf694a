//go:build integration

package rmqtest_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"

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
	cl.StartPlainConsumer(t, topic, got, rmq.WithConsumeFromWhere(rmq.ConsumeFromFirstOffset))
	got.RequireAll(t, ids, 90*time.Second)
}
