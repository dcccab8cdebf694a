// Package migrate moves a topic from one RocketMQ cluster to another while
// the service runs, without losing a message: consumers read both clusters
// until the old one is drained, producers shift traffic by weight.
//
// # Consumer side
//
// A Subscription is one logical subscription (group, topic, selector,
// handler, one worker pool and an optional process limiter) backed by a
// consumer.Consumer on each cluster that its Phase needs:
//
//	OldOnly  reads the old cluster only (before the migration)
//	Dual     reads both clusters
//	NewOnly  reads the new cluster only (after the migration)
//
// SetPhase switches at run time. Entering Dual starts the missing side at
// once. Leaving Dual waits until the side being left is drained (see
// below) and only then stops its consumer; ForcePhase skips that wait. The
// client cannot restart a stopped consumer, so a side that is needed again
// gets a fresh consumer.Consumer, with the same group, which resumes from
// the group's committed offsets on that cluster. OldOnly and NewOnly never
// switch directly into each other: the way goes through Dual.
//
// # Drain
//
// A side is drained when all of these held through one settle period
// (WithSettle, 10 s by default), as seen by readings of the broker's
// consume stats (GET_CONSUME_STATS) every WithLagInterval:
//
//   - the group's lag on the topic and on its retry topic %RETRY%group on
//     that cluster is zero (every message stored there is consumed and its
//     offset committed);
//   - the stored offsets of those queues did not move (no message arrived
//     during the period);
//   - no retry is pending: a message whose handler failed on that side is
//     held by the broker in SCHEDULE_TOPIC_XXXX for the retry delay before
//     it reaches %RETRY%group, invisible as lag. The Subscription records
//     each failure by message id and forgets it when the message is
//     delivered again on that side, or, when another instance of the group
//     consumed the redelivery, once a reading taken after the retry's due
//     time plus WithRetryGrace shows no lag.
//
// Drained and DrainedSide report it; Stats and WithOnDrainChange expose it
// for monitoring.
//
// # Producer side
//
// A Producer sends each message to the old or the new cluster by a
// weight, the percentage that goes to the new one (SetWeight). Messages
// with a sharding key go where FNV-1a(key) mod 100 < weight sends them, so
// for a given weight all messages of a key go to one cluster, and a key
// moves once, from old to new, as the weight grows. Messages without a key
// are spread by a smooth weighted counter: of every 100 such sends, weight
// go to the new cluster, evenly interleaved. A batch goes where its first
// message goes. A failed send returns its error unless WithFallback is set;
// then the other cluster is tried and the fallback is counted.
//
// Within a cluster, a message with a sharding key goes to the queue
// FNV-1a(key) mod the topic's queue count, so all messages of a key share
// a queue and an orderly subscription receives them in send order;
// keyless messages go round-robin (see WithProducerOptions to replace the
// selector).
//
// # Namespaces
//
// Cluster.Namespace gives a cluster a RocketMQ namespace: there the topic
// is ns%topic, the group ns%group and its retry topic %RETRY%ns%group,
// for the consumer, the producer's client and the drain readings alike.
// Handlers and callers keep the plain names.
//
// # Control
//
// Watch applies a small YAML document ({phase: dual, weight: 50}) to a
// Subscription and a Producer and follows the file's edits; the document may
// be the migration section of the consumer's configuration file (package
// config), so that one file drives both. WatchSource does the same for any
// config.Source. Documents are validated by package config's machinery:
// errors wrap config.ErrInvalid and are *config.FieldError values.
//
// See docs/migrate.md in the repository for the procedure.
package migrate
