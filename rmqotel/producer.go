package rmqotel

import (
	"context"
	"strconv"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
	"go.opentelemetry.io/otel/trace"
)

// ProducerInterceptor returns a rocketmq-client-go interceptor that traces
// and measures sends. Give it to producer.WithInterceptor.
//
// Each send gets a span "send <topic>" of kind PRODUCER, child of the span in
// the send's context, and the span's context is written into the message
// properties with the propagator (W3C traceparent and baggage with the usual
// propagator), where Middleware reads it. After SendSync the span carries
// messaging.message.id and messaging.destination.partition.id from the send
// result; an error, or a status other than SendOK, sets error.type (the
// error's Go type, or the status: "flush_disk_timeout",
// "flush_slave_timeout", "slave_not_available") and the span status.
// SendAsync and SendOneWay spans end when the request is handed to the
// network.
//
// Batches (SendSync with several messages) are encoded before interceptors
// run, so the context cannot be written into each message: the batch gets
// a span but its messages carry no context.
//
// It records messaging.client.operation.duration and
// messaging.client.sent.messages. Options read: WithTracerProvider,
// WithMeterProvider, WithPropagators, WithNamespace. Requests that are not a
// *primitive.Message (consumer interceptors) pass through untouched.
func ProducerInterceptor(opts ...Option) primitive.Interceptor {
	cfg := newConfig(opts)
	traceOff, metricsOff := cfg.tracingOff(), cfg.metricsOff()
	if traceOff && metricsOff {
		return func(ctx context.Context, req, reply interface{}, next primitive.Invoker) error {
			return next(ctx, req, reply)
		}
	}
	s := &sender{prop: cfg.prop, dests: newCache[string, *sendDest](), globals: cfg.globalDefaults()}
	if !traceOff {
		s.tracer = cfg.tracer()
	}
	if cfg.namespace != "" {
		s.namespace = []attribute.KeyValue{semconv.MessagingRocketMQNamespace(cfg.namespace)}
	}
	m := cfg.meter()
	var err error
	if s.duration, err = messagingconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(processBuckets...)); err != nil {
		otel.Handle(err)
	}
	if s.sent, err = messagingconv.NewClientSentMessages(m); err != nil {
		otel.Handle(err)
	}
	return s.intercept
}

type sender struct {
	tracer    trace.Tracer // nil when tracing is off
	prop      propagation.TextMapPropagator
	namespace []attribute.KeyValue
	duration  messagingconv.ClientOperationDuration
	sent      messagingconv.ClientSentMessages
	dests     *cache[string, *sendDest]
	globals   globalDefaults
}

type sendDest struct {
	spanName  string
	startOpts []trace.SpanStartOption
	metric    []attribute.KeyValue
	ok        attribute.Set
}

func (s *sender) dest(topic string) *sendDest {
	return s.dests.get(topic, func() *sendDest {
		attrs := []attribute.KeyValue{
			semconv.MessagingSystemRocketMQ,
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(topic),
		}
		return &sendDest{
			spanName: "send " + topic,
			startOpts: []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(append(attrs[:len(attrs):len(attrs)], s.namespace...)...),
			},
			metric: attrs,
			ok:     attribute.NewSet(attrs...),
		}
	})
}

func (s *sender) intercept(ctx context.Context, req, reply interface{}, next primitive.Invoker) error {
	msg, ok := req.(*primitive.Message)
	if !ok || msg == nil {
		return next(ctx, req, reply)
	}
	tracing := s.tracer != nil && s.globals.tracing()
	if !tracing && !s.duration.Enabled(ctx) && !s.sent.Enabled(ctx) {
		if !msg.Batch && s.globals.propagating() {
			s.prop.Inject(ctx, producerCarrier{msg}) // the caller's context, if any
		}
		return next(ctx, req, reply)
	}
	d := s.dest(msg.Topic)
	start := time.Now()
	var span trace.Span
	if tracing {
		ctx, span = s.tracer.Start(ctx, d.spanName, d.startOpts...)
		if span.IsRecording() {
			if tag := msg.GetTags(); tag != "" {
				span.SetAttributes(semconv.MessagingRocketMQMessageTag(tag))
			}
			if keys := splitKeys(msg.GetKeys()); len(keys) > 0 {
				span.SetAttributes(semconv.MessagingRocketMQMessageKeys(keys...))
			}
		}
	}
	if !msg.Batch && s.globals.propagating() {
		s.prop.Inject(ctx, producerCarrier{msg})
	}
	err := next(ctx, req, reply)
	res, _ := reply.(*primitive.SendResult)
	var errType attribute.KeyValue
	switch {
	case err != nil:
		errType = errorType(err)
	case res != nil && res.Status != primitive.SendOK:
		errType = semconv.ErrorTypeKey.String(sendStatus(res.Status))
	}
	failed := errType.Valid()
	if span != nil {
		if span.IsRecording() {
			id := msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
			if res != nil && res.MsgID != "" {
				id = res.MsgID
			}
			if id != "" && !msg.Batch {
				span.SetAttributes(semconv.MessagingMessageID(id))
			}
			if res != nil && res.MessageQueue != nil && err == nil {
				span.SetAttributes(semconv.MessagingDestinationPartitionID(strconv.Itoa(res.MessageQueue.QueueId)))
			}
		}
		if failed {
			span.SetAttributes(errType)
			desc := errType.Value.AsString()
			if err != nil {
				desc = err.Error()
			}
			span.SetStatus(codes.Error, desc)
		}
		span.End()
	}
	opt := metric.WithAttributeSet(d.ok)
	if failed {
		opt = metric.WithAttributes(append(d.metric[:len(d.metric):len(d.metric)], errType)...)
	}
	if s.duration.Enabled(ctx) {
		s.duration.Inst().Record(ctx, time.Since(start).Seconds(), opt)
	}
	if s.sent.Enabled(ctx) {
		s.sent.Inst().Add(ctx, 1, opt)
	}
	return err
}

func sendStatus(st primitive.SendStatus) string {
	switch st {
	case primitive.SendFlushDiskTimeout:
		return "flush_disk_timeout"
	case primitive.SendFlushSlaveTimeout:
		return "flush_slave_timeout"
	case primitive.SendSlaveNotAvailable:
		return "slave_not_available"
	default:
		return semconv.ErrorTypeOther.Value.AsString()
	}
}
