package rmqotel

import (
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/propagation"

	"github.com/rmqkit/rmqkit/consumer"
)

// messageCarrier adapts a consumed message's properties to the propagator.
// Messages are read-only to handlers, so Set does nothing. Middleware
// passes a pointer to one kept in its pooled scratch: a pointer converts to
// the carrier interface without allocating, the two-word struct would not.
type messageCarrier struct {
	msg  *consumer.Message
	prop propagation.TextMapPropagator
}

var _ propagation.TextMapCarrier = messageCarrier{}

func (c messageCarrier) Get(key string) string { return c.msg.Property(key) }

func (c messageCarrier) Set(string, string) {}

// Keys lists the propagator's fields that the message has: a Message cannot
// list its properties, and the propagator needs no others.
func (c messageCarrier) Keys() []string {
	var keys []string
	for _, f := range c.prop.Fields() {
		if c.msg.Property(f) != "" {
			keys = append(keys, f)
		}
	}
	return keys
}

// producerCarrier adapts a message being sent to the propagator.
type producerCarrier struct{ msg *primitive.Message }

var _ propagation.TextMapCarrier = producerCarrier{}

func (c producerCarrier) Get(key string) string { return c.msg.GetProperty(key) }

func (c producerCarrier) Set(key, value string) { c.msg.WithProperty(key, value) }

func (c producerCarrier) Keys() []string {
	props := c.msg.GetProperties()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	return keys
}
