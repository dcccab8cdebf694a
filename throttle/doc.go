// Package throttle limits how fast messages are admitted to handlers, with
// limits that change at run time.
//
// A Limiter is a token bucket (golang.org/x/time/rate underneath) whose
// Limit can be replaced while callers wait on it. rmqkit's consumer admits
// a message only after it has passed every limiter that applies to it: the
// subscription's, the consumer group's and the process's (WaitAll). A
// message waiting there is neither failed nor retried: it stays in the
// client's prefetch buffer, and the client stops pulling when that is full.
//
// A zero Rate means unlimited; an unlimited Limiter costs one atomic load
// per Wait. Set replaces the limit and rejects nonsensical ones with an
// error wrapping ErrInvalidLimit, keeping the old limit in force.
package throttle
