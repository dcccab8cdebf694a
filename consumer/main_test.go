package consumer_test

import (
	"fmt"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	goleak.VerifyTestMain(m, leakOptions()...)
}

// leakOptions makes goleak check rmqkit's own goroutines (pool workers,
// lease renewal, handlers) while passing over rocketmq-client-go's.
// ants starts a default pool at import. The client's background loops
// sleep (1 s, 10 s, a minute, an hour, ConsumeTimeout) before their first
// look at the shutdown signal, its statistics goroutines sleep until the
// next minute, hour or month, and connection readers of clients it shares
// per process stay: all of them outlive Shutdown upstream.
func leakOptions() []goleak.Option {
	const (
		client   = "github.com/apache/rocketmq-client-go/v2/internal."
		consumer = "github.com/apache/rocketmq-client-go/v2/consumer."
	)
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction(consumer + "(*pushConsumer).pullMessage"),
		// The per-queue consume loop polls its queue every 10 ms (orderly
		// takeMessages) and notices the shutdown only on its next turn.
		goleak.IgnoreAnyFunction(consumer + "(*pushConsumer).pullMessage.func1"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*remotingClient).receiveResponse"),
	}
	for i := 1; i <= 8; i++ {
		opts = append(opts,
			goleak.IgnoreAnyFunction(fmt.Sprintf("%s(*rmqClient).Start.func1.%d", client, i)),
			goleak.IgnoreAnyFunction(fmt.Sprintf("%s(*pushConsumer).Start.func1.%d", consumer, i)),
			goleak.IgnoreAnyFunction(fmt.Sprintf("%s(*statsItemSet).init.func%d", consumer, i)),
		)
	}
	return opts
}
