package rmqotel_test

import (
	"context"
	"sort"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rmqkit/rmqkit/rmqotel"
)

// telemetry is an SDK tracer and meter provider that keep everything in
// memory, for one test.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	prop   propagation.TextMapPropagator
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tel := &telemetry{
		spans:  tracetest.NewSpanRecorder(),
		reader: sdkmetric.NewManualReader(),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// opts are the options that send everything to tel.
func (tel *telemetry) opts(extra ...rmqotel.Option) []rmqotel.Option {
	return append([]rmqotel.Option{
		rmqotel.WithTracerProvider(tel.tp),
		rmqotel.WithMeterProvider(tel.mp),
		rmqotel.WithPropagators(tel.prop),
	}, extra...)
}

func (tel *telemetry) ended(t testing.TB, want int) []sdktrace.ReadOnlySpan {
	t.Helper()
	spans := tel.spans.Ended()
	if len(spans) != want {
		t.Fatalf("%d spans ended, want %d", len(spans), want)
	}
	return spans
}

// metrics collects and returns the metrics by name.
func (tel *telemetry) metrics(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != rmqotel.ScopeName || sm.Scope.Version != rmqotel.Version {
			t.Errorf("scope = %+v, want %s %s", sm.Scope, rmqotel.ScopeName, rmqotel.Version)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrMap turns attributes into a map of their values' emitted form.
func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func keysOf(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// sumByOutcome adds up an int64 counter's points by their rmqkit.outcome.
func sumByOutcome(t testing.TB, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, want an int64 sum", m.Name, m.Data)
	}
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		v, _ := dp.Attributes.Value(rmqotel.OutcomeKey)
		out[v.AsString()] += dp.Value
	}
	return out
}

// histogramCount adds up the counts of a float64 histogram's points whose
// attributes include every one of match.
func histogramCount(t testing.TB, m metricdata.Metrics, match ...attribute.KeyValue) uint64 {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, want a float64 histogram", m.Name, m.Data)
	}
	var n uint64
points:
	for _, dp := range h.DataPoints {
		for _, kv := range match {
			if v, ok := dp.Attributes.Value(kv.Key); !ok || v != kv.Value {
				continue points
			}
		}
		n += dp.Count
	}
	return n
}
