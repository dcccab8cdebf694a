package rmqotel_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// broker returns an invoker that answers like a SendSync that stored the
// message with status st in queue 2, or fails with err.
func broker(st primitive.SendStatus, err error, sent **primitive.Message) primitive.Invoker {
	return func(_ context.Context, req, reply interface{}) error {
		*sent = req.(*primitive.Message)
		if err != nil {
			return err
		}
		res := reply.(*primitive.SendResult)
		res.Status, res.MsgID = st, "AC11000100002A9F0000000000000042"
		res.MessageQueue = &primitive.MessageQueue{Topic: "orders", BrokerName: "broker-a", QueueId: 2}
		return nil
	}
}

func TestProducerSpanIsInjectedIntoTheMessage(t *testing.T) {
	tel := newTelemetry(t)
	intercept := rmqotel.ProducerInterceptor(tel.opts(rmqotel.WithNamespace("prod"))...)
	ctx, caller := tel.tp.Tracer("app").Start(context.Background(), "checkout")
	msg := primitive.NewMessage("orders", []byte("{}")).WithTag("paid").WithKeys([]string{"order-1", "customer-9"})
	var sent *primitive.Message
	if err := intercept(ctx, msg, primitive.NewSendResult(), broker(primitive.SendOK, nil, &sent)); err != nil {
		t.Fatal(err)
	}
	caller.End()
	spans := tel.ended(t, 2)
	span := spans[0]
	if span.Name() != "send orders" || span.SpanKind() != trace.SpanKindProducer {
		t.Fatalf("span = %q %v, want \"send orders\" producer", span.Name(), span.SpanKind())
	}
	if !span.Parent().Equal(caller.SpanContext()) {
		t.Errorf("parent = %v, want the caller's span", span.Parent())
	}
	want := map[string]string{
		"messaging.system":                   "rocketmq",
		"messaging.operation.name":           "send",
		"messaging.operation.type":           "send",
		"messaging.destination.name":         "orders",
		"messaging.destination.partition.id": "2",
		"messaging.message.id":               "AC11000100002A9F0000000000000042",
		"messaging.rocketmq.message.tag":     "paid",
		"messaging.rocketmq.message.keys":    `["order-1","customer-9"]`,
		"messaging.rocketmq.namespace":       "prod",
	}
	if got := attrMap(span.Attributes()); !reflect.DeepEqual(got, want) {
		t.Errorf("attributes:\n got %v\nwant %v", got, want)
	}
	tp := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if got := sent.GetProperty("traceparent"); got != tp {
		t.Errorf("traceparent property = %q, want %q", got, tp)
	}

	// The consumer side links to exactly this span.
	props := map[string]string{"traceparent": sent.GetProperty("traceparent")}
	tel.spans.Reset()
	if err := rmqotel.Middleware(tel.opts()...)(ok)(context.Background(), consumer.NewTestMessage("orders", "id", nil, props)); err != nil {
		t.Fatal(err)
	}
	if links := tel.ended(t, 1)[0].Links(); len(links) != 1 || links[0].SpanContext.SpanID() != span.SpanContext().SpanID() || links[0].SpanContext.TraceID() != span.SpanContext().TraceID() {
		t.Errorf("consumer links = %v, want the send span", links)
	}
}

func TestProducerFailureSetsErrorType(t *testing.T) {
	tests := []struct {
		name     string
		status   primitive.SendStatus
		err      error
		wantType string
	}{
		{"send error", primitive.SendOK, errors.New("no route"), "*errors.errorString"},
		{"status not OK", primitive.SendFlushDiskTimeout, nil, "flush_disk_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			var sent *primitive.Message
			err := rmqotel.ProducerInterceptor(tel.opts()...)(context.Background(), primitive.NewMessage("orders", nil), primitive.NewSendResult(), broker(tt.status, tt.err, &sent))
			if err != tt.err {
				t.Fatalf("returned %v, want %v", err, tt.err)
			}
			span := tel.ended(t, 1)[0]
			if got := attrMap(span.Attributes())["error.type"]; got != tt.wantType || span.Status().Code != codes.Error {
				t.Errorf("error.type %q, status %+v; want %q, Error", got, span.Status(), tt.wantType)
			}
			sentMsgs := tel.metrics(t)["messaging.client.sent.messages"].Data.(metricdata.Sum[int64])
			if len(sentMsgs.DataPoints) != 1 || sentMsgs.DataPoints[0].Value != 1 {
				t.Fatalf("sent.messages = %+v", sentMsgs.DataPoints)
			}
			if v, _ := sentMsgs.DataPoints[0].Attributes.Value("error.type"); v.AsString() != tt.wantType {
				t.Errorf("sent.messages error.type = %q, want %q", v.AsString(), tt.wantType)
			}
		})
	}
}

func TestProducerInterceptorPassesOtherRequestsThrough(t *testing.T) {
	tel := newTelemetry(t)
	called := false
	req := []*primitive.MessageExt{{}}
	err := rmqotel.ProducerInterceptor(tel.opts()...)(context.Background(), req, nil, func(_ context.Context, r, _ interface{}) error {
		called = reflect.DeepEqual(r, req)
		return nil
	})
	if err != nil || !called || len(tel.spans.Ended()) != 0 {
		t.Errorf("err %v, called with the request %v, %d spans; want a plain pass-through", err, called, len(tel.spans.Ended()))
	}
}
