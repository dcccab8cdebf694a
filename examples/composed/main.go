// Command composed runs one broadcast subscription with everything a
// service wires around a consumer: its pool, rate and group rate from a YAML
// file watched live, rmqotel spans and metrics (with the consumer's gauges
// and lag), and Lag and Stats read directly. Every piece takes the same
// *consumer.Consumer: broadcast is a mode of it, not another type.
//
//	go run ./examples/composed -duration 20s
//	# in another terminal:
//	sed -i 's/rate: 200/rate: 50/' examples/composed/rmqkit.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
	"github.com/rmqkit/rmqkit/rmqotel"
)

func main() {
	cluster := exampleutil.Flags()
	path := flag.String("config", "examples/composed/rmqkit.yaml", "configuration file (watched)")
	identity := flag.String("identity", "", "broadcast instance identity (default: POD_NAME, HOSTNAME or a state file)")
	duration := flag.Duration("duration", 0, "exit after this long (0: run until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, cluster, *path, *identity); err != nil {
		log.Fatal(err)
	}
}

// spanCounter counts the spans that end, standing in for an exporter.
type spanCounter struct{ n atomic.Int64 }

func (s *spanCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s *spanCounter) OnEnd(sdktrace.ReadOnlySpan)                     { s.n.Add(1) }
func (s *spanCounter) Shutdown(context.Context) error                  { return nil }
func (s *spanCounter) ForceFlush(context.Context) error                { return nil }

func run(ctx context.Context, cluster *exampleutil.Cluster, path, identity string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))

	// OpenTelemetry SDK providers; a real service would add exporters.
	spans := &spanCounter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	// The file gives the pool, rate and group rate, and follows its changes
	// live; code gives the connection, the mode and the middleware.
	var bopts []broadcast.Option
	if identity != "" {
		bopts = append(bopts, broadcast.WithIdentity(identity))
	}
	const topic = "rmqkit_example_composed" // as in the file
	c, err := consumer.New("rmqkit_example_composed",
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithLogger(logger),
		// Spans and metrics; rmqotel reads the namespace, the broadcasting
		// model and the lag from the consumer itself.
		rmqotel.Instrument(rmqotel.WithTracerProvider(tp), rmqotel.WithMeterProvider(mp)),
		broadcast.Mode(bopts...),
		config.File(path, config.WithLogger(logger),
			config.WithOnApply(func(changes []config.Change) {
				for _, ch := range changes {
					fmt.Printf("config applied: %s\n", ch)
				}
			})),
	)
	if err != nil {
		return err
	}
	inst, _ := broadcast.InstanceOf(c)
	if err := cluster.CreateTopic(ctx, topic, 4); err != nil {
		return err
	}
	var handled atomic.Int64
	err = c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		handled.Add(1)
		time.Sleep(2 * time.Millisecond) // some work
		return nil
	})
	if err != nil {
		return err
	}

	if err := c.Start(ctx); err != nil {
		return err // broadcast.ErrIdentityInUse: another process runs with this identity
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()
	fmt.Printf("broadcast instance %s of %s consuming %s as group %s\n", inst.Identity(), inst.BaseGroup(), topic, c.Group())

	p, err := cluster.NewProducer()
	if err != nil {
		return err
	}
	defer p.Shutdown()
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			<-tick.C
			_, _ = p.SendSync(ctx, primitive.NewMessage(topic, []byte("hello")))
		}
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		st := c.Stats()[0]
		set := c.Settings()
		lag, err := c.Lag(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Warn("lag", "error", err)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil && ctx.Err() == nil {
			return err
		}
		metrics := 0
		for _, sm := range rm.ScopeMetrics {
			metrics += len(sm.Metrics)
		}
		fmt.Printf("handled=%d pool=%d rate=%s group-rate=%s lag=%d spans=%d metrics=%d\n",
			handled.Load(), st.Pool.Capacity, set.Subscriptions[0].Rate, set.GroupLimit, lag[topic], spans.n.Load(), metrics)
	}
}
