// Package consumer consumes RocketMQ messages through isolated, resizable
// worker pools, on top of github.com/apache/rocketmq-client-go/v2.
//
// A Consumer belongs to one consumer group and holds any number of
// subscriptions. Each subscription has a Handler and, by default, a worker
// pool of its own (package pool), so a slow or stuck subscription can only
// exhaust its own workers. Pool sizes change at run time with SetPoolSize.
// With WithAdaptivePool a subscription sizes its pool by itself: it finds
// the concurrency at which the handler's downstream gives its full
// throughput, at the lowest latency that reaches it (package
// pool/adaptive); SetPoolSize then pins the size.
//
// # Delivery
//
// Delivery is at least once. A Handler that returns nil acknowledges the
// message; one that returns an error or panics has the message redelivered
// through the group's retry topic, with the broker's back-off, until the
// subscription's maximum number of retries is reached; then the message goes
// to the group's dead-letter queue (%DLQ%group). Messages of an orderly
// subscription are handed over one at a time per queue, in queue order; a
// failed message is retried in place, never skipped.
//
// # Key order
//
// A key-ordered subscription (WithKeyOrdered) keeps order per business key
// instead of per queue: messages with the same key (the sharding key by
// default, or WithKey) are handled one at a time, in queue order; messages
// with different keys run in parallel on the subscription's pool, up to its
// size. A failed message is retried in place while its key waits and the
// other keys go on, then dead-lettered, and its key continues. A queue's
// offset is committed only once the messages taken with it (up to
// KeyOrderedIntake) are settled; see WithKeyOrdered for the crash bound and
// docs/key-ordered.md for the design and its measurements.
//
// # Back-pressure
//
// A concurrent consumer takes messages from the client in callbacks of up to
// 32 and fans each callback out to its subscription's pool; failed messages
// are settled one by one, so a message that succeeded is never redelivered
// because a neighbour in its callback failed. When a subscription's pool is
// full, its messages wait in the client's prefetch buffer (WithQueuePrefetch)
// and the client stops pulling once that is full. rmqkit configures the client so that this wait never triggers its
// 120-second idle-queue drop, and it renews the client's consume-start stamp
// of every waiting or running message so that the client's ConsumeTimeout
// never sends a message back while rmqkit still holds it.
//
// # Rate limits
//
// Before it reaches its pool, a message passes every rate limit that
// applies to it (package throttle), narrowest first: its subscription's
// (WithRate), its consumer's group limit (WithGroupRate, or WithGroupQuota
// for a total shared by all live instances of the group) and a process
// limiter shared by several consumers (WithProcessLimiter). A message held
// by a limit is neither failed nor retried: it waits like a message waiting
// for a worker, under the same back-pressure and lease renewal, and a
// message still held when Stop begins is redelivered later. SetRate,
// SetGroupRate and SetGroupQuota change limits live; messages already
// waiting follow the new limit at once.
//
// # Stopping
//
// Stop stops admitting messages to handlers, waits for running handlers
// until its context ends, persists offsets and shuts the client down.
// Messages that were fetched but not handled are not acknowledged: they are
// delivered again, to this group, after the next start or to another
// instance. A callback that had started some of its messages when Stop
// began starts the rest too (at most one per subscription is in that state),
// so that Stop never acknowledges part of a callback and redelivers the
// part already handled.
package consumer
