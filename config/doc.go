// Package config drives a consumer from one declarative YAML document:
// rate limits at the process, group and subscription levels, pool sizes,
// and the start-only settings of each subscription.
//
//	group: orders                      # must be the consumer's group
//	processLimit: {rate: 0}            # the consumer's process limiter (consumer.WithProcessLimiter)
//	groupLimit: {rate: 2000, burst: 200, shared: true}   # shared: a quota for all instances
//	subscriptions:
//	  orders-created: {poolSize: 16, rate: 200, burst: 20, maxRetries: 16}
//	  orders-paid: {adaptivePool: {min: 2, max: 64, window: 1s}}   # consumer.WithAdaptivePool
//
// File is the one call from a file to a running consumer: given to
// consumer.New, it builds the subscriptions with the file's settings and
// follows the file's changes from Start to Stop, without a restart; the file
// wins over the code for every key it sets (see File). Watch does the same
// for a consumer built without File, WatchSource for any Source of the
// document (such as an etcd key, module
// github.com/rmqkit/rmqkit/contrib/etcdconfig), and Apply applies a document
// given in code through the same path.
//
// # Validation
//
// A document is validated as a whole before anything of it is applied:
// YAML syntax, unknown keys, wrong types, values out of range, a group or a
// topic that is not the consumer's, and start-only keys that differ from the
// running consumer. A rejected document changes nothing; the last good one
// stays in force. Errors wrap ErrInvalid, are *FieldError values (joined
// when there are several) and name the field and, when the document came
// from YAML, its line.
//
// # What a document manages
//
// A key left out is not managed by the document: the setting keeps its
// current value (what the code set, or the last document applied). To lift
// a rate limit, write rate: 0; deleting the key leaves the limit in force.
// processLimit and groupLimit are taken as a whole when present (rate 0 and
// burst 0 when left out inside them); a subscription's rate and burst
// likewise go together, and burst without rate is an error.
//
// Keys that the consumer fixes at Subscribe (orderly, keyOrdered,
// batchSize, maxRetries, adaptivePool) are start-only: a document whose value differs
// from the consumer's is rejected, saying so. Everything else applies live.
// poolSize and adaptivePool are exclusive in one subscription; a poolSize
// applied to an adaptive subscription pins its size (consumer.SetPoolSize).
package config
