package migrate

import (
	"errors"
	"strconv"
)

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

	// ErrInvalidDocument is wrapped by every error ParseDocument and
	// WatchFile return for a control document that cannot be applied. None
	// of such a document is applied.
	ErrInvalidDocument = errors.New("migrate: invalid control document")
)

// FieldError is one reason a control document was rejected. Several are
// joined with errors.Join; errors.As finds the first. It wraps
// ErrInvalidDocument.
type FieldError struct {
	Field string // the key, e.g. "weight"; empty for the document as a whole
	Line  int    // the key's line, 1-based; 0 when unknown
	Msg   string // what is wrong
}

// Error formats the error as "migrate: field (line n): message".
func (e *FieldError) Error() string {
	s := "migrate: "
	if e.Field != "" {
		s += e.Field
		if e.Line > 0 {
			s += " (line " + strconv.Itoa(e.Line) + ")"
		}
		s += ": "
	} else if e.Line > 0 {
		s += "line " + strconv.Itoa(e.Line) + ": "
	}
	return s + e.Msg
}

// Unwrap returns ErrInvalidDocument.
func (e *FieldError) Unwrap() error { return ErrInvalidDocument }
