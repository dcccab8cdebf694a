package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// keyedExt is a message of key k (as the Go producer writes it, or the Java
// one with java set) at offset off.
func keyedExt(k string, off int64, java bool) *primitive.MessageExt {
	m := ext(k+"-"+strconv.FormatInt(off, 10), 0)
	m.QueueOffset = off
	switch {
	case k == "":
	case java:
		m.WithProperty("__SHARDINGKEY", k)
	default:
		m.WithProperty(primitive.PropertyShardingKey, k)
	}
	return m
}

func orderlyCtx() context.Context {
	return primitive.WithOrderlyCtx(context.Background(), primitive.NewConsumeOrderlyContext())
}

// handlerCalls records handler calls: id and ReconsumeCount, in call order.
type handlerCalls struct {
	mu    sync.Mutex
	calls []string
}

func (h *handlerCalls) add(m *Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, m.ID+"#"+strconv.Itoa(m.ReconsumeCount))
}

func (h *handlerCalls) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

// A poison message is retried in place (its key waits behind it) up to the
// subscription's retries, then dead-lettered, never sent to the retry
// topic; its key then continues, and the callback is acknowledged.
func TestKeyedPoisonMessageIsRetriedInPlaceThenDeadLettered(t *testing.T) {
	var h handlerCalls
	c := running(t, func(_ context.Context, m *Message) error {
		h.add(m)
		if m.ID == "p-1" {
			return errors.New("poison")
		}
		return nil
	}, nil, WithKeyOrdered(), WithOrderlySuspend(time.Millisecond), WithMaxRetries(2))
	got, _ := c.consume(orderlyCtx(), keyedExt("p", 1, false), keyedExt("p", 2, true), keyedExt("q", 3, false))
	if got != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess once the poison message is dead-lettered", got)
	}
	var p []string
	for _, c := range h.list() {
		if c[0] == 'p' {
			p = append(p, c)
		}
	}
	want := []string{"p-1#0", "p-1#1", "p-1#2", "p-2#0"}
	if len(p) != len(want) {
		t.Fatalf("key p calls %v, want %v", p, want)
	}
	for i := range want {
		if p[i] != want[i] {
			t.Fatalf("key p calls %v, want %v", p, want)
		}
	}
	back := broker(c).handedBack()
	if len(back) != 1 || back[0].DelayLevel != -1 || back[0].OriginMsgID != "p-1" {
		t.Fatalf("handed back %+v, want p-1 once, to the dead-letter queue (delay -1)", back)
	}
	if st := c.Stats()[0]; st.DeadLettered != 1 || st.Failed != 3 || st.Succeeded != 2 {
		t.Fatalf("stats = %+v, want DeadLettered 1, Failed 3, Succeeded 2", st)
	}
	// A lane is freed by its goroutine just after its last message settles.
	if !waitCond(func() bool { return c.Stats()[0].KeyLanes == 0 }) {
		t.Fatalf("%d key lanes left, want 0", c.Stats()[0].KeyLanes)
	}
}

// A dead-letter hand-back that fails is tried again; the key does not go on
// without its message.
func TestKeyedFailedDeadLetterHoldsTheKeyUntilItWorks(t *testing.T) {
	var h handlerCalls
	c := running(t, func(_ context.Context, m *Message) error {
		h.add(m)
		if m.ID == "p-1" {
			return errors.New("poison")
		}
		return nil
	}, nil, WithKeyOrdered(), WithOrderlySuspend(5*time.Millisecond), WithMaxRetries(0))
	b := broker(c)
	b.mu.Lock()
	b.err = errors.New("broker away")
	b.mu.Unlock()
	done := make(chan rmq.ConsumeResult)
	go func() {
		r, _ := c.consume(orderlyCtx(), keyedExt("p", 1, false), keyedExt("p", 2, false))
		done <- r
	}()
	waitFor(t, "the dead-letter hand-back to be refused and tried again", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.refusals >= 3
	})
	if calls := h.list(); len(calls) != 1 {
		t.Fatalf("calls %v while p-1 could not be dead-lettered, want only p-1's", calls)
	}
	b.mu.Lock()
	b.err = nil
	b.mu.Unlock()
	if r := <-done; r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess", r)
	}
	if calls := h.list(); len(calls) != 2 || calls[1] != "p-2#0" {
		t.Fatalf("calls %v, want p-2 after p-1 was dead-lettered", calls)
	}
}

// The key is the sharding key under either property name, or the user's
// function.
func TestKeyedKeyIsTheShardingKeyOrTheUsersFunction(t *testing.T) {
	goKey, javaKey := keyedExt("a", 1, false), keyedExt("b", 2, true)
	if k := ShardingKey(newMessage("g", "t", goKey)); k != "a" {
		t.Fatalf("SHARDING_KEY: key %q, want a", k)
	}
	if k := ShardingKey(newMessage("g", "t", javaKey)); k != "b" {
		t.Fatalf("__SHARDINGKEY: key %q, want b", k)
	}
	if k := ShardingKey(newMessage("g", "t", keyedExt("", 3, false))); k != "" {
		t.Fatalf("no sharding key: key %q, want empty", k)
	}
	var mu sync.Mutex
	var keys []string
	c := running(t, func(context.Context, *Message) error { return nil }, nil, WithKeyOrdered(),
		WithKey(func(m *Message) string {
			mu.Lock()
			defer mu.Unlock()
			keys = append(keys, m.Keys)
			return m.Keys
		}))
	m := keyedExt("", 1, false)
	m.WithKeys([]string{"order-7"})
	if got, _ := c.consume(orderlyCtx(), m); got != rmq.ConsumeSuccess || len(keys) != 1 || keys[0] != "order-7" {
		t.Fatalf("consume = %v, key function saw %v; want success and [order-7]", got, keys)
	}
}

// A key-ordered subscription refuses options it cannot honour, and cannot
// share a consumer with subscriptions of another ordering.
func TestKeyedRefusesConflictingOptions(t *testing.T) {
	h := func(context.Context, *Message) error { return nil }
	bh := func(context.Context, []*Message) error { return nil }
	tests := []struct {
		name string
		opts []SubscribeOption
	}{
		{"with orderly", []SubscribeOption{WithKeyOrdered(), WithOrderly()}},
		{"with batch size", []SubscribeOption{WithKeyOrdered(), WithBatchSize(4)}},
		{"key function alone", []SubscribeOption{WithKey(ShardingKey)}},
		{"negative delay", []SubscribeOption{WithKeyOrdered(), WithOrderlySuspend(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("g", WithNameServer("127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Stop(context.Background()) })
			if err := c.Subscribe("t", All, h, tt.opts...); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("Subscribe = %v, want ErrInvalidOption", err)
			}
		})
	}
	t.Run("batch handler", func(t *testing.T) {
		c, err := New("g", WithNameServer("127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
		if err := c.SubscribeBatch("t", All, bh, WithKeyOrdered()); !errors.Is(err, ErrConflictingOptions) {
			t.Fatalf("SubscribeBatch = %v, want ErrConflictingOptions", err)
		}
	})
	for _, other := range [][]SubscribeOption{nil, {WithOrderly()}} {
		c, err := New("g", WithNameServer("127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
		if err := c.Subscribe("k", All, h, WithKeyOrdered()); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("o", All, h, other...); !errors.Is(err, ErrMixedOrdering) {
			t.Fatalf("Subscribe of another ordering = %v, want ErrMixedOrdering", err)
		}
	}
}

// A callback that has started a message when Stop begins finishes: its
// other messages start late, so the callback is acknowledged instead of
// redelivered whole. A callback that has started nothing is parked: not
// acknowledged, its messages come again after the restart.
func TestKeyedStopFinishesStartedCallbacksAndParksTheOthers(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var h handlerCalls
	c := running(t, func(_ context.Context, m *Message) error {
		h.add(m)
		if m.ID == "a-1" {
			close(started)
			<-release
		}
		return nil
	}, nil, WithKeyOrdered(), WithPoolSize(1))
	first := make(chan rmq.ConsumeResult)
	go func() {
		r, _ := c.consume(orderlyCtx(), keyedExt("a", 1, false), keyedExt("a", 2, false), keyedExt("b", 3, false))
		first <- r
	}()
	<-started
	// A second callback (another queue) waits for the one worker.
	second := make(chan rmq.ConsumeResult)
	go func() {
		r, _ := c.consume(orderlyCtx(), keyedExt("c", 1, false))
		second <- r
	}()
	if !waitCond(func() bool { return c.Stats()[0].Pool.Waiting > 0 }) {
		t.Fatal("second callback is not waiting for a worker")
	}
	stopped := make(chan error)
	go func() { stopped <- c.Stop(context.Background()) }()
	if !waitCond(func() bool { return c.admit.Err() != nil }) {
		t.Fatal("stop did not begin")
	}
	close(release)
	if r := <-first; r != rmq.ConsumeSuccess {
		t.Fatalf("started callback = %v, want it finished and acknowledged", r)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if r := <-second; r == rmq.ConsumeSuccess {
		t.Fatal("callback acknowledged although c-1 was never handled")
	}
	if calls := h.list(); len(calls) != 3 {
		t.Fatalf("handled %v, want a-1, a-2, b-3 (not c-1)", calls)
	}
	if st := c.Stats()[0]; st.Succeeded != 3 || st.Abandoned != 1 || st.Queued != 0 {
		t.Fatalf("stats = %+v, want 3 handled, c-1 abandoned, none queued", st)
	}
}

func waitCond(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// A key function that panics does not take the callback down: its messages
// are handled, in order among themselves.
func TestKeyedPanickingKeyFunctionOrdersItsMessagesTogether(t *testing.T) {
	var h handlerCalls
	c := running(t, func(_ context.Context, m *Message) error {
		h.add(m)
		return nil
	}, nil, WithKeyOrdered(), WithKey(func(m *Message) string {
		if m.Keys == "" {
			panic("no keys")
		}
		return m.Keys
	}))
	got, _ := c.consume(orderlyCtx(), keyedExt("", 1, false), keyedExt("", 2, false))
	if got != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v, want ConsumeSuccess", got)
	}
	if calls := h.list(); len(calls) != 2 || calls[0] != "-1#0" || calls[1] != "-2#0" {
		t.Fatalf("calls %v, want -1 then -2", calls)
	}
}
