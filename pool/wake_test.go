package pool

import (
	"context"
	"testing"
)

// A waiter whose context ends as it is woken gives its slot back, and its
// wake-up channel goes back to be reused with no stale wake-up in it: the
// next waiter to get that channel waits for a slot of its own.
func TestWaiterCancelledAsItIsWokenLeavesNoStaleWakeUp(t *testing.T) {
	p, err := New("wake", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for range 100 {
		if err := p.acquire(context.Background()); err != nil { // the only slot
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- p.acquire(ctx) }()
		for p.Stats().Waiting == 0 {
		}
		// Wake it and cancel it at once: its select sees both.
		p.mu.Lock()
		cancel()
		p.running--
		p.wakeLocked()
		p.mu.Unlock()
		if err := <-res; err == nil {
			p.release() // it took the slot: fine, give it back
		}
		if p.running != 0 {
			t.Fatalf("running = %d after the woken waiter left; want 0", p.running)
		}
		// A fresh channel from the pool must not wake anyone by itself.
		ch := p.waiters.Get().(chan struct{})
		select {
		case <-ch:
			t.Fatal("a reused wake-up channel carried a stale wake-up")
		default:
		}
		p.waiters.Put(ch)
	}
}
