package rmqotel

import (
	"context"
	"reflect"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/rmqkit/rmqkit/consumer"
)

// Option configures Middleware, ProducerInterceptor and ObserveConsumer.
// Each option's doc says which of them read it; the others ignore it.
type Option func(*config)

type config struct {
	tp        trace.TracerProvider
	mp        metric.MeterProvider
	prop      propagation.TextMapPropagator
	parent    bool
	model     ConsumptionModel
	namespace string
	lag       LagFunc
	lagSet    bool // WithLagFunc given (nil: no lag)
	gauges    []Gauge
	// waits reads a message's waits; tests replace it because messages
	// built by consumer.NewTestMessage never waited.
	waits func(*consumer.Message) (throttle, pool time.Duration)
}

func newConfig(opts []Option) config {
	c := config{model: Clustering, waits: (*consumer.Message).Waits}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	// Globals are read once, here, and never set. A global provider that is
	// still the default delegates to whatever is set later.
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = otel.GetTextMapPropagator()
	}
	return c
}

// tracingOff and metricsOff report providers known to record nothing.
func (c *config) tracingOff() bool {
	_, ok := c.tp.(tracenoop.TracerProvider)
	return ok
}

func (c *config) metricsOff() bool {
	_, ok := c.mp.(metricnoop.MeterProvider)
	return ok
}

// globalDefaults are the global tracer provider and propagator in use when
// they are still the global package's defaults, which delegate to nothing
// until the application sets its own. Instruments compare them with the
// current globals to skip all tracing work while nothing is set: once
// otel.SetTracerProvider or otel.SetTextMapPropagator is called, the
// globals differ from these and the defaults delegate to the new ones.
type globalDefaults struct {
	tp   trace.TracerProvider
	mp   metric.MeterProvider
	prop propagation.TextMapPropagator
}

func (c *config) globalDefaults() globalDefaults {
	var g globalDefaults
	if isGlobalDefault(c.tp) {
		g.tp = c.tp
	}
	if isGlobalDefault(c.mp) {
		g.mp = c.mp
	}
	if isGlobalDefault(c.prop) {
		g.prop = c.prop
	}
	return g
}

// tracing reports whether spans may be recorded: false while the tracer
// provider is the global default and no provider has been set.
func (g globalDefaults) tracing() bool {
	return g.tp == nil || otel.GetTracerProvider() != g.tp
}

// metering reports whether metrics may be exported: false while the meter
// provider is the global default and no provider has been set. The
// synchronous instruments say so themselves (Enabled); the observable
// counter's counts are kept only while this holds, as a synchronous
// counter's Add would be dropped.
func (g globalDefaults) metering() bool {
	return g.mp == nil || otel.GetMeterProvider() != g.mp
}

// propagating reports whether the propagator may read anything: false
// while it is the global default and no propagator has been set.
func (g globalDefaults) propagating() bool {
	return g.prop == nil || otel.GetTextMapPropagator() != g.prop
}

// isGlobalDefault recognises the global package's delegating defaults by
// their package. Should that package move, the check fails safe: the
// instruments then do their work through the delegates, which is correct,
// only slower.
func isGlobalDefault(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}

func (c *config) tracer() trace.Tracer {
	return c.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version), trace.WithSchemaURL(semconv.SchemaURL))
}

func (c *config) meter() metric.Meter {
	return c.mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version), metric.WithSchemaURL(semconv.SchemaURL))
}

// WithTracerProvider sets the tracer provider spans are created with. If
// none is specified, the global provider (otel.GetTracerProvider) is used.
// A nil provider is ignored. Read by Middleware and ProducerInterceptor.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider sets the meter provider instruments are created with. If
// none is specified, the global provider (otel.GetMeterProvider) is used. A
// nil provider is ignored. Read by Middleware, ProducerInterceptor and
// ObserveConsumer.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithPropagators sets the propagator that writes the producer's context into
// message properties and reads it back on the consumer. If none is
// specified, the global propagator (otel.GetTextMapPropagator) is used; its
// default propagates nothing, so set one (usually
// propagation.NewCompositeTextMapPropagator(propagation.TraceContext{},
// propagation.Baggage{})) on both sides. A nil propagator is ignored. Read by
// Middleware and ProducerInterceptor.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.prop = p
		}
	}
}

// WithParentFromMessage makes the producer's span, carried in the message
// properties, the parent of the process span instead of a link to it, so
// that producer and consumer share one trace. The default is a link, as the
// messaging conventions recommend: a message may be processed long after it
// was sent, retried, or fan out to many groups, and a trace kept open that
// long is hard to read. Read by Middleware.
func WithParentFromMessage() Option { return func(c *config) { c.parent = true } }

// ConsumptionModel is the value of messaging.rocketmq.consumption_model.
type ConsumptionModel string

const (
	// Clustering: each message goes to one consumer of the group. It is the
	// default, and what consumer.Consumer does.
	Clustering ConsumptionModel = "clustering"
	// Broadcasting: each message goes to every consumer of the group.
	Broadcasting ConsumptionModel = "broadcasting"
)

// WithConsumptionModel sets messaging.rocketmq.consumption_model on process
// spans. The default is Clustering; give Broadcasting for consumers that
// deliver every message to every instance. Other values are ignored. Read by
// Middleware.
func WithConsumptionModel(m ConsumptionModel) Option {
	return func(c *config) {
		if m == Clustering || m == Broadcasting {
			c.model = m
		}
	}
}

// WithNamespace sets messaging.rocketmq.namespace on spans, for clients that
// use a RocketMQ namespace (consumer.WithNamespace,
// producer.WithNamespace). The default, "", records no namespace. Read by
// Middleware and ProducerInterceptor.
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// LagFunc returns the lag of a consumer's group, in messages, by topic: how
// many messages the brokers hold beyond the group's committed offsets.
type LagFunc func(ctx context.Context) (map[string]int64, error)

// WithLagFunc makes ObserveConsumer report rmqkit.consumer.lag from f, which
// is called once per metric collection, with the collection's context; it
// should return quickly (it usually asks the brokers). An error is passed to
// the OpenTelemetry error handler and that collection has no lag. The
// default is the consumer's own Lag; nil reports no lag. Read by
// ObserveConsumer and Instrument.
func WithLagFunc(f LagFunc) Option { return func(c *config) { c.lag, c.lagSet = f, true } }

// WithGauges makes ObserveConsumer register more observable gauges, read at
// each collection like its own. It is the extension point for consumer
// features that come with gauges of their own. Read by ObserveConsumer.
func WithGauges(g ...Gauge) Option {
	return func(c *config) { c.gauges = append(c.gauges, g...) }
}
