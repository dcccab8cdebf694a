package rmqotel

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/rmqkit/rmqkit/consumer"
)

// Middleware returns consumer middleware that traces and measures every
// message handed to a handler. Give it to consumer.WithMiddleware; placed
// first, its span and duration cover the other middleware too.
//
// For each message it starts a span "process <topic>" of kind CONSUMER when
// the handler is about to run (time spent waiting for the rate limits and a
// worker is recorded on it, not inside it), linked to the producer's span
// found in the message properties, or child of it with
// WithParentFromMessage. Baggage found there is put in the handler's context
// in both cases. The link is added once the span has started, so samplers
// do not see it (ParentBased and TraceIDRatioBased do not look at links);
// spans that are not recorded cost no link and no per-message attributes.
// A handler error sets error.type and the span status; a panic is recorded
// as error.type "panic" and goes on to the consumer, which recovers it.
//
// It records messaging.process.duration, messaging.client.consumed.messages
// (with rmqkit.outcome), rmqkit.throttle.wait.duration and
// rmqkit.pool.wait.duration:
//
//   - messaging.client.consumed.messages is an observable counter, read at
//     each collection from counts the middleware keeps per destination and
//     outcome: the monotonic sum a synchronous counter gives (summed over
//     every Middleware of a meter, cumulative or delta as the reader asks)
//     for an atomic add per message, but without exemplars.
//   - rmqkit.throttle.wait.duration records only the messages that went
//     through a rate limit (a throttle wait above zero; a pass too quick
//     for the clock to see counts as none): a subscription without one
//     records nothing, so its count is not the number of messages
//     processed. rmqkit.pool.wait.duration records every message.
//
// Options read: WithTracerProvider, WithMeterProvider, WithPropagators,
// WithParentFromMessage, WithConsumptionModel, WithNamespace.
//
// A batch handler (Consumer.SubscribeBatch) runs under the middleware message
// by message: each message of a batch gets its own span and metrics.
func Middleware(opts ...Option) consumer.Middleware {
	cfg := newConfig(opts)
	traceOff, metricsOff := cfg.tracingOff(), cfg.metricsOff()
	if traceOff && metricsOff {
		return func(next consumer.Handler) consumer.Handler { return next }
	}
	p := &processor{
		prop:    cfg.prop,
		parent:  cfg.parent,
		waits:   cfg.waits,
		dests:   newCache[destKey, *dest](),
		globals: cfg.globalDefaults(),
	}
	p.scratches.New = func() any { return new(scratch) }
	p.common = []attribute.KeyValue{
		semconv.MessagingSystemRocketMQ,
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingRocketMQConsumptionModelKey.String(string(cfg.model)),
	}
	if cfg.namespace != "" {
		p.common = append(p.common, semconv.MessagingRocketMQNamespace(cfg.namespace))
	}
	if !traceOff {
		p.tracer = cfg.tracer()
	}
	p.newInstruments(cfg.meter())
	p.counting = p.counting && !metricsOff
	return func(next consumer.Handler) consumer.Handler {
		return func(ctx context.Context, msg *consumer.Message) error {
			return p.handle(ctx, msg, next)
		}
	}
}

// processor holds what Middleware needs per message.
type processor struct {
	tracer trace.Tracer // nil when tracing is off
	prop   propagation.TextMapPropagator
	parent bool
	waits  func(*consumer.Message) (throttle, pool time.Duration)
	common []attribute.KeyValue // on every span, before the destination's
	// globals short-cut the work while the global defaults are unset.
	globals globalDefaults

	duration messagingconv.ProcessDuration
	// consumed is observed from the destinations' counts at each
	// collection (observeConsumed) rather than added to per message: an
	// atomic add costs a fraction of a synchronous counter's Add, and the
	// exported cumulative sum is the same. counting is false when the
	// instrument could not be made.
	consumed     metric.Int64ObservableCounter
	counting     bool
	throttleWait metric.Float64Histogram
	poolWait     metric.Float64Histogram

	dests     *cache[destKey, *dest]
	scratches sync.Pool // of *scratch
}

type destKey struct{ group, topic string }

// dest is what is the same for every message of one group and topic, built
// once so that the hot path allocates no attribute sets.
type dest struct {
	spanName  string
	startOpts []trace.SpanStartOption
	metric    []attribute.KeyValue  // system, operation, group, topic
	okRecord  []metric.RecordOption // duration of a success, and waits
	// failRecord holds the duration's options by error.type, built at the
	// first failure of each type (at most maxErrorTypes of them).
	failRecord *cache[string, []metric.RecordOption]

	// Messages handled by outcome, for messaging.client.consumed.messages.
	succeeded, failed       atomic.Int64
	succeededObs, failedObs []metric.ObserveOption
}

func (p *processor) dest(group, topic string) *dest {
	return p.dests.get(destKey{group, topic}, func() *dest {
		attrs := []attribute.KeyValue{
			semconv.MessagingSystemRocketMQ,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(topic),
		}
		if group != "" {
			attrs = append(attrs, semconv.MessagingConsumerGroupName(group))
		}
		span := append(append([]attribute.KeyValue(nil), p.common...), attrs[2:]...)
		d := &dest{
			spanName: "process " + topic,
			startOpts: []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(span...),
			},
			metric: attrs,
		}
		set := attribute.NewSet(attrs...)
		d.okRecord = []metric.RecordOption{metric.WithAttributeSet(set)}
		d.failRecord = newCache[string, []metric.RecordOption]()
		d.succeededObs = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(append(attrs[:len(attrs):len(attrs)], outcomeSuccess)...))}
		d.failedObs = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(append(attrs[:len(attrs):len(attrs)], outcomeFailure)...))}
		return d
	})
}

func (p *processor) handle(ctx context.Context, msg *consumer.Message, next consumer.Handler) error {
	tracing := p.tracer != nil && p.globals.tracing()
	measuring := p.measuring(ctx)
	if !tracing && !measuring {
		if p.globals.propagating() {
			ctx = p.contextOnly(ctx, msg)
		}
		return next(ctx, msg)
	}
	d := p.dest(msg.Group, msg.Topic)
	start := time.Now()
	throttle, pool := p.waits(msg)
	var span trace.Span
	if tracing {
		ctx, span = p.startSpan(ctx, msg, d, start, throttle, pool)
	} else if p.globals.propagating() {
		ctx = p.contextOnly(ctx, msg)
	}
	done := false
	defer func() {
		if !done { // the handler panicked; the consumer recovers it
			p.finish(ctx, d, span, start, throttle, pool, errPanic)
		}
	}()
	err := next(ctx, msg)
	done = true
	p.finish(ctx, d, span, start, throttle, pool, err)
	return err
}

func (p *processor) measuring(ctx context.Context) bool {
	return p.duration.Enabled(ctx) || p.throttleWait.Enabled(ctx) || p.poolWait.Enabled(ctx) ||
		p.counting && p.globals.metering()
}

// contextOnly gives the handler what the message carries when no span is
// recorded: its baggage, and with WithParentFromMessage the producer's span
// context, as a non-recording parent would.
func (p *processor) contextOnly(ctx context.Context, msg *consumer.Message) context.Context {
	s := p.scratch(msg)
	remote := p.prop.Extract(ctx, &s.carrier)
	p.release(s)
	if p.parent {
		return remote
	}
	if bag := baggage.FromContext(remote); bag.Len() > 0 {
		return baggage.ContextWithBaggage(ctx, bag)
	}
	return ctx
}

func (p *processor) startSpan(ctx context.Context, msg *consumer.Message, d *dest, start time.Time, throttle, pool time.Duration) (context.Context, trace.Span) {
	s := p.scratch(msg)
	remote := p.prop.Extract(ctx, &s.carrier)
	s.carrier = messageCarrier{} // what Extract returns does not refer to it
	startCtx := remote
	var link trace.SpanContext
	if !p.parent {
		// Without a producer span in the message, remote is ctx plus the
		// message's baggage: the start context as it is. With one, the
		// span links to it and starts from ctx with the baggage only
		// (trace.WithNewRoot would cost more: two allocations).
		if link = trace.SpanContextFromContext(remote); link.IsValid() {
			startCtx = ctx
			if bag := baggage.FromContext(remote); bag.Len() > 0 {
				startCtx = baggage.ContextWithBaggage(ctx, bag)
			}
		}
	}
	ctx, span := p.tracer.Start(startCtx, d.spanName, d.startOpts...)
	if !span.IsRecording() {
		// s's attribute buffers are untouched, still clear.
		p.scratches.Put(s)
		return ctx, span
	}
	defer p.release(s)
	if link.IsValid() {
		// Added after the start, not with trace.WithLinks, which costs a
		// closure and a copy of the options for every span, recorded or
		// not; samplers see no links (ParentBased and ratio samplers do
		// not look at them).
		span.AddLink(trace.Link{SpanContext: link})
	}
	// The SDK copies attributes: s's buffers are reused for the next message.
	attrs := append(s.attrs[:0], semconv.MessagingDestinationPartitionID(strconv.Itoa(msg.QueueID)))
	if msg.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(msg.ID))
	}
	if msg.Tag != "" {
		attrs = append(attrs, semconv.MessagingRocketMQMessageTag(msg.Tag))
	}
	if msg.Keys != "" {
		keys := s.keys[:0]
		for k := range strings.FieldsSeq(msg.Keys) {
			keys = append(keys, k)
		}
		if len(keys) > 0 {
			attrs = append(attrs, semconv.MessagingRocketMQMessageKeys(keys...))
		}
		s.keys = keys
	}
	attrs = append(attrs, ReconsumeCountKey.Int(msg.ReconsumeCount),
		ThrottleWaitKey.Float64(ms(throttle)), PoolWaitKey.Float64(ms(pool)))
	span.SetAttributes(attrs...)
	if wait := throttle + pool; wait >= minWaitEvent {
		// The event marks when rmqkit received the message; the span itself
		// starts with the handler, so that its length is the processing time.
		span.AddEvent(WaitEventName, trace.WithTimestamp(start.Add(-wait)), trace.WithAttributes(attrs[len(attrs)-2:]...))
	}
	return ctx, span
}

// minWaitEvent is the least wait that gets a WaitEventName event: shorter
// waits are invisible at a trace view's scale (and on every message of a
// busy consumer, where the event would cost more than the rest of the
// span); they stay in the span's wait attributes.
const minWaitEvent = time.Millisecond

// scratch is what starting one message's span needs for a moment, reused
// through a pool so that the hot path allocates neither the carrier (a
// pointer to it converts to the propagator's interface for free) nor the
// attribute and key slices.
type scratch struct {
	carrier messageCarrier
	attrs   [8]attribute.KeyValue // partition, id, tag, keys, reconsume count, two waits
	keys    []string
}

func (p *processor) scratch(msg *consumer.Message) *scratch {
	s := p.scratches.Get().(*scratch)
	s.carrier = messageCarrier{msg: msg, prop: p.prop}
	return s
}

func (p *processor) release(s *scratch) {
	// Drop the references to the message, which the pool would keep alive.
	s.carrier = messageCarrier{}
	s.attrs = [len(s.attrs)]attribute.KeyValue{}
	clear(s.keys)
	s.keys = s.keys[:0]
	p.scratches.Put(s)
}

func (p *processor) finish(ctx context.Context, d *dest, span trace.Span, start time.Time, throttle, pool time.Duration, err error) {
	elapsed := time.Since(start).Seconds()
	var errType attribute.KeyValue
	if err != nil {
		errType = errorType(err)
	}
	if span != nil {
		if err != nil {
			span.SetAttributes(errType)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if p.duration.Enabled(ctx) {
		if err == nil {
			p.duration.Inst().Record(ctx, elapsed, d.okRecord...)
		} else {
			p.duration.Inst().Record(ctx, elapsed, d.failRecordOpts(errType)...)
		}
	}
	if p.counting && p.globals.metering() {
		if err == nil {
			d.succeeded.Add(1)
		} else {
			d.failed.Add(1)
		}
	}
	// Only messages that went through a rate limit: without one the wait
	// is always zero (consumer sets both ends to one clock reading), and
	// recording it for every message of every subscription cost a whole
	// histogram record each.
	if throttle > 0 && p.throttleWait.Enabled(ctx) {
		p.throttleWait.Record(ctx, throttle.Seconds(), d.okRecord...)
	}
	if p.poolWait.Enabled(ctx) {
		p.poolWait.Record(ctx, pool.Seconds(), d.okRecord...)
	}
}

// maxErrorTypes bounds the error types whose attribute sets a destination
// keeps; the metric SDK has its own cardinality limit, this one only keeps
// an application that makes up error types from keeping a growing cache.
const maxErrorTypes = 64

// failRecordOpts returns the duration's record options for a failure of type
// errType: a set built once per type, where building it per call cost
// four allocations and a sort.
func (d *dest) failRecordOpts(errType attribute.KeyValue) []metric.RecordOption {
	build := func() []metric.RecordOption {
		attrs := append(d.metric[:len(d.metric):len(d.metric)], errType)
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
	}
	key := errType.Value.AsString()
	if m := *d.failRecord.m.Load(); len(m) >= maxErrorTypes {
		if opts, ok := m[key]; ok {
			return opts
		}
		return build()
	}
	return d.failRecord.get(key, build)
}

// observeConsumed reports every destination's counts of handled messages.
// A series appears with its first message, as a synchronous counter's
// would: counts still zero are not observed.
func (p *processor) observeConsumed(_ context.Context, o metric.Observer) error {
	for _, d := range *p.dests.m.Load() {
		if n := d.succeeded.Load(); n > 0 {
			o.ObserveInt64(p.consumed, n, d.succeededObs...)
		}
		if n := d.failed.Load(); n > 0 {
			o.ObserveInt64(p.consumed, n, d.failedObs...)
		}
	}
	return nil
}

// splitKeys splits keys the way RocketMQ joins them (by spaces).
func splitKeys(keys string) []string { return strings.Fields(keys) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// processBuckets are the bucket boundaries the messaging conventions advise
// for duration histograms, in seconds.
var processBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// waitBuckets reach further down, for waits that are usually near zero, and
// further up, for a pool that is saturated.
var waitBuckets = []float64{0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

func (p *processor) newInstruments(m metric.Meter) {
	var err error
	if p.duration, err = messagingconv.NewProcessDuration(m, metric.WithExplicitBucketBoundaries(processBuckets...)); err != nil {
		otel.Handle(err)
	}
	// The conventions' instrument, observable: same name, unit and
	// description as messagingconv.NewClientConsumedMessages.
	consumed, err := messagingconv.NewClientConsumedMessagesObservable(m)
	if err == nil {
		p.consumed = consumed.Inst()
		_, err = m.RegisterCallback(p.observeConsumed, p.consumed)
	}
	if err != nil {
		otel.Handle(err)
	} else {
		p.counting = true
	}
	p.throttleWait, err = m.Float64Histogram("rmqkit.throttle.wait.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time a message waited for its subscription's rate limits before its handler started."),
		metric.WithExplicitBucketBoundaries(waitBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	p.poolWait, err = m.Float64Histogram("rmqkit.pool.wait.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time a message waited for a worker of its pool before its handler started."),
		metric.WithExplicitBucketBoundaries(waitBuckets...))
	if err != nil {
		otel.Handle(err)
	}
}

// cache maps keys to values built once, read without locks: the map is
// replaced, never changed, when a key is added.
type cache[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

func newCache[K comparable, V any]() *cache[K, V] {
	c := &cache[K, V]{}
	m := map[K]V{}
	c.m.Store(&m)
	return c
}

func (c *cache[K, V]) get(k K, build func() V) V {
	if v, ok := (*c.m.Load())[k]; ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if v, ok := old[k]; ok {
		return v
	}
	v := build()
	m := make(map[K]V, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = v
	c.m.Store(&m)
	return v
}
