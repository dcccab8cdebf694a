package migrate

import (
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	// As in package consumer: ants starts a default pool at import and the
	// rocketmq client keeps process-wide goroutines; only goroutines the
	// tests leave behind count.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*statsItemSet).init.func4"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*statsItemSet).init.func5"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*statsItemSet).init.func6"),
		// Orderly subscriptions: the client's per-queue consume loop polls
		// an empty queue for up to 5 s (takeMessages) and retries queue
		// locks later; neither is inside rmqkit.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*processQueue).takeMessages"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).tryLockLaterAndReconsume"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).submitConsumeRequestLater"),
		// Upstream: the client's background loops sleep (10 s for these)
		// before their first look at the shutdown signal; seen when a
		// short test runs alone.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).Start.func1.1"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).Start.func1.4"),
		// Upstream: the cleanExpiredMsg loop sleeps a whole ConsumeTimeout
		// before it first looks at the shutdown signal.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).Start.func1.2"),
		// Upstream: a shut-down client's connection readers end when the
		// broker closes the connection, shortly after.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*remotingClient).connect.func1"),
	)
}
