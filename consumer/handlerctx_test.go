package consumer

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHandlerContextEndsAtItsDeadline(t *testing.T) {
	var h handlerContext
	h.init(context.Background(), 30*time.Millisecond)
	defer h.release()
	if h.Err() != nil {
		t.Fatalf("Err before the deadline = %v", h.Err())
	}
	select {
	case <-h.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed at the deadline")
	}
	if !errors.Is(h.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", h.Err())
	}
}

func TestHandlerContextEndsWithItsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	var h handlerContext
	h.init(parent, time.Hour)
	defer h.release()
	done := h.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed when the parent ended")
	}
	if !errors.Is(h.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", h.Err())
	}
	// A context derived by a handler follows it.
	var h2 handlerContext
	h2.init(parent, time.Hour)
	child, stop := context.WithTimeout(&h2, time.Hour)
	defer stop()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("derived Err = %v, want Canceled", child.Err())
	}
}

func TestHandlerContextWithoutDoneReportsTheDeadlineFromErr(t *testing.T) {
	var h handlerContext
	h.init(context.Background(), time.Millisecond)
	time.Sleep(5 * time.Millisecond) // past the deadline; no Done asked
	if !errors.Is(h.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", h.Err())
	}
	h.release()
	if d, ok := h.Deadline(); !ok || d.IsZero() {
		t.Fatal("Deadline not reported")
	}
}
