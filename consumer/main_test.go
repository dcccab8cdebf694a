package consumer_test

import (
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	// ants starts a default pool at import; the rocketmq client keeps a few
	// process-wide goroutines. Only goroutines the tests leave behind count.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent(),
		// The client's pull loops sleep without watching shutdown; they end
		// within the sleep after Shutdown (see rocketmq-client-go notes).
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"),
	)
}
