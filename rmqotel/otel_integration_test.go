//go:build integration

package rmqotel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// tracedProducer starts a producer on cl with ProducerInterceptor.
func tracedProducer(t *testing.T, cl *rmqtest.Cluster, opts ...rmqotel.Option) interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
} {
	t.Helper()
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{cl.NameServer})),
		producer.WithGroupName(rmqtest.Name(t, "P")),
		producer.WithInstanceName(rmqtest.Name(t, "pi")),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10*time.Second),
		producer.WithInterceptor(rmqotel.ProducerInterceptor(opts...)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// sendTraced sends n messages (tag "t", keys "<id> k2") and returns the send
// span context of each, by message id.
func sendTraced(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, tel *telemetry, topic string, n int) (ids []string, sent map[string]trace.SpanContext) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("otel-%d", i)
		m := primitive.NewMessage(topic, []byte("BODY-"+id)).WithTag("t").WithKeys([]string{id, "k2"})
		m.WithProperty(rmqtest.IDProperty, id)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		res, err := p.SendSync(ctx, m)
		cancel()
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %v", id, res, err)
		}
		ids = append(ids, id)
	}
	sent = map[string]trace.SpanContext{}
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			sent[attrMap(s.Attributes())["messaging.message.id"]] = s.SpanContext()
		}
	}
	if len(sent) != n {
		t.Fatalf("%d send spans with a message id, want %d", len(sent), n)
	}
	return ids, sent
}

func processSpans(tel *telemetry) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == trace.SpanKindConsumer {
			out = append(out, s)
		}
	}
	return out
}

func TestOtelTraceLinksProducerToConsumerAcrossTheBroker(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic, group := cl.NewTopic(t), cl.NewGroup(t)
	tel := newTelemetry(t)
	ids, sent := sendTraced(t, tracedProducer(t, cl, tel.opts()...), tel, topic, 20)

	got := rmqtest.NewCollector()
	var handled atomic.Int64
	c, err := consumer.New(group,
		consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithMiddleware(rmqotel.Middleware(tel.opts()...)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	// A pool of 2 and a slow handler: messages wait for workers.
	err = c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		time.Sleep(20 * time.Millisecond)
		handled.Add(1)
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}, consumer.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	stop, err := rmqotel.ObserveConsumer(c, tel.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got.RequireAll(t, ids, 60*time.Second)
	deadline := time.Now().Add(5 * time.Second) // the last span ends after the handler returns
	for len(processSpans(tel)) < int(handled.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	spans := processSpans(tel)
	if len(spans) != int(handled.Load()) {
		t.Fatalf("%d process spans for %d handler calls", len(spans), handled.Load())
	}
	wantKeys := map[string]bool{}
	for _, id := range ids {
		wantKeys[fmt.Sprintf("[%q,%q]", id, "k2")] = true
	}
	waited := 0
	for _, s := range spans {
		a := attrMap(s.Attributes())
		id := a["messaging.message.id"]
		producer, ok := sent[id]
		if !ok {
			t.Errorf("process span for message %q that was not sent traced", id)
			continue
		}
		links := s.Links()
		if len(links) != 1 || links[0].SpanContext.TraceID() != producer.TraceID() || links[0].SpanContext.SpanID() != producer.SpanID() {
			t.Errorf("message %s: links %v, want the send span %v", id, links, producer)
		}
		want := map[string]string{
			"messaging.system":                     "rocketmq",
			"messaging.operation.name":             "process",
			"messaging.operation.type":             "process",
			"messaging.consumer.group.name":        group,
			"messaging.destination.name":           topic,
			"messaging.rocketmq.message.tag":       "t",
			"messaging.rocketmq.consumption_model": "clustering",
			"rmqkit.message.reconsume_count":       "0",
		}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("message %s: %s = %q, want %q", id, k, a[k], v)
			}
		}
		if s.Name() != "process "+topic {
			t.Errorf("span name %q", s.Name())
		}
		if q := a["messaging.destination.partition.id"]; q < "0" || q > "3" || len(q) != 1 {
			t.Errorf("message %s: partition id %q, want a queue of 4", id, q)
		}
		if k := a["messaging.rocketmq.message.keys"]; !wantKeys[k] {
			t.Errorf("message %s: keys %s", id, k)
		}
		if a["rmqkit.wait.pool_ms"] != "0" && len(s.Events()) == 1 {
			waited++
		}
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "BODY-") {
				t.Errorf("message %s: %s carries the body", id, kv.Key)
			}
		}
	}
	if waited == 0 {
		t.Errorf("no span recorded a pool wait, with 20 messages on 2 workers")
	}

	m := tel.metrics(t)
	if by := sumByOutcome(t, m["messaging.client.consumed.messages"]); by["success"] != handled.Load() || by["failure"] != 0 {
		t.Errorf("consumed.messages = %v, want success %d (handler calls)", by, handled.Load())
	}
	if n := histogramCount(t, m["messaging.process.duration"], attribute.String("messaging.destination.name", topic)); n != uint64(handled.Load()) {
		t.Errorf("process.duration count %d, want %d", n, handled.Load())
	}
	if n := histogramCount(t, m["rmqkit.pool.wait.duration"]); n != uint64(handled.Load()) {
		t.Errorf("pool.wait.duration count %d, want %d", n, handled.Load())
	}
	if caps := gaugeValues(t, group, m["rmqkit.pool.capacity"]); caps[topic] != 2 {
		t.Errorf("pool capacity gauge = %v, want %s: 2", caps, topic)
	}
	if running := gaugeValues(t, group, m["rmqkit.pool.running"]); running[topic] < 0 || running[topic] > 2 {
		t.Errorf("pool running gauge = %v", running)
	}
	if _, ok := gaugeValues(t, group, m["rmqkit.pool.waiting"])[topic]; !ok {
		t.Errorf("pool waiting gauge missing for %s", topic)
	}
	if sentCount := sumByOutcome(t, m["messaging.client.sent.messages"])[""]; sentCount != 20 {
		t.Errorf("sent.messages = %d, want 20", sentCount)
	}
}

// With WithParentFromMessage, producer and consumer share one trace, and a
// failed first delivery shows up as an error span, then a retry with its
// reconsume count, both children of the same send span.
func TestOtelTraceParentFromMessageAndRetries(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic, group := cl.NewTopic(t), cl.NewGroup(t)
	tel := newTelemetry(t)
	_, sent := sendTraced(t, tracedProducer(t, cl, tel.opts()...), tel, topic, 1)

	var mu sync.Mutex
	attempts := 0
	done := make(chan struct{})
	c, err := consumer.New(group,
		consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithMiddleware(rmqotel.Middleware(tel.opts(rmqotel.WithParentFromMessage())...)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	err = c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			return errors.New("first attempt fails")
		}
		if attempts == 2 {
			close(done)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the failed message was not redelivered within 90s")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processSpans(tel)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var producer trace.SpanContext
	for _, sc := range sent {
		producer = sc
	}
	spans := processSpans(tel)
	if len(spans) < 2 {
		t.Fatalf("%d process spans, want 2", len(spans))
	}
	first, second := attrMap(spans[0].Attributes()), attrMap(spans[1].Attributes())
	if first["error.type"] != "*errors.errorString" || first["rmqkit.message.reconsume_count"] != "0" {
		t.Errorf("first delivery: error.type %q, reconsume %s", first["error.type"], first["rmqkit.message.reconsume_count"])
	}
	if _, failed := second["error.type"]; failed || second["rmqkit.message.reconsume_count"] != "1" {
		t.Errorf("redelivery: error.type %q, reconsume %s; want none, 1", second["error.type"], second["rmqkit.message.reconsume_count"])
	}
	if second["messaging.destination.name"] != topic || second["messaging.message.id"] != first["messaging.message.id"] {
		t.Errorf("redelivery: destination %q id %q; want %q and the first delivery's id %q (not the retry topic's)",
			second["messaging.destination.name"], second["messaging.message.id"], topic, first["messaging.message.id"])
	}
	for i, s := range spans[:2] {
		if s.Parent().SpanID() != producer.SpanID() || s.SpanContext().TraceID() != producer.TraceID() || len(s.Links()) != 0 {
			t.Errorf("delivery %d: parent %v, links %v; want the send span %v as parent", i, s.Parent(), s.Links(), producer)
		}
	}
	if by := sumByOutcome(t, tel.metrics(t)["messaging.client.consumed.messages"]); by["failure"] != 1 || by["success"] < 1 {
		t.Errorf("consumed.messages = %v, want one failure and a success", by)
	}
}
