//go:build integration

package config_test

import (
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	// rocketmq-client-go does not wait for its own goroutines on Shutdown
	// (pull loops, the expired-message sweep, statistics tickers, remoting
	// readers end later or never); only rmqkit's goroutines count here.
	const client = "github.com/apache/rocketmq-client-go/v2/"
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	for _, f := range []string{
		"consumer.(*pushConsumer).pullMessage",
		"consumer.(*pushConsumer).Start.func1.1.1",
		"consumer.(*pushConsumer).Start.func1.2",
		"consumer.(*statsItemSet).init.func1",
		"consumer.(*statsItemSet).init.func2",
		"consumer.(*statsItemSet).init.func3",
		"consumer.(*statsItemSet).init.func4",
		"consumer.(*statsItemSet).init.func5",
		"consumer.(*statsItemSet).init.func6",
		"internal/remote.(*remotingClient).connect.func1",
		"internal/remote.(*remotingClient).receiveResponse",
		"internal.(*rmqClient).Start.func1.1",
		"internal.(*rmqClient).Start.func1.4",
	} {
		opts = append(opts, goleak.IgnoreAnyFunction(client+f))
	}
	goleak.VerifyTestMain(m, opts...)
}
