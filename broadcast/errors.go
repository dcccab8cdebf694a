package broadcast

import (
	"errors"

	"github.com/rmqkit/rmqkit/consumer"
)

var (
	// ErrInvalidOption is consumer.ErrInvalidOption: consumer.New with Mode, Subscribe,
	// NewGarbageCollector and the setters wrap it for a bad argument, naming
	// the argument, whether the consumer package or this one found it.
	ErrInvalidOption = consumer.ErrInvalidOption

	// ErrIdentityInUse is returned by Start when another client is already
	// connected under this instance's consumer group: another live process
	// resolved the same identity. The error names the identity and the other
	// client's id and address. Two processes in one derived group would split
	// its queues between them, so each would see only part of the messages;
	// Start refuses instead. See WithIdentityWait for a restarted process
	// whose previous incarnation the broker still lists.
	ErrIdentityInUse = errors.New("broadcast: instance identity in use")

	// ErrNoIdentity is returned by consumer.New with Mode when no identity was given, none is
	// in the environment and none could be read from or written to the state
	// directory; the error says why.
	ErrNoIdentity = errors.New("broadcast: no instance identity")
)
