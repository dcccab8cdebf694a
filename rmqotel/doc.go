// Package rmqotel instruments rmqkit consumers and rocketmq-client-go
// producers with OpenTelemetry traces and metrics, following the OpenTelemetry
// semantic conventions for messaging (semconv v1.43.0, RocketMQ).
//
// Three pieces, each optional:
//
//   - Middleware, given to consumer.WithMiddleware, starts a CONSUMER span
//     "process <topic>" for every message handed to a handler, links it to
//     the producer's span (or makes that span its parent, with
//     WithParentFromMessage) and records messaging.process.duration,
//     messaging.client.consumed.messages and the time the message waited for
//     the rate limits and a worker.
//   - ProducerInterceptor, given to rocketmq-client-go's
//     producer.WithInterceptor, starts a PRODUCER span "send <topic>" and
//     writes its context into the message properties, where Middleware finds
//     it on the other side of the broker.
//   - ObserveConsumer reports a consumer's pools (capacity, running, waiting),
//     dead-lettered messages and, given WithLagFunc, its lag, as observable
//     instruments read at each collection.
//
// Like otelhttp, the package reads the global tracer provider, meter provider
// and propagator (otel.GetTracerProvider, otel.GetMeterProvider,
// otel.GetTextMapPropagator) when an instrument is built, unless
// WithTracerProvider, WithMeterProvider or WithPropagators says otherwise; it
// never sets them. The propagator must be set for context to travel from
// producer to consumer: the global default propagates nothing.
//
// No message body, and no property other than the propagator's own fields,
// is ever read into a span, an event or a metric. Metrics carry only
// low-cardinality attributes (system, group, topic, outcome, error type);
// message ids and keys go to spans only.
//
// When both providers are no-op implementations (trace/noop and metric/noop),
// Middleware returns the handler unchanged and ProducerInterceptor passes
// calls straight through. While the globals are left unset (an application
// that does not use OpenTelemetry), they do no tracing or metric work: a
// message costs a few atomic loads and no allocation, and once the
// application sets the globals, the instrumentation follows. See
// BenchmarkDispatch for the numbers.
//
// Everything this package returns is safe for simultaneous use by multiple
// goroutines.
package rmqotel
