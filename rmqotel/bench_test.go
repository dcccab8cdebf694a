package rmqotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
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
//     and baggage
//   - otel-on-waited: otel-on with a message that waited 40 µs for a
//     worker, as messages of a real consumer do (a waited message's span
//     carries the waits; Middleware adds its rmqkit.wait event only for
//     waits of a millisecond or more)
//   - otel-on-failed: otel-on with a handler that fails (error.type, span
//     status, the failure series)
//   - otel-on-traceparent: otel-on with a message carrying a traceparent
//     and no baggage
//   - sdk-floor: what the SDK itself costs per message with the same
//     providers: a bare span started and ended, one histogram record. The
//     instrumentation's own cost is otel-on minus sdk-floor.
//   - sdk-floor-span: what the SDK itself costs for the telemetry otel-on
//     exports, the same calls with the same attributes and everything that
//     can be built once built once: the propagator's Extract, a span
//     started from the context with the baggage and the six start
//     attributes, the link, the seven per-message attributes in one call,
//     End, and the two histogram records every message gets
//     (messaging.process.duration, rmqkit.pool.wait.duration) with the
//     span's context, as the middleware records them. otel-on minus this
//     is the instrumentation's own cost for that output.
//   - sdk-floor-ratio: sdk-floor with the ratio-1pct tracer provider and
//     the second histogram record, the SDK calls a message of ratio-1pct
//     cannot do without: the span (not recorded 99 times in 100, but its
//     context goes to the handler) and the two histograms.
//   - ratio-1pct: ParentBased(TraceIDRatioBased(0.01)) sampler, messages
//     without a parent: 99% of the spans are not recorded, every message is
//     measured
//
// Besides ns/op each reports cpu-ns/op, the process's CPU time per message.
func BenchmarkDispatch(b *testing.B) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	_, props := producerContext(&testing.T{}, prop)
	newMsg := func(props map[string]string) *consumer.Message {
		msg := consumer.NewTestMessage("orders", "7F00000100002A9F0000000000000001", []byte("{}"), props)
		msg.Group, msg.Tag, msg.Keys, msg.QueueID = "billing", "paid", "order-1", 3
		return msg
	}
	msg := newMsg(props)
	handler := func(context.Context, *consumer.Message) error { return nil }
	errDeclined := errors.New("declined")
	failing := func(context.Context, *consumer.Message) error { return errDeclined }

	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	ratioTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = ratioTP.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	on := []rmqotel.Option{rmqotel.WithTracerProvider(tp), rmqotel.WithMeterProvider(mp), rmqotel.WithPropagators(prop)}
	waited := rmqotel.WithWaits(func(*consumer.Message) (time.Duration, time.Duration) { return 0, 40 * time.Microsecond })

	// The floor: the SDK's bare span and one histogram record, with
	// everything that can be built once built once.
	tracer := tp.Tracer("floor")
	hist, err := mp.Meter("floor").Float64Histogram("floor.duration", metric.WithUnit("s"))
	if err != nil {
		b.Fatal(err)
	}
	floorSet := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("messaging.destination.name", "orders")))}
	floorStart := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	floor := func(ctx context.Context, _ *consumer.Message) error {
		start := time.Now()
		_, span := tracer.Start(ctx, "process orders", floorStart...)
		span.End()
		hist.Record(ctx, time.Since(start).Seconds(), floorSet...)
		return nil
	}

	// The floors below make the SDK calls the middleware's output needs,
	// with the same attributes, everything that can be built once built
	// once, and nothing else.
	ratioTracer := ratioTP.Tracer("floor")
	metricSet := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("messaging.system", "rocketmq"), attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.destination.name", "orders"), attribute.String("messaging.consumer.group.name", "billing")))}
	poolHist, err := mp.Meter("floor").Float64Histogram("floor.pool.wait", metric.WithUnit("s"))
	if err != nil {
		b.Fatal(err)
	}
	floorRatio := func(ctx context.Context, _ *consumer.Message) error {
		start := time.Now()
		ctx, span := ratioTracer.Start(ctx, "process orders", floorStart...)
		span.End()
		hist.Record(ctx, time.Since(start).Seconds(), metricSet...)
		poolHist.Record(ctx, 40e-6, metricSet...)
		return nil
	}
	spanStart := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "rocketmq"), attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.operation.type", "process"), attribute.String("messaging.rocketmq.consumption_model", "clustering"),
		attribute.String("messaging.destination.name", "orders"), attribute.String("messaging.consumer.group.name", "billing"))}
	spanAttrs := []attribute.KeyValue{
		attribute.String("messaging.destination.partition.id", "3"), attribute.String("messaging.message.id", msg.ID),
		attribute.String("messaging.rocketmq.message.tag", "paid"), attribute.StringSlice("messaging.rocketmq.message.keys", []string{"order-1"}),
		attribute.Int("rmqkit.message.reconsume_count", 0), attribute.Float64("rmqkit.wait.throttle_ms", 0), attribute.Float64("rmqkit.wait.pool_ms", 0)}
	carrier := propagation.MapCarrier(props)
	floorSpan := func(ctx context.Context, _ *consumer.Message) error {
		start := time.Now()
		remote := prop.Extract(ctx, carrier)
		link := trace.SpanContextFromContext(remote)
		sctx, span := tracer.Start(baggage.ContextWithBaggage(ctx, baggage.FromContext(remote)), "process orders", spanStart...)
		span.AddLink(trace.Link{SpanContext: link})
		span.SetAttributes(spanAttrs...)
		span.End()
		hist.Record(sctx, time.Since(start).Seconds(), metricSet...)
		poolHist.Record(sctx, 0, metricSet...)
		return nil
	}

	cases := []struct {
		name string
		h    consumer.Handler
		msg  *consumer.Message
	}{
		{"bare", handler, msg},
		{"otel-off", rmqotel.Middleware()(handler), msg},
		{"otel-noop", rmqotel.Middleware(rmqotel.WithTracerProvider(tracenoop.NewTracerProvider()), rmqotel.WithMeterProvider(metricnoop.NewMeterProvider()))(handler), msg},
		{"sdk-floor", floor, msg},
		{"sdk-floor-span", floorSpan, msg},
		{"sdk-floor-ratio", floorRatio, newMsg(nil)},
		{"otel-on", rmqotel.Middleware(on...)(handler), msg},
		{"otel-on-waited", rmqotel.Middleware(append(on, waited)...)(handler), msg},
		{"otel-on-failed", rmqotel.Middleware(on...)(failing), msg},
		{"otel-on-traceparent", rmqotel.Middleware(on...)(handler), newMsg(map[string]string{"traceparent": props["traceparent"]})},
		{"ratio-1pct", rmqotel.Middleware(append(on, rmqotel.WithTracerProvider(ratioTP), waited)...)(handler), newMsg(nil)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			cpu := rmqtest.ProcessCPU()
			for b.Loop() {
				if err := c.h(ctx, c.msg); err != nil && err != errDeclined {
					b.Fatal(err)
				}
			}
			// The process's CPU per message (the garbage collector's
			// included): steadier than ns/op on a machine shared with
			// other work, which stretches wall time.
			b.ReportMetric(float64(rmqtest.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
