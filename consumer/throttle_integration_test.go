//go:build integration

package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/throttle"
)

// counted is a consumer whose handler only counts.
type counted struct {
	*consumer.Consumer
	n atomic.Int64
}

// startCounted starts a consumer of a fresh group (or of group, if not
// empty) that counts the messages of topic, with the given options.
func startCounted(tb testing.TB, cl *rmqtest.Cluster, group, topic string, opts []consumer.Option, sopts ...consumer.SubscribeOption) *counted {
	tb.Helper()
	if group == "" {
		group = cl.NewGroup(tb)
	}
	base := []consumer.Option{
		consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
	}
	c, err := consumer.New(group, append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	cc := &counted{Consumer: c}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	err = c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		cc.n.Add(1)
		return nil
	}, sopts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return cc
}

// waitFirst waits until the consumer handled a message.
func (c *counted) waitFirst(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.n.Load() == 0 {
		if time.Now().After(deadline) {
			tb.Fatal("no message consumed within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rate measures the handled rate over window.
func (c *counted) rate(window time.Duration) float64 {
	n0, t0 := c.n.Load(), time.Now()
	time.Sleep(window)
	n1, t1 := c.n.Load(), time.Now()
	return float64(n1-n0) / t1.Sub(t0).Seconds()
}

func errPct(got, want float64) float64 { return 100 * (got - want) / want }

// rateBacklog returns a topic holding enough messages to consume at rate
// for warm-up plus window with a margin. Topics are shared per rate within
// the test binary; every run reads them with a fresh group.
var rateBacklogs sync.Map // rate -> *backlogTopic

type backlogTopic struct {
	once  sync.Once
	topic string
	n     int
}

func rateBacklog(tb testing.TB, cl *rmqtest.Cluster, rate float64, seconds float64) (string, int) {
	v, _ := rateBacklogs.LoadOrStore(rate, &backlogTopic{})
	bt := v.(*backlogTopic)
	bt.once.Do(func() {
		bt.n = int(rate*seconds*1.1) + int(rate/10) + 100
		bt.topic = cl.NewTopic(tb, rmqtest.Queues(8))
		began := time.Now()
		cl.NewProducer(tb).Produce(bt.topic, "r", bt.n)
		tb.Logf("produced %d messages for %v/s in %v", bt.n, rate, time.Since(began))
	})
	if bt.topic == "" {
		tb.Fatal("backlog production failed in another test")
	}
	return bt.topic, bt.n
}

// measureLimited consumes a backlog with a subscription limit of rate and
// returns the rate measured over window, after a warm-up second that
// contains the initial burst.
func measureLimited(tb testing.TB, cl *rmqtest.Cluster, rate float64, window time.Duration) float64 {
	const warmup = time.Second
	topic, n := rateBacklog(tb, cl, rate, (warmup + window).Seconds())
	c := startCounted(tb, cl, "", topic, nil, consumer.WithRate(throttle.Limit{Rate: rate}))
	c.waitFirst(tb)
	time.Sleep(warmup)
	got := c.rate(window)
	if left := int64(n) - c.n.Load(); left < int64(rate/10) {
		tb.Fatalf("backlog ran out during the window (%d left): the measurement is invalid", left)
	}
	return got
}

// The measured consume rate on the real broker is within 10% of the
// subscription's limit at 50, 500 and 5,000 messages per second, over a
// 5-second window that excludes the initial burst.
func TestConsumeRateFollowsTheLimit(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	for _, rate := range []float64{50, 500, 5000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			t.Parallel()
			got := measureLimited(t, cl, rate, 5*time.Second)
			t.Logf("limit %v/s: measured %.1f/s (%+.2f%%)", rate, got, errPct(got, rate))
			if math.Abs(errPct(got, rate)) > 10 {
				t.Fatalf("limit %v/s: measured %.1f/s, off by %+.1f%%", rate, got, errPct(got, rate))
			}
		})
	}
}

// SetRate changes the rate of a running consumer: the rate measured after
// the change follows the new limit, including for the messages that were
// already waiting.
func TestSetRateChangesTheMeasuredRateLive(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	cl.NewProducer(t).Produce(topic, "live", 6000)
	c := startCounted(t, cl, "", topic, nil, consumer.WithRate(throttle.Limit{Rate: 150}))
	c.waitFirst(t)
	time.Sleep(2 * time.Second) // past the start-up burst
	// 5-second windows, as for the fixed rates: shorter ones turn one
	// scheduling stall of a loaded machine into a 10% error.
	before := c.rate(5 * time.Second)
	if err := c.SetRate(topic, throttle.Limit{Rate: 600}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	after := c.rate(5 * time.Second)
	t.Logf("150/s: measured %.1f/s; after SetRate(600/s): %.1f/s", before, after)
	if math.Abs(errPct(before, 150)) > 10 || math.Abs(errPct(after, 600)) > 10 {
		t.Fatalf("measured %.1f/s at 150/s and %.1f/s after SetRate(600/s)", before, after)
	}
	if s := stats(c.Consumer, topic); s.Failed != 0 {
		t.Fatalf("throttled messages were counted as failed: %+v", s)
	}
}

// With a group quota, two instances split the total; when one stops, the
// other takes the whole quota once the broker no longer lists the first.
func TestGroupQuotaIsSplitBetweenLiveInstances(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	group := cl.NewGroup(t)
	cl.NewProducer(t).Produce(topic, "q", 8000)
	quota := []consumer.Option{
		consumer.WithGroupQuota(throttle.Limit{Rate: 200}),
		consumer.WithQuotaRefresh(time.Second),
	}
	a := startCounted(t, cl, group, topic, quota)
	b := startCounted(t, cl, group, topic, quota)
	waitInstances := func(c *counted, n int, limit time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		for c.Settings().Instances != n {
			if time.Since(began) > limit {
				t.Fatalf("instance count = %d after %v, want %d", c.Settings().Instances, limit, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(began)
	}
	waitInstances(a, 2, 30*time.Second)
	waitInstances(b, 2, 30*time.Second)
	a.waitFirst(t)
	b.waitFirst(t)
	time.Sleep(2 * time.Second) // rebalance settles; initial bursts pass

	var ra, rb float64
	var wg sync.WaitGroup
	wg.Go(func() { ra = a.rate(4 * time.Second) })
	wg.Go(func() { rb = b.rate(4 * time.Second) })
	wg.Wait()
	t.Logf("quota 200/s over 2 instances: %.1f/s + %.1f/s = %.1f/s", ra, rb, ra+rb)
	if math.Abs(errPct(ra, 100)) > 15 || math.Abs(errPct(rb, 100)) > 15 {
		t.Fatalf("instances consumed %.1f/s and %.1f/s, want about 100/s each", ra, rb)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	took := waitInstances(a, 1, 45*time.Second)
	time.Sleep(2 * time.Second) // the rebalance hands b's queues to a
	alone := a.rate(4 * time.Second)
	t.Logf("re-split %v after the other instance stopped; alone: %.1f/s", took.Round(time.Millisecond), alone)
	if math.Abs(errPct(alone, 200)) > 15 {
		t.Fatalf("the remaining instance consumed %.1f/s, want about 200/s", alone)
	}
}

// BenchmarkRateAccuracy reports the error of the measured consume rate
// against the subscription's limit, on the real broker (5-second windows
// after a warm-up second). err% is the absolute error; msg/s the measured
// rate.
func BenchmarkRateAccuracy(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	for _, rate := range []float64{50, 500, 5000} {
		b.Run(fmt.Sprintf("rate=%v", rate), func(b *testing.B) {
			var sumErr, sumRate float64
			for range b.N {
				got := measureLimited(b, cl, rate, 5*time.Second)
				sumErr += math.Abs(errPct(got, rate))
				sumRate += got
			}
			b.ReportMetric(sumErr/float64(b.N), "err%")
			b.ReportMetric(sumRate/float64(b.N), "msg/s")
		})
	}
}
