package migrate

import "errors"

var (
	// ErrInvalidOption is wrapped by the errors that the constructors and
	// the setters (SetWeight, SetPhase) return for a bad argument; the
	// message names the argument.
	ErrInvalidOption = errors.New("migrate: invalid option")

	// ErrInvalidTransition is returned by SetPhase and ForcePhase for a
	// switch between OldOnly and NewOnly: it must go through Dual.
	ErrInvalidTransition = errors.New("migrate: invalid phase transition")

	// ErrStarted is returned by Subscription.Start when it runs already.
	ErrStarted = errors.New("migrate: already started")

	// ErrStopped is returned by the Subscription's methods after Stop, and
	// by a SetPhase whose drain wait Stop ended.
	ErrStopped = errors.New("migrate: stopped")

	// ErrClosed is returned by the Producer's send methods after Shutdown.
	ErrClosed = errors.New("migrate: producer shut down")

	// ErrTopicNotFound is returned by Drained and DrainedSide (and reported
	// in Stats) when the cluster's brokers report no queue of the topic for
	// the group: a side whose topic cannot be seen is never drained.
	ErrTopicNotFound = errors.New("migrate: topic not found on the cluster")
)
