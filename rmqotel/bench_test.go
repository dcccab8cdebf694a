package rmqotel_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// BenchmarkDispatch measures one message through Middleware and a handler
// that does nothing. The consumer's own dispatch path is measured by
// consumer's BenchmarkDispatch; this adds the instrumentation's share:
//
//   - bare: the handler alone, for reference
//   - otel-off: global providers and propagator left unset (the default for
//     an application that does not use OpenTelemetry)
//   - otel-noop: no-op providers given explicitly (the handler is returned
//     unchanged)
//   - otel-on: SDK tracer (always sampled, spans to a no-op exporter through
//     a synchronous processor), SDK meter with a manual reader, W3C trace
//     context and baggage, and a message carrying a producer's traceparent
func BenchmarkDispatch(b *testing.B) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	_, props := producerContext(&testing.T{}, prop)
	msg := consumer.NewTestMessage("orders", "7F00000100002A9F0000000000000001", []byte("{}"), props)
	msg.Group, msg.Tag, msg.Keys, msg.QueueID = "billing", "paid", "order-1", 3
	handler := func(context.Context, *consumer.Message) error { return nil }

	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	cases := []struct {
		name string
		h    consumer.Handler
	}{
		{"bare", handler},
		{"otel-off", rmqotel.Middleware()(handler)},
		{"otel-noop", rmqotel.Middleware(rmqotel.WithTracerProvider(tracenoop.NewTracerProvider()), rmqotel.WithMeterProvider(metricnoop.NewMeterProvider()))(handler)},
		{"otel-on", rmqotel.Middleware(rmqotel.WithTracerProvider(tp), rmqotel.WithMeterProvider(mp), rmqotel.WithPropagators(prop))(handler)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.h(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
