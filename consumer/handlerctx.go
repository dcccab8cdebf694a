package consumer

import (
	"context"
	"sync"
	"time"
)

// handlerContext is the context a handler gets: it ends at the handler
// timeout, or when Stop cancels handlers (parent). It behaves like
// context.WithTimeout(parent, timeout) but costs nothing until someone
// asks for Done: context.WithTimeout registered every handler with the
// consumer's shared context under its lock and armed a timer, which more
// than doubled rmqkit's time per message (BenchmarkDispatch). A handler
// that waits on Done (I/O with the context) pays for the timer then.
// It lives inside its delivery, so it costs no allocation of its own.
type handlerContext struct {
	parent   context.Context
	deadline time.Time

	mu         sync.Mutex
	done       chan struct{} // made by the first Done
	err        error
	timer      *time.Timer
	stopParent func() bool
}

func (h *handlerContext) init(parent context.Context, timeout time.Duration) {
	h.initAt(parent, time.Now().Add(timeout))
}

// initAt is init with the deadline given, for a caller that has just read
// the clock.
func (h *handlerContext) initAt(parent context.Context, deadline time.Time) {
	h.parent, h.deadline = parent, deadline
}

// Deadline returns the handler timeout's end.
func (h *handlerContext) Deadline() (time.Time, bool) { return h.deadline, true }

// Value looks key up in the consumer's context.
func (h *handlerContext) Value(key any) any { return h.parent.Value(key) }

// Done returns a channel closed at the deadline or when the parent ends.
func (h *handlerContext) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done != nil {
		return h.done
	}
	h.done = make(chan struct{})
	if err := h.expiredLocked(); err != nil {
		h.err = err
		close(h.done)
		return h.done
	}
	h.timer = time.AfterFunc(time.Until(h.deadline), func() { h.cancel(context.DeadlineExceeded) })
	h.stopParent = context.AfterFunc(h.parent, func() { h.cancel(context.Canceled) })
	return h.done
}

// Err reports why the context ended, or nil.
func (h *handlerContext) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	return h.expiredLocked()
}

func (h *handlerContext) expiredLocked() error {
	if h.parent.Err() != nil {
		return context.Canceled
	}
	if !time.Now().Before(h.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (h *handlerContext) cancel(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
		close(h.done)
	}
}

// release ends the context after the handler returned, as the cancel of
// context.WithTimeout does, and frees its timer.
func (h *handlerContext) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		if h.err == nil {
			h.err = context.Canceled
		}
		return
	}
	h.timer.Stop()
	h.stopParent()
	if h.err == nil {
		h.err = context.Canceled
		close(h.done)
	}
}
