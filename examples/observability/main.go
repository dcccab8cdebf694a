// Command observability consumes its own messages through an rmqkit consumer
// instrumented with OpenTelemetry: spans go to stdout as JSON (one per line),
// metrics to a Prometheus endpoint.
//
//	scripts/rocketmq.sh up
//	go run ./examples/observability -duration 30s &
//	curl -s 127.0.0.1:9464/metrics | grep -E 'rmqkit|messaging'
//
// It creates its topic, sends -n messages through a producer with
// rmqotel.ProducerInterceptor, then one a second. Every fifth message fails
// on its first delivery, so that failures show up too, and, after the
// broker's retry back-off (some tens of seconds), redeliveries with
// rmqkit.message.reconsume_count 1. See docs/observability.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
	"github.com/rmqkit/rmqkit/rmqotel"
	"github.com/rmqkit/rmqkit/throttle"
)

func main() {
	cluster := exampleutil.Flags()
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9464", "address of the Prometheus /metrics endpoint")
	duration := flag.Duration("duration", 0, "exit after this long (e.g. 30s); 0 runs until interrupted")
	n := flag.Int("n", 10, "messages to send at start; one a second follows")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, cluster, *metricsAddr, *n); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster, metricsAddr string, n int) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))

	shutdown, err := setupOpenTelemetry(metricsAddr, logger)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			logger.Warn("opentelemetry shutdown", "error", err)
		}
	}()

	const topic, group = "rmqkit_observability", "rmqkit_observability_group"
	if err := cluster.CreateTopic(ctx, topic, 4); err != nil {
		return err
	}

	// The consumer: rmqotel.Middleware first, so that its span covers any
	// middleware added after it. It reads the global providers set above.
	c, err := consumer.New(group,
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(logger),
		consumer.WithMiddleware(rmqotel.Middleware()),
	)
	if err != nil {
		return err
	}
	err = c.Subscribe(topic, consumer.All, func(ctx context.Context, m *consumer.Message) error {
		time.Sleep(5 * time.Millisecond) // some work
		if m.Property("demo_fail") == "1" && m.ReconsumeCount == 0 {
			return errors.New("demo: first delivery fails")
		}
		return nil
	},
		consumer.WithPoolSize(4),
		// A rate limit, so that rmqkit.throttle.wait.duration has data: it
		// records only messages that went through one.
		consumer.WithRate(throttle.Limit{Rate: 200, Burst: 20}),
	)
	if err != nil {
		return err
	}
	stopObserving, err := rmqotel.ObserveConsumer(c, rmqotel.WithLagFunc(c.Lag))
	if err != nil {
		return err
	}
	defer stopObserving()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()

	// The producer writes each send span's context into the message.
	p, err := cluster.NewProducer(producer.WithInterceptor(rmqotel.ProducerInterceptor()))
	if err != nil {
		return err
	}
	defer p.Shutdown()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		if i >= n {
			select {
			case <-ctx.Done():
				logger.Info("done", "sent", i)
				return nil
			case <-tick.C:
			}
		}
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf(`{"order":%d}`, i))).
			WithTag("order").WithKeys([]string{"order-" + strconv.Itoa(i)})
		if i%5 == 0 {
			msg.WithProperty("demo_fail", "1")
		}
		if _, err := p.SendSync(ctx, msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("send: %w", err)
		}
	}
}

// setupOpenTelemetry installs the global tracer provider (spans to stdout),
// meter provider (read by a Prometheus exporter served on addr) and W3C
// propagator, as an application would at start-up.
func setupOpenTelemetry(addr string, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	res := resource.NewSchemaless(semconv.ServiceName("rmqkit-observability-example"))

	spans, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(spans, sdktrace.WithBatchTimeout(time.Second)))

	registry := promclient.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exporter))

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics endpoint", "error", err)
		}
	}()
	logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")

	return func(ctx context.Context) error {
		return errors.Join(srv.Shutdown(ctx), tp.Shutdown(ctx), mp.Shutdown(ctx))
	}, nil
}
