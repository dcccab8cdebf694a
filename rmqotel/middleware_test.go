package rmqotel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqotel"
)

func ok(context.Context, *consumer.Message) error { return nil }

// message returns a test message with every field the span reads set.
func message(props map[string]string) *consumer.Message {
	m := consumer.NewTestMessage("orders", "7F00000100002A9F0000000000000001", []byte("{}"), props)
	m.Group, m.Tag, m.Keys, m.QueueID, m.ReconsumeCount = "billing", "paid", "order-1 customer-9", 3, 2
	return m
}

func TestProcessSpanHasExactlyTheSpecifiedAttributes(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		opts    []rmqotel.Option
		msg     func() *consumer.Message
		handler consumer.Handler
		want    map[string]string
	}{{
		name: "every field set",
		msg:  func() *consumer.Message { return message(nil) },
		want: map[string]string{
			"messaging.system":                     "rocketmq",
			"messaging.operation.name":             "process",
			"messaging.operation.type":             "process",
			"messaging.consumer.group.name":        "billing",
			"messaging.destination.name":           "orders",
			"messaging.destination.partition.id":   "3",
			"messaging.message.id":                 "7F00000100002A9F0000000000000001",
			"messaging.rocketmq.message.tag":       "paid",
			"messaging.rocketmq.message.keys":      `["order-1","customer-9"]`,
			"messaging.rocketmq.consumption_model": "clustering",
			"rmqkit.message.reconsume_count":       "2",
			"rmqkit.wait.throttle_ms":              "0",
			"rmqkit.wait.pool_ms":                  "0",
		},
	}, {
		name: "empty fields are left out",
		msg:  func() *consumer.Message { return consumer.NewTestMessage("orders", "", nil, nil) },
		want: map[string]string{
			"messaging.system":                     "rocketmq",
			"messaging.operation.name":             "process",
			"messaging.operation.type":             "process",
			"messaging.destination.name":           "orders",
			"messaging.destination.partition.id":   "0",
			"messaging.rocketmq.consumption_model": "clustering",
			"rmqkit.message.reconsume_count":       "0",
			"rmqkit.wait.throttle_ms":              "0",
			"rmqkit.wait.pool_ms":                  "0",
		},
	}, {
		name: "broadcasting, namespace, failure",
		opts: []rmqotel.Option{rmqotel.WithConsumptionModel(rmqotel.Broadcasting), rmqotel.WithNamespace("prod")},
		msg: func() *consumer.Message {
			m := consumer.NewTestMessage("orders", "id", nil, nil)
			m.Group = "billing"
			return m
		},
		handler: func(context.Context, *consumer.Message) error { return fmt.Errorf("charge: %w", boom) },
		want: map[string]string{
			"messaging.system":                     "rocketmq",
			"messaging.operation.name":             "process",
			"messaging.operation.type":             "process",
			"messaging.consumer.group.name":        "billing",
			"messaging.destination.name":           "orders",
			"messaging.destination.partition.id":   "0",
			"messaging.message.id":                 "id",
			"messaging.rocketmq.consumption_model": "broadcasting",
			"messaging.rocketmq.namespace":         "prod",
			"rmqkit.message.reconsume_count":       "0",
			"rmqkit.wait.throttle_ms":              "0",
			"rmqkit.wait.pool_ms":                  "0",
			"error.type":                           "*errors.errorString",
		},
	}}
	run := func(t *testing.T, opts []rmqotel.Option, msg *consumer.Message, h consumer.Handler, want map[string]string) {
		t.Helper()
		tel := newTelemetry(t)
		if h == nil {
			h = ok
		}
		_ = rmqotel.Middleware(tel.opts(opts...)...)(h)(context.Background(), msg)
		span := tel.ended(t, 1)[0]
		if span.Name() != "process orders" || span.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("span = %q %v, want \"process orders\" consumer", span.Name(), span.SpanKind())
		}
		if s := span.InstrumentationScope(); s.Name != rmqotel.ScopeName || s.Version != rmqotel.Version {
			t.Errorf("scope = %+v", s)
		}
		got := attrMap(span.Attributes())
		if !reflect.DeepEqual(got, want) {
			t.Errorf("attributes:\n got %v\nwant %v", got, want)
			for _, k := range keysOf(got) {
				if got[k] != want[k] {
					t.Errorf("  %s = %q, want %q", k, got[k], want[k])
				}
			}
			for _, k := range keysOf(want) {
				if _, ok := got[k]; !ok {
					t.Errorf("  %s missing", k)
				}
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.opts, tt.msg(), tt.handler, tt.want) })
	}
}

// producerContext returns a sampled remote span context and the message
// properties a producer would have written for it, with baggage.
func producerContext(t testing.TB, prop propagation.TextMapPropagator) (trace.SpanContext, map[string]string) {
	t.Helper()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(trace.ContextWithRemoteSpanContext(context.Background(), sc), bag)
	props := propagation.MapCarrier{}
	prop.Inject(ctx, props)
	if props["traceparent"] == "" || props["baggage"] == "" {
		t.Fatalf("propagator wrote %v", props)
	}
	return sc, props
}

func TestProducerSpanIsLinkedByDefault(t *testing.T) {
	tel := newTelemetry(t)
	producer, props := producerContext(t, tel.prop)
	var tenant string
	h := rmqotel.Middleware(tel.opts()...)(func(ctx context.Context, _ *consumer.Message) error {
		tenant = baggage.FromContext(ctx).Member("tenant").Value()
		return nil
	})
	if err := h(context.Background(), message(props)); err != nil {
		t.Fatal(err)
	}
	span := tel.ended(t, 1)[0]
	if links := span.Links(); len(links) != 1 || !links[0].SpanContext.Equal(producer) {
		t.Fatalf("links = %+v, want one to the producer's span %v", links, producer)
	}
	if span.Parent().IsValid() || span.SpanContext().TraceID() == producer.TraceID() {
		t.Errorf("span has parent %v and trace %v; want a new root trace", span.Parent(), span.SpanContext().TraceID())
	}
	if tenant != "acme" {
		t.Errorf("handler saw baggage tenant=%q, want acme", tenant)
	}
}

func TestParentFromMessageMakesTheProducerSpanTheParent(t *testing.T) {
	tel := newTelemetry(t)
	producer, props := producerContext(t, tel.prop)
	var inHandler trace.SpanContext
	var tenant string
	h := rmqotel.Middleware(tel.opts(rmqotel.WithParentFromMessage())...)(func(ctx context.Context, _ *consumer.Message) error {
		inHandler = trace.SpanContextFromContext(ctx)
		tenant = baggage.FromContext(ctx).Member("tenant").Value()
		return nil
	})
	if err := h(context.Background(), message(props)); err != nil {
		t.Fatal(err)
	}
	span := tel.ended(t, 1)[0]
	if !span.Parent().Equal(producer) || len(span.Links()) != 0 {
		t.Fatalf("parent = %v, links = %v; want parent %v and no link", span.Parent(), span.Links(), producer)
	}
	if span.SpanContext().TraceID() != producer.TraceID() || !inHandler.Equal(span.SpanContext()) {
		t.Errorf("span %v, handler's %v; want the producer's trace, handler inside the span", span.SpanContext(), inHandler)
	}
	if tenant != "acme" {
		t.Errorf("handler saw baggage tenant=%q, want acme", tenant)
	}
}

func TestMessageWithoutContextGetsARootSpanWithoutLinks(t *testing.T) {
	tel := newTelemetry(t)
	for _, opts := range [][]rmqotel.Option{nil, {rmqotel.WithParentFromMessage()}} {
		if err := rmqotel.Middleware(tel.opts(opts...)...)(ok)(context.Background(), message(nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, span := range tel.ended(t, 2) {
		if span.Parent().IsValid() || len(span.Links()) != 0 {
			t.Errorf("parent %v, links %v; want a root span without links", span.Parent(), span.Links())
		}
	}
}

type typedError struct{}

func (typedError) Error() string     { return "declined" }
func (typedError) ErrorType() string { return "payment_declined" }

func TestFailureSetsErrorTypeAndStatus(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantType string
	}{
		{"plain error", errors.New("boom"), "*errors.errorString"},
		{"wrapped error is unwrapped", fmt.Errorf("handle: %w", context.DeadlineExceeded), "context.deadlineExceededError"},
		{"ErrorType method wins", fmt.Errorf("x: %w", typedError{}), "payment_declined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			h := rmqotel.Middleware(tel.opts()...)(func(context.Context, *consumer.Message) error { return tt.err })
			if err := h(context.Background(), message(nil)); err != tt.err {
				t.Fatalf("returned %v, want the handler's error unchanged", err)
			}
			span := tel.ended(t, 1)[0]
			if got := attrMap(span.Attributes())["error.type"]; got != tt.wantType {
				t.Errorf("error.type = %q, want %q", got, tt.wantType)
			}
			if st := span.Status(); st.Code != codes.Error || st.Description != tt.err.Error() {
				t.Errorf("status = %+v, want Error %q", st, tt.err.Error())
			}
			dur := tel.metrics(t)["messaging.process.duration"]
			if n := histogramCount(t, dur, attribute.String("error.type", tt.wantType)); n != 1 {
				t.Errorf("process.duration points with error.type %q: %d, want 1", tt.wantType, n)
			}
		})
	}
}

func TestPanicIsRecordedAndPassedOn(t *testing.T) {
	tel := newTelemetry(t)
	h := rmqotel.Middleware(tel.opts()...)(func(context.Context, *consumer.Message) error { panic("bad input") })
	func() {
		defer func() {
			if r := recover(); r != "bad input" {
				t.Errorf("recovered %v, want the handler's panic", r)
			}
		}()
		_ = h(context.Background(), message(nil))
	}()
	span := tel.ended(t, 1)[0]
	if got := attrMap(span.Attributes())["error.type"]; got != "panic" || span.Status().Code != codes.Error {
		t.Errorf("error.type %q, status %+v; want panic, Error", got, span.Status())
	}
	if got := sumByOutcome(t, tel.metrics(t)["messaging.client.consumed.messages"]); got["failure"] != 1 {
		t.Errorf("consumed by outcome = %v, want one failure", got)
	}
}

func TestNoBodyInSpansOrEvents(t *testing.T) {
	const secret = "BODY-7c1e2f-do-not-export"
	tel := newTelemetry(t)
	_, props := producerContext(t, tel.prop)
	mw := rmqotel.Middleware(tel.opts(rmqotel.WithWaits(func(*consumer.Message) (time.Duration, time.Duration) {
		return time.Millisecond, time.Millisecond
	}))...)
	for _, h := range []consumer.Handler{ok, func(context.Context, *consumer.Message) error { return errors.New("rejected") }} {
		m := message(props)
		m.Body = []byte(secret)
		_ = mw(h)(context.Background(), m)
	}
	for _, span := range tel.ended(t, 2) {
		var all []attribute.KeyValue
		all = append(all, span.Attributes()...)
		for _, e := range span.Events() {
			all = append(all, attribute.String("event.name", e.Name))
			all = append(all, e.Attributes...)
		}
		for _, l := range span.Links() {
			all = append(all, l.Attributes...)
		}
		all = append(all, attribute.String("name", span.Name()), attribute.String("status", span.Status().Description))
		for _, kv := range all {
			if strings.Contains(kv.Value.Emit(), "BODY-7c1e2f") {
				t.Errorf("%s carries the message body: %q", kv.Key, kv.Value.Emit())
			}
		}
	}
}

func TestWaitsAreRecordedOnTheSpanAndAsHistograms(t *testing.T) {
	tel := newTelemetry(t)
	mw := rmqotel.Middleware(tel.opts(rmqotel.WithWaits(func(*consumer.Message) (time.Duration, time.Duration) {
		return 1500 * time.Microsecond, 250 * time.Millisecond
	}))...)
	before := time.Now()
	if err := mw(ok)(context.Background(), message(nil)); err != nil {
		t.Fatal(err)
	}
	span := tel.ended(t, 1)[0]
	attrs := attrMap(span.Attributes())
	if attrs["rmqkit.wait.throttle_ms"] != "1.5" || attrs["rmqkit.wait.pool_ms"] != "250" {
		t.Errorf("wait attributes = %s, %s; want 1.5, 250", attrs["rmqkit.wait.throttle_ms"], attrs["rmqkit.wait.pool_ms"])
	}
	if span.StartTime().Before(before) {
		t.Errorf("span starts %v before the handler; it should start when the handler does", before.Sub(span.StartTime()))
	}
	events := span.Events()
	if len(events) != 1 || events[0].Name != rmqotel.WaitEventName {
		t.Fatalf("events = %+v, want one %s", events, rmqotel.WaitEventName)
	}
	if wait := span.StartTime().Sub(events[0].Time); wait < 251*time.Millisecond || wait > 300*time.Millisecond {
		t.Errorf("event is %v before the span start, want about 251.5ms", wait)
	}
	m := tel.metrics(t)
	for name, want := range map[string]float64{"rmqkit.throttle.wait.duration": 0.0015, "rmqkit.pool.wait.duration": 0.25} {
		h := m[name].Data.(metricdata.Histogram[float64])
		if len(h.DataPoints) != 1 || h.DataPoints[0].Count != 1 || h.DataPoints[0].Sum != want {
			t.Errorf("%s = %+v, want one value %v", name, h.DataPoints, want)
		}
		if u := m[name].Unit; u != "s" {
			t.Errorf("%s unit %q, want s", name, u)
		}
	}
}

func TestMetricsCountMessagesByOutcome(t *testing.T) {
	tel := newTelemetry(t)
	mw := rmqotel.Middleware(tel.opts()...)
	good := mw(ok)
	bad := mw(func(context.Context, *consumer.Message) error { return errors.New("no") })
	for i := range 8 {
		m := message(nil)
		m.ID = fmt.Sprint("id-", i) // distinct ids must not become distinct series
		if i < 5 {
			_ = good(context.Background(), m)
		} else {
			_ = bad(context.Background(), m)
		}
	}
	got := tel.metrics(t)
	consumed := got["messaging.client.consumed.messages"]
	if by := sumByOutcome(t, consumed); by["success"] != 5 || by["failure"] != 3 || len(by) != 2 {
		t.Errorf("consumed by outcome = %v, want success 5, failure 3", by)
	}
	if consumed.Unit != "{message}" {
		t.Errorf("consumed unit %q", consumed.Unit)
	}
	dur := got["messaging.process.duration"]
	if dur.Unit != "s" {
		t.Errorf("duration unit %q", dur.Unit)
	}
	if n := histogramCount(t, dur); n != 8 {
		t.Errorf("process.duration count = %d, want 8", n)
	}
	if n := histogramCount(t, dur, attribute.String("error.type", "*errors.errorString")); n != 3 {
		t.Errorf("process.duration count with error.type = %d, want 3", n)
	}
	allowed := map[attribute.Key]bool{
		"messaging.system": true, "messaging.operation.name": true, "messaging.consumer.group.name": true,
		"messaging.destination.name": true, "error.type": true, rmqotel.OutcomeKey: true,
	}
	for name, m := range got {
		var sets []attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		}
		for _, s := range sets {
			for _, kv := range s.ToSlice() {
				if !allowed[kv.Key] {
					t.Errorf("%s has high-cardinality or unexpected attribute %s", name, kv.Key)
				}
			}
			if v, _ := s.Value("messaging.system"); v.AsString() != "rocketmq" {
				t.Errorf("%s: messaging.system = %q", name, v.AsString())
			}
		}
	}
}

func TestNoopProvidersReturnTheHandlerUnchanged(t *testing.T) {
	mw := rmqotel.Middleware(rmqotel.WithTracerProvider(tracenoop.NewTracerProvider()), rmqotel.WithMeterProvider(metricnoop.NewMeterProvider()))
	h := consumer.Handler(ok)
	if reflect.ValueOf(mw(h)).Pointer() != reflect.ValueOf(h).Pointer() {
		t.Fatal("Middleware wrapped the handler although both providers are no-ops")
	}
}

func TestNilOptionsAreIgnored(t *testing.T) {
	tel := newTelemetry(t)
	opts := append(tel.opts(), rmqotel.WithTracerProvider(nil), rmqotel.WithMeterProvider(nil), rmqotel.WithPropagators(nil), nil)
	if err := rmqotel.Middleware(opts...)(ok)(context.Background(), message(nil)); err != nil {
		t.Fatal(err)
	}
	tel.ended(t, 1)
}

// inChild runs the calling test alone in a fresh process, for tests that
// set the OpenTelemetry globals: a global provider, once set, cannot be
// unset, and the default one delegates to the first provider set for the
// rest of the process.
func inChild(t *testing.T) (child bool) {
	t.Helper()
	if os.Getenv("RMQOTEL_CHILD") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RMQOTEL_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a fresh process: %v\n%s", err, out)
	}
	return false
}

// Globals are read when Middleware is built; a global provider set after
// that still takes effect, through the default delegating provider.
func TestGlobalProvidersAreUsedByDefault(t *testing.T) {
	if !inChild(t) {
		return
	}
	tel := newTelemetry(t)
	before := rmqotel.Middleware()(ok)
	var sawBaggage bool
	seeBaggage := func(ctx context.Context, _ *consumer.Message) error {
		sawBaggage = baggage.FromContext(ctx).Member("tenant").Value() == "acme"
		return nil
	}
	producer, props := producerContext(t, tel.prop)
	if err := rmqotel.Middleware()(seeBaggage)(context.Background(), message(props)); err != nil || sawBaggage {
		t.Fatalf("err %v, baggage %v before any global is set; want nil, none", err, sawBaggage)
	}
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(tel.prop)
	after := rmqotel.Middleware()(ok)
	for _, h := range []consumer.Handler{before, after} {
		if err := h(context.Background(), message(props)); err != nil {
			t.Fatal(err)
		}
	}
	for i, span := range tel.ended(t, 2) {
		if links := span.Links(); len(links) != 1 || !links[0].SpanContext.Equal(producer) {
			t.Errorf("span %d: links = %v, want the producer's span through the global propagator", i, links)
		}
	}
	if by := sumByOutcome(t, tel.metrics(t)["messaging.client.consumed.messages"]); by["success"] != 2 {
		t.Errorf("consumed = %v, want two successes through the global meter provider", by)
	}
}

// With no tracer provider set but a propagator set, the handler still gets
// the message's baggage, and with WithParentFromMessage its trace context.
func TestContextPropagatesWithoutATracerProvider(t *testing.T) {
	if !inChild(t) {
		return
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTextMapPropagator(prop)
	producer, props := producerContext(t, prop)
	for _, opts := range [][]rmqotel.Option{nil, {rmqotel.WithParentFromMessage()}} {
		var sc trace.SpanContext
		var tenant string
		h := rmqotel.Middleware(opts...)(func(ctx context.Context, _ *consumer.Message) error {
			sc, tenant = trace.SpanContextFromContext(ctx), baggage.FromContext(ctx).Member("tenant").Value()
			return nil
		})
		if err := h(context.Background(), message(props)); err != nil {
			t.Fatal(err)
		}
		if tenant != "acme" {
			t.Errorf("options %d: baggage tenant = %q, want acme", len(opts), tenant)
		}
		if wantParent := len(opts) > 0; sc.Equal(producer) != wantParent {
			t.Errorf("options %d: handler's span context %v; producer's expected: %v", len(opts), sc, wantParent)
		}
	}
}

// keysPropagator extracts nothing but records the carrier's Keys.
type keysPropagator struct{ seen *[]string }

func (p keysPropagator) Inject(context.Context, propagation.TextMapCarrier) {}
func (p keysPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	*p.seen = c.Keys()
	return ctx
}
func (p keysPropagator) Fields() []string { return []string{"traceparent", "x-custom", "absent"} }

func TestCarrierKeysAreThePropagatorsFieldsTheMessageHas(t *testing.T) {
	tel := newTelemetry(t)
	var seen []string
	mw := rmqotel.Middleware(tel.opts(rmqotel.WithPropagators(keysPropagator{&seen}))...)
	m := message(map[string]string{"traceparent": "00-x", "x-custom": "1", "other": "2"})
	if err := mw(ok)(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seen, []string{"traceparent", "x-custom"}) {
		t.Errorf("Keys() = %v, want [traceparent x-custom]", seen)
	}
}

func TestSampledOutSpansCostNoAttributes(t *testing.T) {
	tel := newTelemetry(t)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var recording bool
	h := rmqotel.Middleware(tel.opts(rmqotel.WithTracerProvider(tp))...)(func(ctx context.Context, _ *consumer.Message) error {
		recording = trace.SpanFromContext(ctx).IsRecording()
		return nil
	})
	if err := h(context.Background(), message(nil)); err != nil {
		t.Fatal(err)
	}
	if recording || len(tel.spans.Ended()) != 0 {
		t.Errorf("recording = %v, %d spans ended; want a non-recording span", recording, len(tel.spans.Ended()))
	}
	if by := sumByOutcome(t, tel.metrics(t)["messaging.client.consumed.messages"]); by["success"] != 1 {
		t.Errorf("metrics must not depend on sampling: consumed = %v", by)
	}
}

// messaging.client.consumed.messages is observed from counts the middleware
// keeps; exporters must see what a synchronous counter gave them: a
// monotonic sum per destination and outcome, cumulative or delta as the
// reader asks, summed over every Middleware of the meter.
func TestConsumedMessagesIsAMonotonicSumInEitherTemporality(t *testing.T) {
	for _, temporality := range []metricdata.Temporality{metricdata.CumulativeTemporality, metricdata.DeltaTemporality} {
		t.Run(temporality.String(), func(t *testing.T) {
			reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality { return temporality }))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			collect := func() metricdata.Sum[int64] {
				t.Helper()
				var rm metricdata.ResourceMetrics
				if err := reader.Collect(context.Background(), &rm); err != nil {
					t.Fatal(err)
				}
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						if m.Name == "messaging.client.consumed.messages" {
							if m.Unit != "{message}" || m.Description != "Number of messages that were delivered to the application." {
								t.Errorf("unit %q, description %q", m.Unit, m.Description)
							}
							return m.Data.(metricdata.Sum[int64])
						}
					}
				}
				t.Fatal("no messaging.client.consumed.messages")
				return metricdata.Sum[int64]{}
			}
			byOutcome := func(s metricdata.Sum[int64]) map[string]int64 {
				out := map[string]int64{}
				for _, dp := range s.DataPoints {
					v, _ := dp.Attributes.Value(rmqotel.OutcomeKey)
					if _, dup := out[v.AsString()]; dup {
						t.Errorf("two points for outcome %s", v.AsString())
					}
					out[v.AsString()] = dp.Value
				}
				return out
			}
			opts := []rmqotel.Option{rmqotel.WithMeterProvider(mp), rmqotel.WithTracerProvider(tracenoop.NewTracerProvider())}
			one, other := rmqotel.Middleware(opts...), rmqotel.Middleware(opts...)
			fail := func(context.Context, *consumer.Message) error { return errors.New("no") }
			for _, h := range []consumer.Handler{one(ok), other(ok), one(fail)} {
				_ = h(context.Background(), message(nil))
			}
			first := collect()
			if !first.IsMonotonic || first.Temporality != temporality {
				t.Errorf("monotonic %v, temporality %v; want a monotonic %v sum", first.IsMonotonic, first.Temporality, temporality)
			}
			if got := byOutcome(first); got["success"] != 2 || got["failure"] != 1 || len(got) != 2 {
				t.Errorf("first collection = %v, want success 2, failure 1", got)
			}
			_ = other(ok)(context.Background(), message(nil))
			want := map[string]int64{"success": 3, "failure": 1}
			if temporality == metricdata.DeltaTemporality {
				want = map[string]int64{"success": 1, "failure": 0}
			}
			if got := byOutcome(collect()); got["success"] != want["success"] || got["failure"] != want["failure"] {
				t.Errorf("second collection = %v, want %v", got, want)
			}
		})
	}
}

// A subscription without rate limits has a throttle wait of exactly zero on
// every message; the throttle histogram records only messages that went
// through a limit, the pool histogram every message.
func TestThrottleWaitHistogramRecordsOnlyRateLimitedMessages(t *testing.T) {
	tel := newTelemetry(t)
	waits := map[string][2]time.Duration{"free": {0, time.Millisecond}, "limited": {2 * time.Millisecond, 0}}
	mw := rmqotel.Middleware(tel.opts(rmqotel.WithWaits(func(m *consumer.Message) (time.Duration, time.Duration) {
		w := waits[m.ID]
		return w[0], w[1]
	}))...)
	for _, id := range []string{"free", "free", "limited"} {
		m := message(nil)
		m.ID = id
		if err := mw(ok)(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	got := tel.metrics(t)
	throttle := got["rmqkit.throttle.wait.duration"].Data.(metricdata.Histogram[float64])
	if len(throttle.DataPoints) != 1 || throttle.DataPoints[0].Count != 1 || throttle.DataPoints[0].Sum != 0.002 {
		t.Errorf("throttle wait = %+v, want the limited message only (count 1, sum 0.002)", throttle.DataPoints)
	}
	if n := histogramCount(t, got["rmqkit.pool.wait.duration"]); n != 3 {
		t.Errorf("pool wait count = %d, want every message (3)", n)
	}
	for _, span := range tel.ended(t, 3) {
		if _, ok := attrMap(span.Attributes())["rmqkit.wait.throttle_ms"]; !ok {
			t.Errorf("span without rmqkit.wait.throttle_ms; spans keep it, zero or not")
		}
	}
}

// attrSampler samples everything and keeps the attributes it was shown.
type attrSampler struct{ seen *[]attribute.KeyValue }

func (s attrSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	*s.seen = append([]attribute.KeyValue(nil), p.Attributes...)
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}
func (s attrSampler) Description() string { return "attrSampler" }

// The conventions ask for the attributes that sampling may depend on at
// span creation; giving them only once the span is known to be recorded
// would be cheaper (one attribute copy less per span), but a sampler
// choosing by destination or group would then see nothing.
func TestSamplerSeesTheSamplingAttributesAtStart(t *testing.T) {
	tel := newTelemetry(t)
	var seen []attribute.KeyValue
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(attrSampler{&seen}), sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	if err := rmqotel.Middleware(tel.opts(rmqotel.WithTracerProvider(tp))...)(ok)(context.Background(), message(nil)); err != nil {
		t.Fatal(err)
	}
	got := attrMap(seen)
	for k, want := range map[string]string{
		"messaging.system": "rocketmq", "messaging.operation.name": "process", "messaging.operation.type": "process",
		"messaging.destination.name": "orders", "messaging.consumer.group.name": "billing",
	} {
		if got[k] != want {
			t.Errorf("sampler saw %s = %q, want %q", k, got[k], want)
		}
	}
}

type numberedError int

func (e numberedError) Error() string     { return fmt.Sprint("failure ", int(e)) }
func (e numberedError) ErrorType() string { return fmt.Sprint("type-", int(e)) }

// Attribute sets for failures are kept for a bounded number of error types;
// past that bound every failure is still recorded under its own error.type.
func TestEveryErrorTypeIsRecordedPastTheCachedOnes(t *testing.T) {
	tel := newTelemetry(t)
	mw := rmqotel.Middleware(tel.opts()...)
	const types = 70
	for round := range 2 {
		for i := range types {
			h := mw(func(context.Context, *consumer.Message) error { return numberedError(i) })
			if err := h(context.Background(), message(nil)); err == nil {
				t.Fatalf("round %d: handler error lost", round)
			}
		}
	}
	dur := tel.metrics(t)["messaging.process.duration"]
	for i := range types {
		if n := histogramCount(t, dur, attribute.String("error.type", fmt.Sprint("type-", i))); n != 2 {
			t.Errorf("error.type type-%d: count %d, want 2", i, n)
		}
	}
}
