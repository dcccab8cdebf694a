package rmqotel

import (
	"go.opentelemetry.io/otel/attribute"
)

// Attributes rmqkit adds where the messaging conventions are silent. They
// live under "rmqkit." rather than "messaging.rocketmq." so that they never
// collide with an attribute the conventions may define later.
const (
	// OutcomeKey is the result of handling a message, on
	// messaging.client.consumed.messages: "success" or "failure".
	OutcomeKey = attribute.Key("rmqkit.outcome")
	// ReconsumeCountKey is how many times the message was delivered before
	// (RocketMQ's reconsumeTimes), on process spans. The conventions define
	// delivery counts for Service Bus and Pub/Sub only.
	ReconsumeCountKey = attribute.Key("rmqkit.message.reconsume_count")
	// ThrottleWaitKey is the time, in milliseconds, the message waited for
	// the subscription's rate limits before its handler started, on process
	// spans.
	ThrottleWaitKey = attribute.Key("rmqkit.wait.throttle_ms")
	// PoolWaitKey is the time, in milliseconds, the message waited for a
	// worker of its pool before its handler started, on process spans.
	PoolWaitKey = attribute.Key("rmqkit.wait.pool_ms")
	// PoolNameKey names the worker pool, on the rmqkit.pool.* gauges.
	PoolNameKey = attribute.Key("rmqkit.pool.name")
	// AdaptiveReasonKey is the reason of the adaptive controller's last
	// decision ("grow", "queueing", "throttled", ...), on
	// rmqkit.pool.adaptive.estimate.
	AdaptiveReasonKey = attribute.Key("rmqkit.pool.adaptive.reason")
)

// WaitEventName is the name of the span event that marks when rmqkit
// received the message from the client, before it waited for the rate limits
// and a worker. It carries ThrottleWaitKey and PoolWaitKey too. Only waits
// of a millisecond or more get one: shorter ones do not show at a trace's
// scale, and the span's attributes have them.
const WaitEventName = "rmqkit.wait"

var (
	outcomeSuccess = OutcomeKey.String("success")
	outcomeFailure = OutcomeKey.String("failure")
)
