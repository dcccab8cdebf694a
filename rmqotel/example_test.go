package rmqotel_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// Middleware traces every message handed to a handler. Here a message from
// consumer.NewTestMessage goes through it directly; in an application it is
// given to consumer.WithMiddleware.
func ExampleMiddleware() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	handler := func(ctx context.Context, m *consumer.Message) error { return nil }
	traced := rmqotel.Middleware(rmqotel.WithTracerProvider(tp))(handler)

	msg := consumer.NewTestMessage("orders", "7F0000010001", []byte(`{"id":1}`), nil)
	msg.Group, msg.Tag = "billing", "paid"
	_ = traced(context.Background(), msg)

	s := spans.Ended()[0]
	fmt.Println(s.Name(), s.SpanKind())
	for _, kv := range s.Attributes() {
		if kv.Key == "messaging.consumer.group.name" || kv.Key == "messaging.rocketmq.message.tag" {
			fmt.Printf("%s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	// Output:
	// process orders consumer
	// messaging.consumer.group.name=billing
	// messaging.rocketmq.message.tag=paid
}

// A consumer whose spans and metrics go to the global providers, with the
// producer's span as the parent of each process span.
func ExampleMiddleware_consumer() {
	c, err := consumer.New("billing",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithMiddleware(rmqotel.Middleware(rmqotel.WithParentFromMessage())),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Subscribe("orders", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		// ctx carries the process span and the producer's baggage.
		return nil
	})
	stop, err := rmqotel.ObserveConsumer(c)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	// c.Start(ctx) ...
}

// ProducerInterceptor writes each send span's context into the message,
// where Middleware finds it on the consumer side.
func ExampleProducerInterceptor() {
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{"127.0.0.1:9876"})),
		producer.WithInterceptor(rmqotel.ProducerInterceptor(
			rmqotel.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		)),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = p // p.Start(); p.SendSync(ctx, msg) ...
}

// WithLagFunc adds rmqkit.consumer.lag; the function usually asks the
// brokers for the group's consume stats.
func ExampleWithLagFunc() {
	c, _ := consumer.New("billing", consumer.WithNameServer("127.0.0.1:9876"))
	lag := func(ctx context.Context) (map[string]int64, error) {
		return map[string]int64{"orders": 0}, nil // from an admin client
	}
	stop, err := rmqotel.ObserveConsumer(c, rmqotel.WithLagFunc(lag))
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
}

// Instrument is the one option that traces and measures a consumer: the
// middleware on every subscription, the gauges from Start to Stop, and the
// namespace, consumption model and lag read from the consumer itself.
func ExampleInstrument() {
	c, err := consumer.New("orders",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithNamespace("prod"), // spans get messaging.rocketmq.namespace=prod
		rmqotel.Instrument(rmqotel.WithParentFromMessage()),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Subscribe("orders", consumer.All, func(ctx context.Context, m *consumer.Message) error {
		return nil // ctx carries the process span
	})
	// c.Start(ctx) registers the gauges; c.Stop(ctx) removes them.
}
