package rmqotel

import (
	"errors"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ErrNilConsumer is returned by ObserveConsumer when the consumer is nil.
var ErrNilConsumer = errors.New("rmqotel: consumer is nil")

// panicError stands for a handler that panicked, in error.type.
type panicError struct{}

func (panicError) Error() string     { return "handler panicked" }
func (panicError) ErrorType() string { return "panic" }

var errPanic error = panicError{}

// errorType is the error.type of err: the value of its ErrorType method if
// it has one, else its Go type ("*net.OpError"), else "_OTHER".
func errorType(err error) attribute.KeyValue {
	kv := semconv.ErrorType(err)
	if kv.Value.AsString() == "" {
		return semconv.ErrorTypeOther
	}
	return kv
}
