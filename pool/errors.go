package pool

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidSize is returned by New and Resize when the size is below 1
	// or above MaxSize. The pool keeps its previous size.
	ErrInvalidSize = errors.New("pool: invalid size")

	// ErrInvalidName is returned by New when the name is empty.
	ErrInvalidName = errors.New("pool: invalid name")

	// ErrClosed is returned by Do and Resize after Close.
	ErrClosed = errors.New("pool: closed")

	// ErrOverran is returned by DoWithin when it stopped waiting for a task
	// that is still running: past its hold, or because quit was closed.
	ErrOverran = errors.New("pool: task overran its hold")

	// ErrPanic is matched (errors.Is) by the *PanicError that Do returns
	// when a task panics.
	ErrPanic = errors.New("pool: task panicked")
)

// PanicError carries the value a task panicked with and the stack at the
// panic. It matches ErrPanic with errors.Is.
type PanicError struct {
	Value any
	Stack []byte
}

// Error describes the panic value; the stack is kept out of the message
// because it is long and may be logged line by line.
func (e *PanicError) Error() string { return fmt.Sprintf("pool: task panicked: %v", e.Value) }

// Unwrap lets errors.Is(err, ErrPanic) hold.
func (e *PanicError) Unwrap() error { return ErrPanic }
