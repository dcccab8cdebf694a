//go:build integration

package consumer_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// The latency benchmark: messages at a steady rate, each timed from its
// send to its handler's start and return (issue 14).
const (
	latencyRate    = 2_000            // msg/s, steady
	latencyWarm    = 2 * time.Second  // sent before the measured ones, not measured
	latencyMeasure = 10 * time.Second // measured messages: latencyRate x this
	latencyRounds  = 5                // rounds of rmqkit and raw, alternating order; medians reported
)

// latencyRecord keeps, per measured message of a paced run, the times from
// its SentAtProperty to its handler's start and return, in nanoseconds.
type latencyRecord struct {
	first           int // the first measured message's rmqtest.SeqProperty
	toStart, toDone []atomic.Int64
	seen            atomic.Int64 // messages of any kind handled (probes too)
	got             atomic.Int64 // measured messages recorded
}

func newLatencyRecord(first, n int) *latencyRecord {
	return &latencyRecord{first: first, toStart: make([]atomic.Int64, n), toDone: make([]atomic.Int64, n)}
}

// begin is called as a handler starts, with the message's properties. It
// returns the message's index and send time for end, or -1 for a message
// not measured (a probe, a warm-up message).
func (r *latencyRecord) begin(seq, sent string) (int, int64) {
	now := time.Now().UnixNano()
	r.seen.Add(1)
	i, err1 := strconv.Atoi(seq)
	s, err2 := strconv.ParseInt(sent, 10, 64)
	if i -= r.first; err1 != nil || err2 != nil || i < 0 || i >= len(r.toStart) {
		return -1, 0
	}
	r.toStart[i].Store(now - s)
	return i, s
}

// end is called as the handler returns.
func (r *latencyRecord) end(i int, sent int64) {
	if i < 0 {
		return
	}
	if r.toDone[i].Swap(time.Now().UnixNano()-sent) == 0 { // a redelivery counts once
		r.got.Add(1)
	}
}

// latencyRun is one run's percentiles, in milliseconds.
type latencyRun struct{ p50Start, p99Start, p50Done, p99Done float64 }

func (r *latencyRecord) percentiles() latencyRun {
	pct := func(xs []atomic.Int64) (p50, p99 float64) {
		s := make([]int64, len(xs))
		for i := range xs {
			s[i] = xs[i].Load()
		}
		slices.Sort(s)
		at := func(q float64) float64 { return float64(s[int(q*float64(len(s)-1))]) / 1e6 }
		return at(0.50), at(0.99)
	}
	var lr latencyRun
	lr.p50Start, lr.p99Start = pct(r.toStart)
	lr.p50Done, lr.p99Done = pct(r.toDone)
	return lr
}

// latencyMeasureRun creates a fresh topic, starts a consumer of a fresh
// group on it with start (which returns its stop), waits until it has
// handled a probe (rebalanced, pulling), then sends with p latencyWarm's
// worth of warm-up messages and latencyMeasure's worth of measured ones at
// latencyRate and waits until every measured one was handled.
func latencyMeasureRun(b *testing.B, cl *rmqtest.Cluster, p *rmqtest.Producer, start func(topic string, rec *latencyRecord) (stop func())) latencyRun {
	topic := cl.NewTopic(b, rmqtest.Queues(8))
	warmN, n := int(latencyRate*latencyWarm.Seconds()), int(latencyRate*latencyMeasure.Seconds())
	rec := newLatencyRecord(warmN, n)
	stop := start(topic, rec)
	defer stop()
	deadline := time.Now().Add(time.Minute)
	for k := 1; rec.seen.Load() == 0; k++ {
		p.ProducePaced(topic, -k, 1, 1) // negative sequence numbers are not measured
		rmqtest.WaitUntil(time.Second, func() bool { return rec.seen.Load() > 0 })
		if time.Now().After(deadline) {
			b.Fatal("the consumer handled no probe in a minute")
		}
	}
	p.ProducePaced(topic, 0, warmN+n, latencyRate)
	if !rmqtest.WaitUntil(time.Minute, func() bool { return rec.got.Load() == int64(n) }) {
		b.Fatalf("handled %d of %d measured messages a minute after the last was sent", rec.got.Load(), n)
	}
	return rec.percentiles()
}

// startLatencyRmqkit starts rmqkit with its defaults and a no-op handler.
func startLatencyRmqkit(b *testing.B, cl *rmqtest.Cluster) func(string, *latencyRecord) func() {
	return func(topic string, rec *latencyRecord) func() {
		c, err := consumer.New(cl.NewGroup(b), consumer.WithNameServer(cl.NameServer),
			consumer.WithStartPosition(consumer.StartFromEarliest), quiet())
		if err != nil {
			b.Fatal(err)
		}
		err = c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
			i, sent := rec.begin(m.Property(rmqtest.SeqProperty), m.Property(rmqtest.SentAtProperty))
			rec.end(i, sent)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = c.Stop(ctx)
		}
	}
}

// startLatencyRaw starts the plain client with its defaults and a no-op
// callback.
func startLatencyRaw(b *testing.B, cl *rmqtest.Cluster) func(string, *latencyRecord) func() {
	return func(topic string, rec *latencyRecord) func() {
		c, err := rmq.NewPushConsumer(
			rmq.WithGroupName(cl.NewGroup(b)),
			rmq.WithNsResolver(primitive.NewPassthroughResolver([]string{cl.NameServer})),
			rmq.WithInstance(rmqtest.Name(b, "raw")),
			rmq.WithConsumeFromWhere(rmq.ConsumeFromFirstOffset),
		)
		if err != nil {
			b.Fatal(err)
		}
		err = c.Subscribe(topic, rmq.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (rmq.ConsumeResult, error) {
			for _, m := range msgs {
				i, sent := rec.begin(m.GetProperty(rmqtest.SeqProperty), m.GetProperty(rmqtest.SentAtProperty))
				rec.end(i, sent)
			}
			return rmq.ConsumeSuccess, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		return func() { _ = c.Shutdown() }
	}
}

// BenchmarkLatency sends messages at a steady latencyRate (one message per
// send, from 16 goroutines) to a fresh topic per run and times each from
// its send (rmqtest.SentAtProperty, on this machine's clock) to its
// handler's start (born-to-start) and to its handler's return
// (born-to-done), through rmqkit's defaults and the plain Go client's
// defaults, each with a no-op handler. Each run sends latencyWarm's worth of
// unmeasured messages first, after the consumer has handled a probe.
//
// It runs latencyRounds rounds of both, alternating which goes first, and
// reports for each the medians over the rounds of p50 and p99 (ms); on raw,
// the medians of the per-round ratios rmqkit/raw of each figure. Run it
// with -benchtime 1x: the sub-benchmarks only report.
func BenchmarkLatency(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	p := cl.NewProducer(b) // one for every run: idle producers' loops would be CPU neighbours
	contenders := []struct {
		name  string
		start func(string, *latencyRecord) func()
	}{
		{"rmqkit", startLatencyRmqkit(b, cl)},
		{"raw", startLatencyRaw(b, cl)},
	}
	runs := map[string][]latencyRun{}
	for r := range latencyRounds {
		for i := range contenders {
			c := contenders[(i+r)%len(contenders)]
			lr := latencyMeasureRun(b, cl, p, c.start)
			runs[c.name] = append(runs[c.name], lr)
			b.Logf("round %d %s: born-to-start p50 %.2f ms p99 %.2f ms; born-to-done p50 %.2f ms p99 %.2f ms",
				r+1, c.name, lr.p50Start, lr.p99Start, lr.p50Done, lr.p99Done)
		}
	}
	figures := []struct {
		unit string
		f    func(latencyRun) float64
	}{
		{"p50-start-ms", func(r latencyRun) float64 { return r.p50Start }},
		{"p99-start-ms", func(r latencyRun) float64 { return r.p99Start }},
		{"p50-done-ms", func(r latencyRun) float64 { return r.p50Done }},
		{"p99-done-ms", func(r latencyRun) float64 { return r.p99Done }},
	}
	for _, c := range contenders {
		b.Run(c.name, func(b *testing.B) {
			for range b.N { // the runs were made above, in alternating order
			}
			for _, fig := range figures {
				var xs, ratios []float64
				for i, r := range runs[c.name] {
					xs = append(xs, fig.f(r))
					ratios = append(ratios, fig.f(runs["rmqkit"][i])/fig.f(r))
				}
				b.ReportMetric(median(xs), fig.unit)
				if c.name == "raw" {
					b.ReportMetric(median(ratios), "rmqkit/raw-"+fig.unit[:len(fig.unit)-3])
				}
			}
		})
	}
}
