package consumer

import (
	"context"
	"fmt"
	"sync"
)

// batchThroughMiddleware runs a batch handler under per-message
// middleware: every message goes through the middleware chain as a single
// handler's message would (a span, a metric, a log line each), and the
// chains meet at a barrier where the batch handler is called once with the
// messages that reached it. Each chain then returns its own message's
// result. A middleware that returns without calling next settles its
// message with what it returned; the batch goes on without it.
func batchThroughMiddleware(ctx context.Context, h BatchHandler, mw []Middleware, msgs []*Message) error {
	n := len(msgs)
	b := &barrier{h: h, ctx: ctx, pending: n, arrived: make([]bool, n), results: make([]error, n), done: make(chan struct{})}
	index := make(map[*Message]int, n)
	for i, m := range msgs {
		index[m] = i
	}
	inner := chain(func(_ context.Context, m *Message) error {
		i, ok := index[m]
		if !ok {
			return fmt.Errorf("batch middleware replaced message %q", m.ID)
		}
		b.arrive(i, msgs)
		<-b.done
		return b.results[i]
	}, mw)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range msgs {
		wg.Go(func() {
			defer b.leave(i, msgs)
			errs[i] = safeHandler(ctx, inner, msgs[i])
		})
	}
	wg.Wait()
	be := &BatchError{}
	for i, err := range errs {
		if err != nil {
			be.Failed = append(be.Failed, i)
			if be.Err == nil {
				be.Err = err
			}
		}
	}
	if be.Failed == nil {
		return nil
	}
	return be
}

// barrier collects the messages whose middleware chain reached the batch
// handler, and calls it once every message has arrived or left.
type barrier struct {
	h   BatchHandler
	ctx context.Context

	mu      sync.Mutex
	pending int    // messages neither arrived nor left
	arrived []bool // reached the handler
	results []error
	done    chan struct{}
}

func (b *barrier) arrive(i int, msgs []*Message) {
	b.mu.Lock()
	if b.arrived[i] { // next called twice for one message
		b.mu.Unlock()
		return
	}
	b.arrived[i] = true
	b.pending--
	last := b.pending == 0
	b.mu.Unlock()
	if last {
		b.call(msgs)
	}
}

// leave is deferred by each chain: a chain that returned without arriving
// (a middleware did not call next, or panicked) no longer holds the batch.
func (b *barrier) leave(i int, msgs []*Message) {
	b.mu.Lock()
	if b.arrived[i] {
		b.mu.Unlock()
		return
	}
	b.pending--
	last := b.pending == 0
	b.mu.Unlock()
	if last {
		b.call(msgs)
	}
}

// call runs the batch handler with the arrived messages and hands each its
// result.
func (b *barrier) call(msgs []*Message) {
	defer close(b.done)
	var sub []*Message
	var at []int
	for i, ok := range b.arrived {
		if ok {
			sub = append(sub, msgs[i])
			at = append(at, i)
		}
	}
	if len(sub) == 0 {
		return
	}
	err := safeBatch(b.ctx, b.h, sub)
	if err == nil {
		return
	}
	if be, ok := err.(*BatchError); ok && be.valid(len(sub)) {
		for _, j := range be.Failed {
			b.results[at[j]] = be
		}
		return
	}
	for _, i := range at {
		b.results[i] = err
	}
}

// safeHandler runs a middleware chain, turning a panic into an error.
func safeHandler(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return h(ctx, m)
}
