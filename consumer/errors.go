package consumer

import "errors"

var (
	// ErrInvalidOption is wrapped by the errors New, Subscribe and the
	// setters return for a bad argument; the message names the argument.
	ErrInvalidOption = errors.New("consumer: invalid option")

	// ErrConflictingOptions is wrapped (with ErrInvalidOption) by the
	// error New or Subscribe returns for options that exclude each other,
	// such as WithSharedPool and WithPoolSize for one subscription; the
	// message names both. No option silently overrides another.
	ErrConflictingOptions = errors.New("consumer: conflicting options")

	// ErrNotInMode is returned for a feature that has no meaning in the
	// consumer's mode: a group quota (WithGroupQuota, SetGroupQuota) in a
	// mode where each instance joins a group of its own, such as
	// broadcast's.
	ErrNotInMode = errors.New("consumer: not available in this mode")

	// ErrStarted is returned by Subscribe and Start once Start has been
	// called.
	ErrStarted = errors.New("consumer: already started")

	// ErrNotStarted is returned by Stop when Start was never called.
	ErrNotStarted = errors.New("consumer: not started")

	// ErrStopped is returned by Start and Lag after Stop.
	ErrStopped = errors.New("consumer: stopped")

	// ErrUnknownSubscription is returned by setters that name a topic the
	// consumer does not subscribe to.
	ErrUnknownSubscription = errors.New("consumer: unknown subscription")

	// ErrDuplicateSubscription is returned by Subscribe for a topic that is
	// already subscribed.
	ErrDuplicateSubscription = errors.New("consumer: topic already subscribed")

	// ErrAccessDenied is returned by Start when a broker refuses the
	// consumer's credentials. The message names the broker, the access key
	// and the broker's reason, never the secret key.
	ErrAccessDenied = errors.New("consumer: access denied")

	// ErrNoLag is wrapped by Lag's error for subscribed topics the brokers
	// report no figures for.
	ErrNoLag = errors.New("consumer: no lag figures")

	// ErrMixedOrdering is returned by Subscribe when orderly and concurrent
	// subscriptions are mixed in one consumer: the client orders a whole
	// consumer group or none of it.
	ErrMixedOrdering = errors.New("consumer: orderly and concurrent subscriptions in one group")
)
