package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Message is a message handed to a Handler. Its fields are filled from the
// broker's message; Body shares memory with the client's copy and must not
// be modified.
type Message struct {
	Topic          string    // the topic subscribed to (not the retry topic)
	Tag            string    // the message's tag, empty if none
	Keys           string    // the message's keys, space-separated as RocketMQ stores them
	ID             string    // the message id set by the producer (UNIQ_KEY)
	Body           []byte    // the payload
	Group          string    // the consumer group receiving it
	Broker         string    // the broker that stored it
	QueueID        int       // the queue within the topic
	QueueOffset    int64     // the offset within the queue
	ReconsumeCount int       // how many times it was delivered before
	BornAt         time.Time // when the producer created it
	StoredAt       time.Time // when the broker stored it

	ext *primitive.MessageExt
	// When rmqkit received the message from the client, when a worker was
	// reserved for it and it began to wait for the rate limits, when it
	// passed them, and when the worker started its handler.
	received, gated, admitted, started time.Time
}

// Waits reports how long the message waited inside rmqkit before its
// handler started: for the rate limits (throttle) and then for a worker of
// its pool. Instrumentation records these on the message's span.
func (m *Message) Waits() (throttle, pool time.Duration) {
	if m.received.IsZero() || m.started.IsZero() {
		return 0, 0
	}
	throttle = m.admitted.Sub(m.gated)
	return throttle, m.started.Sub(m.received) - throttle
}

func newMessage(group, topic string, ext *primitive.MessageExt) *Message {
	m := new(Message)
	m.fill(group, topic, ext)
	return m
}

// fill sets m from the client's message; the hot path fills a Message that
// is part of a larger allocation instead of allocating one.
// topic is the subscription's: the client's ext.Topic carries the
// namespace prefix.
func (m *Message) fill(group, topic string, ext *primitive.MessageExt) {
	// Field by field: a composite literal assigned to *m is built aside
	// and copied whole, with a bulk write barrier, which cost more than
	// the rest of the fill.
	m.Topic = topic
	m.Tag = ext.GetTags()
	m.Keys = ext.GetKeys()
	m.ID = ext.MsgId
	m.Body = ext.Body
	m.Group = group
	m.Broker, m.QueueID = "", 0
	if q := ext.Queue; q != nil {
		m.Broker, m.QueueID = q.BrokerName, q.QueueId
	}
	m.QueueOffset = ext.QueueOffset
	m.ReconsumeCount = int(ext.ReconsumeTimes)
	m.BornAt = time.UnixMilli(ext.BornTimestamp)
	m.StoredAt = time.UnixMilli(ext.StoreTimestamp)
	m.ext = ext
	m.received, m.gated, m.admitted, m.started = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

// Property returns the user or system property key of the message, or ""
// when it has none. Producers put trace context and custom headers here.
func (m *Message) Property(key string) string {
	if m.ext == nil {
		return ""
	}
	return m.ext.GetProperty(key)
}

// NewTestMessage returns a Message with the given fields and properties,
// for tests of handlers and middleware that need no broker.
func NewTestMessage(topic, id string, body []byte, props map[string]string) *Message {
	ext := &primitive.MessageExt{Message: primitive.Message{Topic: topic, Body: body}, MsgId: id}
	for k, v := range props {
		ext.WithProperty(k, v)
	}
	return newMessage("", topic, ext)
}

// Handler processes one message. Returning nil acknowledges it; returning
// an error has it redelivered later. ctx ends when the consumer stops hard
// (Stop's context expired) or the handler's timeout passes.
type Handler func(ctx context.Context, msg *Message) error

// BatchHandler processes several messages of one subscription at once.
// Returning nil acknowledges them all. Returning a *BatchError has only the
// messages it lists redelivered (the others are acknowledged); any other
// error has every message of the batch redelivered.
type BatchHandler func(ctx context.Context, msgs []*Message) error

// BatchError is what a BatchHandler returns when only some messages of the
// batch failed: Failed holds their indexes in the batch. A BatchError
// whose indexes are out of range or repeated counts as a failure of the
// whole batch.
type BatchError struct {
	Failed []int // indexes into the batch of the messages that failed
	Err    error // why, for logs
}

// Error describes the failure.
func (e *BatchError) Error() string {
	return fmt.Sprintf("%d messages of the batch failed: %v", len(e.Failed), e.Err)
}

// Unwrap returns Err.
func (e *BatchError) Unwrap() error { return e.Err }

// valid reports whether the indexes fit a batch of n, without repeats, and
// name at least one message.
func (e *BatchError) valid(n int) bool {
	if len(e.Failed) == 0 || len(e.Failed) > n {
		return false
	}
	seen := make(map[int]bool, len(e.Failed))
	for _, i := range e.Failed {
		if i < 0 || i >= n || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// Middleware wraps a Handler, to add a cross-cutting concern such as
// tracing or metrics. Middleware given first runs first (outermost).
type Middleware func(next Handler) Handler
