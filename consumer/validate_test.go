package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

func noop(context.Context, *consumer.Message) error { return nil }

func TestNewRejectsBadArgumentsNamingThem(t *testing.T) {
	ns := consumer.WithNameServer("127.0.0.1:9876")
	tests := []struct {
		name  string
		group string
		opts  []consumer.Option
		want  string
	}{
		{"empty group", "", []consumer.Option{ns}, "group: empty"},
		{"group with a space", "my group", []consumer.Option{ns}, `group "my group"`},
		{"group too long", strings.Repeat("g", 256), []consumer.Option{ns}, "longer than 255"},
		{"no name server", "g", nil, "name server"},
		{"empty name server", "g", []consumer.Option{consumer.WithNameServer("")}, "name server"},
		{"half credentials", "g", []consumer.Option{ns, consumer.WithCredentials("ak", "")}, "credentials"},
		{"negative retries", "g", []consumer.Option{ns, consumer.WithMaxRetries(-1)}, "max retries"},
		{"absurd retries", "g", []consumer.Option{ns, consumer.WithMaxRetries(1000)}, "max retries"},
		{"zero queue prefetch", "g", []consumer.Option{ns, consumer.WithQueuePrefetch(0)}, "queue prefetch 0 messages"},
		{"zero queue prefetch MiB", "g", []consumer.Option{ns, consumer.WithQueuePrefetchMiB(0)}, "queue prefetch 0 MiB"},
		{"zero pool", "g", []consumer.Option{ns, consumer.WithPoolSize(0)}, "pool size"},
		{"negative handler timeout", "g", []consumer.Option{ns, consumer.WithHandlerTimeout(-1)}, "handler timeout"},
		{"tiny consume timeout", "g", []consumer.Option{ns, consumer.WithClientConsumeTimeout(1)}, "consume timeout"},
		{"nil middleware", "g", []consumer.Option{ns, consumer.WithMiddleware(nil)}, "middleware 0"},
		{"negative group rate", "g", []consumer.Option{ns, consumer.WithGroupRate(throttle.Limit{Rate: -1})}, "group limit"},
		{"absurd group quota", "g", []consumer.Option{ns, consumer.WithGroupQuota(throttle.Limit{Rate: 1e9})}, "group limit"},
		{"tiny quota refresh", "g", []consumer.Option{ns, consumer.WithQuotaRefresh(time.Millisecond)}, "quota refresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := consumer.New(tt.group, tt.opts...)
			if !errors.Is(err, consumer.ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want ErrInvalidOption naming %q", err, tt.want)
			}
		})
	}
}

func TestSubscribeRejectsBadArgumentsNamingThem(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		sel   consumer.Selector
		h     consumer.Handler
		opts  []consumer.SubscribeOption
		want  error
		msg   string
	}{
		{"empty topic", "", consumer.All, noop, nil, consumer.ErrInvalidOption, "topic: empty"},
		{"topic with a dot", "a.b", consumer.All, noop, nil, consumer.ErrInvalidOption, `topic "a.b"`},
		{"topic too long", strings.Repeat("t", 128), consumer.All, noop, nil, consumer.ErrInvalidOption, "longer than 127"},
		{"nil handler", "t", consumer.All, nil, nil, consumer.ErrInvalidOption, "handler is nil"},
		{"empty selector", "t", consumer.Tags(), noop, nil, consumer.ErrInvalidOption, "selector"},
		{"empty tag", "t", consumer.Tags("a", ""), noop, nil, consumer.ErrInvalidOption, "empty tag"},
		{"unbalanced sql", "t", consumer.SQL("(a > 1"), noop, nil, consumer.ErrInvalidOption, "unbalanced"},
		{"unterminated sql string", "t", consumer.SQL("a = 'x"), noop, nil, consumer.ErrInvalidOption, "unterminated"},
		{"zero pool", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithPoolSize(0)}, consumer.ErrInvalidOption, "pool size 0"},
		{"huge pool", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithPoolSize(pool.MaxSize + 1)}, consumer.ErrInvalidOption, "pool size"},
		{"batch size without a batch handler", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithBatchSize(8)}, consumer.ErrInvalidOption, "without SubscribeBatch"},
		{"suspend without order", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithOrderlySuspend(time.Second)}, consumer.ErrInvalidOption, "WithOrderlySuspend without"},
		{"zero suspend", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithOrderly(), consumer.WithOrderlySuspend(0)}, consumer.ErrInvalidOption, "suspend 0s"},
		{"nil subscription middleware", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithMiddleware(nil)}, consumer.ErrInvalidOption, "middleware 0"},
		{"negative retries", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithMaxRetries(-2)}, consumer.ErrInvalidOption, "max retries"},
		{"negative rate", "t", consumer.All, noop, []consumer.SubscribeOption{consumer.WithRate(throttle.Limit{Rate: -3})}, throttle.ErrInvalidLimit, "rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newUnstarted(t)
			err := c.Subscribe(tt.topic, tt.sel, tt.h, tt.opts...)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Subscribe = %v, want %v naming %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestSubscribeBatchRejectsBadBatchSizes(t *testing.T) {
	bh := func(context.Context, []*consumer.Message) error { return nil }
	for _, n := range []int{0, consumer.MaxBatchSize + 1} {
		err := newUnstarted(t).SubscribeBatch("t", consumer.All, bh, consumer.WithBatchSize(n))
		if !errors.Is(err, consumer.ErrInvalidOption) || !strings.Contains(err.Error(), "batch size") {
			t.Errorf("SubscribeBatch(WithBatchSize(%d)) = %v, want ErrInvalidOption naming the batch size", n, err)
		}
	}
	if err := newUnstarted(t).SubscribeBatch("t", consumer.All, nil); !errors.Is(err, consumer.ErrInvalidOption) {
		t.Errorf("SubscribeBatch(nil) = %v, want ErrInvalidOption", err)
	}
}

// Options that exclude each other are refused, naming both, whatever their
// order: no option silently undoes another.
func TestConflictingOptionsAreRefusedNamingBoth(t *testing.T) {
	ns := consumer.WithNameServer("127.0.0.1:1")
	shared, err := pool.New("shared", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close(context.Background()) })
	news := []struct {
		name string
		opts []consumer.Option
		want string
	}{
		{"group rate and quota", []consumer.Option{ns, consumer.WithGroupRate(throttle.Limit{Rate: 5}), consumer.WithGroupQuota(throttle.Limit{Rate: 9})}, "WithGroupRate and WithGroupQuota"},
		{"group quota and rate", []consumer.Option{ns, consumer.WithGroupQuota(throttle.Limit{Rate: 9}), consumer.WithGroupRate(throttle.Limit{Rate: 5})}, "WithGroupRate and WithGroupQuota"},
		{"connection and name server", []consumer.Option{consumer.WithConnection(consumer.Connection{NameServers: []string{"127.0.0.1:1"}}), ns}, "WithConnection and WithNameServer"},
		{"namespace and connection", []consumer.Option{consumer.WithNamespace("x"), consumer.WithConnection(consumer.Connection{NameServers: []string{"127.0.0.1:1"}})}, "WithConnection and WithNameServer"},
	}
	for _, tt := range news {
		t.Run(tt.name, func(t *testing.T) {
			_, err := consumer.New("g", tt.opts...)
			if !errors.Is(err, consumer.ErrConflictingOptions) || !errors.Is(err, consumer.ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want ErrConflictingOptions naming %q", err, tt.want)
			}
		})
	}
	subs := []struct {
		name string
		opts []consumer.SubscribeOption
		want string
	}{
		{"shared pool and pool size", []consumer.SubscribeOption{consumer.WithSharedPool(shared), consumer.WithPoolSize(8)}, "WithSharedPool and WithPoolSize"},
		{"pool size and shared pool", []consumer.SubscribeOption{consumer.WithPoolSize(8), consumer.WithSharedPool(shared)}, "WithSharedPool and WithPoolSize"},
		{"shared pool and adaptive pool", []consumer.SubscribeOption{consumer.WithSharedPool(shared), consumer.WithAdaptivePool(consumer.Adaptive{})}, "WithSharedPool and WithAdaptivePool"},
		{"orderly and key-ordered", []consumer.SubscribeOption{consumer.WithOrderly(), consumer.WithKeyOrdered()}, "WithKeyOrdered and WithOrderly"},
	}
	for _, tt := range subs {
		t.Run(tt.name, func(t *testing.T) {
			err := newUnstarted(t).Subscribe("t", consumer.All, noop, tt.opts...)
			if !errors.Is(err, consumer.ErrConflictingOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Subscribe = %v, want ErrConflictingOptions naming %q", err, tt.want)
			}
		})
	}
	t.Run("orderly batch", func(t *testing.T) {
		err := newUnstarted(t).SubscribeBatch("t", consumer.All, func(context.Context, []*consumer.Message) error { return nil }, consumer.WithOrderly())
		if !errors.Is(err, consumer.ErrConflictingOptions) || !strings.Contains(err.Error(), "WithOrderly and SubscribeBatch") {
			t.Fatalf("SubscribeBatch = %v, want ErrConflictingOptions naming WithOrderly and SubscribeBatch", err)
		}
	})
	t.Run("consumer pool size and a shared pool", func(t *testing.T) {
		// The consumer's pool size is a default, which a shared pool
		// simply does not use: no conflict.
		c, err := consumer.New("g", ns, consumer.WithPoolSize(3))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
		if err := c.Subscribe("t", consumer.All, noop, consumer.WithSharedPool(shared)); err != nil {
			t.Fatalf("Subscribe = %v", err)
		}
	})
}

// A tuning option given to New is every subscription's default; given to
// Subscribe it wins for that subscription.
func TestTuningOptionsSubscriptionValueWins(t *testing.T) {
	c, err := consumer.New("g", consumer.WithNameServer("127.0.0.1:1"),
		consumer.WithPoolSize(5), consumer.WithMaxRetries(3), consumer.WithRate(throttle.Limit{Rate: 100}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.Subscribe("defaults", consumer.All, noop); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("own", consumer.All, noop,
		consumer.WithPoolSize(9), consumer.WithMaxRetries(0), consumer.WithRate(throttle.Limit{Rate: 7})); err != nil {
		t.Fatal(err)
	}
	set := c.Settings().Subscriptions // sorted by topic
	if d := set[0]; d.Topic != "defaults" || d.PoolSize != 5 || d.MaxRetries != 3 || d.Rate.Rate != 100 {
		t.Errorf("defaults = %+v, want the consumer's pool 5, retries 3, rate 100", d)
	}
	if o := set[1]; o.Topic != "own" || o.PoolSize != 9 || o.MaxRetries != 0 || o.Rate.Rate != 7 {
		t.Errorf("own = %+v, want its own pool 9, retries 0, rate 7", o)
	}
}

func newUnstarted(t *testing.T) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New("g", consumer.WithNameServer("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func TestSubscribeRejectsDuplicatesAndMixedOrdering(t *testing.T) {
	c := newUnstarted(t)
	if err := c.Subscribe("a", consumer.All, noop); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("a", consumer.All, noop); !errors.Is(err, consumer.ErrDuplicateSubscription) {
		t.Fatalf("second Subscribe(a) = %v, want ErrDuplicateSubscription", err)
	}
	if err := c.Subscribe("b", consumer.All, noop, consumer.WithOrderly()); !errors.Is(err, consumer.ErrMixedOrdering) {
		t.Fatalf("orderly beside concurrent = %v, want ErrMixedOrdering", err)
	}
}

func TestSetPoolSizeRejectsBadValuesAndKeepsTheOldSize(t *testing.T) {
	c := newUnstarted(t)
	if err := c.Subscribe("a", consumer.All, noop, consumer.WithPoolSize(7)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, -1, pool.MaxSize + 1} {
		if err := c.SetPoolSize("a", n); !errors.Is(err, consumer.ErrInvalidOption) {
			t.Errorf("SetPoolSize(a, %d) = %v, want ErrInvalidOption", n, err)
		}
	}
	if err := c.SetPoolSize("nope", 3); !errors.Is(err, consumer.ErrUnknownSubscription) {
		t.Errorf("SetPoolSize(nope) = %v, want ErrUnknownSubscription", err)
	}
	if got := c.Stats()[0].Pool.Capacity; got != 7 {
		t.Fatalf("capacity = %d after rejected resizes, want 7", got)
	}
	if err := c.SetPoolSize("a", 3); err != nil || c.Stats()[0].Pool.Capacity != 3 {
		t.Fatalf("SetPoolSize(a, 3) = %v, capacity %d", err, c.Stats()[0].Pool.Capacity)
	}
}

func TestStartWithoutSubscriptionsFailsAndStopIsSafe(t *testing.T) {
	c := newUnstarted(t)
	if err := c.Start(context.Background()); !errors.Is(err, consumer.ErrInvalidOption) {
		t.Fatalf("Start = %v, want ErrInvalidOption", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
}

// The client's own Start can fail (here its option validation refuses a
// threshold rmqkit passes through): the consumer can then only be
// stopped, and Stop must not call the client's Shutdown, which panics
// after a failed start.
func TestStopIsSafeAfterTheClientsStartFailed(t *testing.T) {
	c, err := consumer.New("g", consumer.WithNameServer("127.0.0.1:1"),
		consumer.WithClientOptions(rmq.WithConsumeMessageBatchMaxSize(2000)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("a", consumer.All, noop); err != nil {
		t.Fatal(err)
	}
	err = c.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start") {
		t.Fatalf("Start = %v, want the client's start error", err)
	}
	if err := c.Start(context.Background()); !errors.Is(err, consumer.ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after the client's failed start = %v", err)
	}
}
