// Command readme is the program in README.md, kept here so that it compiles
// (TestReadmeProgramIsExamplesReadme keeps the two equal).
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqlog"
	"github.com/rmqkit/rmqkit/rmqotel"
	"github.com/rmqkit/rmqkit/throttle"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	rmqlog.Install(logger) // the client's own logs through slog, never message bodies
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := consumer.New("orders-service",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithLogger(logger),
		rmqotel.Instrument(), // spans and metrics through the global OpenTelemetry providers
	)
	if err == nil {
		err = c.Subscribe("orders", consumer.All, func(ctx context.Context, m *consumer.Message) error {
			logger.InfoContext(ctx, "order", "id", m.ID)
			return nil // nil acknowledges; an error redelivers later, with back-off
		}, consumer.WithPoolSize(16), consumer.WithRate(throttle.Limit{Rate: 500}))
	}
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		logger.Error("rmqkit", "error", err)
		os.Exit(1)
	}

	<-ctx.Done() // SIGTERM: stop taking messages, let running handlers finish
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(sctx); err != nil {
		logger.Error("rmqkit stop", "error", err)
	}
}
