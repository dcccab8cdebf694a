package consumer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/rmqkit/rmqkit/throttle"
)

func consumeAsync(c *Consumer, id string) <-chan rmq.ConsumeResult {
	out := make(chan rmq.ConsumeResult, 1)
	go func() {
		ctx, _ := concurrentCtx()
		r, _ := c.consume(ctx, ext(id, 0))
		out <- r
	}()
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A message held by a rate limit is neither failed nor retried: it waits,
// then is handled and acknowledged; its throttle wait is on the message.
func TestThrottledMessageWaitsAndIsNeitherFailedNorRetried(t *testing.T) {
	var mu sync.Mutex
	var second *Message
	c := running(t, func(_ context.Context, m *Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.ID == "second" {
			second = m
		}
		return nil
	}, nil, WithRate(throttle.Limit{Rate: 0.001, Burst: 1}))
	if r := <-consumeAsync(c, "first"); r != rmq.ConsumeSuccess {
		t.Fatalf("first = %v", r)
	}
	held := consumeAsync(c, "second")
	waitFor(t, "the second message to wait", func() bool { return c.Stats()[0].Throttle.Waiting == 1 })
	time.Sleep(50 * time.Millisecond)
	if s := c.Stats()[0]; s.Received != 2 || s.Succeeded != 1 || s.Failed != 0 || s.Pool.Running != 0 {
		t.Fatalf("while held: %+v", s)
	}
	if err := c.SetRate("t", throttle.Limit{}); err != nil {
		t.Fatal(err)
	}
	if r := <-held; r != rmq.ConsumeSuccess {
		t.Fatalf("held message = %v, want ConsumeSuccess", r)
	}
	if s := c.Stats()[0]; s.Succeeded != 2 || s.Failed != 0 || s.Throttle.Waits != 1 {
		t.Fatalf("after release: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if wait, _ := second.Waits(); wait < 40*time.Millisecond {
		t.Fatalf("throttle wait recorded on the message = %v, want >= 50ms", wait)
	}
}

// Stop ends a throttle wait: the message is abandoned (redelivered after
// the restart), not failed, and its callback returns after the shutdown.
func TestStopAbortsAThrottleWaitAndAbandonsTheMessage(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return nil }, nil, WithRate(throttle.Limit{Rate: 0.001, Burst: 1}))
	<-consumeAsync(c, "first")
	held := consumeAsync(c, "held")
	waitFor(t, "the message to wait", func() bool { return c.Stats()[0].Throttle.Waiting == 1 })
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the held callback did not return after Stop")
	}
	if s := c.Stats()[0]; s.Abandoned != 1 || s.Failed != 0 || s.Succeeded != 1 {
		t.Fatalf("stats = %+v, want 1 succeeded, 1 abandoned, 0 failed", s)
	}
}

// A message passes the subscription's, the group's and the process's
// limiters.
func TestMessagePassesEveryLevel(t *testing.T) {
	process, _ := throttle.New(throttle.Limit{Rate: throttle.MaxRate})
	c := running(t, func(context.Context, *Message) error { return nil },
		[]Option{WithProcessLimiter(process), WithGroupRate(throttle.Limit{Rate: throttle.MaxRate})},
		WithRate(throttle.Limit{Rate: throttle.MaxRate}))
	for range 3 {
		<-consumeAsync(c, "m")
	}
	for name, got := range map[string]uint64{
		"subscription": c.Stats()[0].Throttle.Admitted,
		"group":        c.glim.lim.Stats().Admitted,
		"process":      process.Stats().Admitted,
	} {
		if got != 3 {
			t.Errorf("%s limiter admitted %d messages, want 3", name, got)
		}
	}
	if c.ProcessLimiter() != process {
		t.Error("ProcessLimiter does not return the limiter given")
	}
}

func TestLiveSettersRejectInvalidLimitsAndKeepTheOld(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return nil },
		[]Option{WithGroupRate(throttle.Limit{Rate: 100})}, WithRate(throttle.Limit{Rate: 10}))
	bad := throttle.Limit{Rate: -1}
	for name, err := range map[string]error{
		"SetRate":       c.SetRate("t", bad),
		"SetGroupRate":  c.SetGroupRate(bad),
		"SetGroupQuota": c.SetGroupQuota(bad),
	} {
		if !errors.Is(err, ErrInvalidOption) || !errors.Is(err, throttle.ErrInvalidLimit) {
			t.Errorf("%s(invalid) = %v, want ErrInvalidOption and throttle.ErrInvalidLimit", name, err)
		}
	}
	if err := c.SetRate("nope", throttle.Limit{}); !errors.Is(err, ErrUnknownSubscription) {
		t.Errorf("SetRate(unknown topic) = %v, want ErrUnknownSubscription", err)
	}
	s := c.Settings()
	if s.GroupLimit != (throttle.Limit{Rate: 100}) || s.GroupQuota || s.Subscriptions[0].Rate != (throttle.Limit{Rate: 10}) {
		t.Fatalf("settings after rejected changes = %+v", s)
	}
}

type fakeCounter struct {
	mu  sync.Mutex
	n   int
	err error
}

func (f *fakeCounter) Instances(context.Context, string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.err
}

func (f *fakeCounter) set(n int, err error) {
	f.mu.Lock()
	f.n, f.err = n, err
	f.mu.Unlock()
}

func TestGroupQuotaIsSplitBetweenLiveInstances(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return nil },
		[]Option{WithGroupQuota(throttle.Limit{Rate: 300, Burst: 31})})
	fc := &fakeCounter{}
	c.glim.counter = fc
	ctx := context.Background()
	steps := []struct {
		name      string
		instances int
		err       error
		want      throttle.Limit
	}{
		{"three instances take a third each, burst rounded up", 3, nil, throttle.Limit{Rate: 100, Burst: 11}},
		{"one left takes the whole quota", 1, nil, throttle.Limit{Rate: 300, Burst: 31}},
		{"none listed yet counts as one", 0, nil, throttle.Limit{Rate: 300, Burst: 31}},
		{"two", 2, nil, throttle.Limit{Rate: 150, Burst: 16}},
		{"a failed count keeps the share", 0, errors.New("broker down"), throttle.Limit{Rate: 150, Burst: 16}},
	}
	for _, st := range steps {
		fc.set(st.instances, st.err)
		c.recountInstances(ctx)
		if got := c.glim.lim.Limit(); got != st.want {
			t.Fatalf("%s: share = %v, want %v", st.name, got, st.want)
		}
	}
	s := c.Settings()
	if !s.GroupQuota || s.Instances != 2 || s.GroupLimit != (throttle.Limit{Rate: 300, Burst: 31}) || s.InstanceLimit != (throttle.Limit{Rate: 150, Burst: 16}) {
		t.Fatalf("settings = %+v", s)
	}
	// A per-instance rate replaces the quota; counts no longer change it.
	if err := c.SetGroupRate(throttle.Limit{Rate: 40}); err != nil {
		t.Fatal(err)
	}
	fc.set(4, nil)
	c.recountInstances(ctx)
	if got := c.glim.lim.Limit(); got != (throttle.Limit{Rate: 40}) {
		t.Fatalf("per-instance rate after a recount = %v, want 40/s", got)
	}
	// Back to a quota: split with the last count at once.
	if err := c.SetGroupQuota(throttle.Limit{Rate: 400}); err != nil {
		t.Fatal(err)
	}
	if got := c.glim.lim.Limit(); got != (throttle.Limit{Rate: 100}) {
		t.Fatalf("quota 400 over 4 instances = %v, want 100/s", got)
	}
}

func TestQuotaLoopRecountsPeriodically(t *testing.T) {
	c := running(t, func(context.Context, *Message) error { return nil },
		[]Option{WithGroupQuota(throttle.Limit{Rate: 100}), WithQuotaRefresh(100 * time.Millisecond)})
	fc := &fakeCounter{n: 4}
	c.glim.counter = fc
	c.glim.start(c)
	waitFor(t, "the quota to be split in four", func() bool { return c.glim.lim.Limit().Rate == 25 })
	fc.set(2, nil)
	waitFor(t, "the quota to be re-split in two", func() bool { return c.glim.lim.Limit().Rate == 50 })
}
