// Package broadcast delivers every message to every instance of an
// application, across restarts, with retries: a reliable replacement for
// RocketMQ's BROADCASTING mode.
//
// In the client's native broadcasting mode, offsets live in a local file
// whose path contains the client's IP and process id, so a restarted pod
// starts without them and skips what was produced while it was down; and a
// message whose handler fails is dropped, never retried. This package
// instead gives each instance a consumer group of its own, derived from a
// base group and a stable instance identity (baseGroup + "-" + identity),
// and consumes in clustering mode: offsets are kept by the broker, failures
// go through the group's retry topic and, after the maximum number of
// retries, to its dead-letter queue, exactly as for any clustered consumer.
// A broadcast consumer is a *consumer.Consumer with Mode attached, so pools,
// rate limits, middleware (tracing, metrics), live config, Stats and Lag
// apply unchanged; InstanceOf gives its identity and garbage collection.
//
// # Identity
//
// The identity is what makes a restarted process the same instance. It
// comes from the first of: WithIdentity; the environment variable POD_NAME,
// then HOSTNAME; an identity persisted in a state directory (WithStateDir,
// default os.UserConfigDir()/rmqkit/broadcast), created on first use. In
// Kubernetes, a StatefulSet's pods keep their names and so their identities;
// a Deployment's pods keep theirs across container restarts but not across
// rescheduling, which makes a new instance (and leaves a stale group for
// garbage collection). Two live processes with one identity would split one
// group's queues; Start detects this from the broker's connection list and
// fails with ErrIdentityInUse.
//
// # Delivery
//
// A new instance starts at the end of each queue, or at WithStartTime: it
// receives what is produced after its first start. A restarted instance
// resumes from the offsets it committed: it receives every message it had
// not acknowledged, none lost; messages it handled after its last offset
// commit (at most the prefetch buffer and one pull batch per queue, usually
// far fewer) come again after a crash. Stop waits for running handlers and
// commits, so a graceful restart repeats little or nothing. A failed message
// is retried on the instance that failed it only; other instances are not
// affected. Ordering is per queue with
// consumer.WithOrderly, as for any consumer.
//
// # Garbage collection
//
// An instance that never comes back leaves a consumer group (offsets, retry
// topic) on the broker. WithGarbageCollection, CollectGarbage or a
// GarbageCollector delete the groups of instances seen offline for longer
// than a TTL, and never one with a connected client. The TTL is also the
// longest an instance may be down and still resume: after it, the instance
// starts again as a new one.
package broadcast
