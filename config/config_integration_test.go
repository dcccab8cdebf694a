//go:build integration

package config_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/throttle"
)

// liveDoc is a document for group and topic with a pool size and a rate.
func liveDoc(group, topic string, pool int, rate float64) string {
	return fmt.Sprintf("group: %s\nsubscriptions:\n  %s:\n    poolSize: %d\n    rate: %v\n", group, topic, pool, rate)
}

// startFromFile builds and starts a consumer driven by the document at
// path (config.File), as a program would, subscribing h to the document's
// topics with sopts.
func startFromFile(tb testing.TB, cl *rmqtest.Cluster, path string, h consumer.Handler, sopts ...consumer.SubscribeOption) (*consumer.Consumer, *config.Watcher) {
	tb.Helper()
	doc, err := config.Load(path) // for its group and topics
	if err != nil {
		tb.Fatal(err)
	}
	c, err := consumer.New(doc.Group,
		consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
		config.File(path, config.WithLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	for topic := range doc.Subscriptions {
		if err := c.Subscribe(topic, consumer.All, h, sopts...); err != nil {
			tb.Fatal(err)
		}
	}
	if _, ok := config.WatcherOf(c); ok {
		tb.Fatal("WatcherOf found a watcher before Start")
	}
	if err := c.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	w, ok := config.WatcherOf(c)
	if !ok {
		tb.Fatal("WatcherOf found no watcher after Start")
	}
	return c, w
}

// A running consumer built with config.File follows the file's edits for
// the keys the file sets, while a key only the code sets keeps the code's
// value through every edit; Stop stops following the file.
func TestFileDrivesARunningConsumerAndLeavesTheCodesKeysAlone(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic, group := cl.NewTopic(t, rmqtest.Queues(2)), cl.NewGroup(t)
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	writeFile(t, path, fmt.Sprintf("group: %s\nsubscriptions:\n  %s: {poolSize: 2}\n", group, topic))
	c, w := startFromFile(t, cl, path, func(context.Context, *consumer.Message) error { return nil },
		consumer.WithPoolSize(5), consumer.WithRate(throttle.Limit{Rate: 40}))
	if s := c.Settings().Subscriptions[0]; s.PoolSize != 2 || s.Rate.Rate != 40 {
		t.Fatalf("after Start: pool %d, rate %v; want the file's pool 2 and the code's rate 40", s.PoolSize, s.Rate)
	}
	replaceFile(t, path, fmt.Sprintf("group: %s\nsubscriptions:\n  %s: {poolSize: 6}\n", group, topic))
	waitFor(t, 5*time.Second, "the edit", func() bool { return c.Settings().Subscriptions[0].PoolSize == 6 })
	if s := c.Settings().Subscriptions[0]; s.Rate.Rate != 40 {
		t.Fatalf("after the edit: rate %v; want the code's 40, which the file leaves out", s.Rate)
	}
	replaceFile(t, path, fmt.Sprintf("group: %s\nsubscriptions:\n  %s: {poolSize: 6, rate: 90}\n", group, topic))
	waitFor(t, 5*time.Second, "the rate edit", func() bool { return c.Settings().Subscriptions[0].Rate.Rate == 90 })
	if st := w.Stats(); st.Applied != 3 || st.Rejected != 0 {
		t.Fatalf("watcher stats = %+v, want 3 applied (Start and two edits)", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, fmt.Sprintf("group: %s\nsubscriptions:\n  %s: {poolSize: 3}\n", group, topic))
	// Nothing may happen: a negative, so a bounded wait of five debounce
	// periods.
	time.Sleep(500 * time.Millisecond)
	if st := w.Stats(); st.Applied != 3 || st.Rejected != 0 {
		t.Fatalf("after Stop the watcher read the edit (stats %+v); want it stopped with 3 applied, 0 rejected", st)
	}
}

// waitFor waits until cond holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}

// gauge tracks concurrent handler calls and their peak.
type gauge struct{ cur, peak atomic.Int64 }

func (g *gauge) enter() {
	c := g.cur.Add(1)
	for p := g.peak.Load(); c > p && !g.peak.CompareAndSwap(p, c); p = g.peak.Load() {
	}
}
func (g *gauge) leave()       { g.cur.Add(-1) }
func (g *gauge) reset() int64 { return g.peak.Swap(g.cur.Load()) }

// Editing the file of a running consumer changes its pool size and rate
// without a restart, and no message is lost.
func TestEditingTheFileChangesPoolSizeAndRateLiveWithoutLoss(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic, group := cl.NewTopic(t, rmqtest.Queues(4)), cl.NewGroup(t)
	ids := cl.NewProducer(t).Produce(topic, "live", 2000)
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	writeFile(t, path, liveDoc(group, topic, 2, 50))

	got := rmqtest.NewCollector()
	var g gauge
	var handled atomic.Int64
	c, w := startFromFile(t, cl, path, func(_ context.Context, m *consumer.Message) error {
		g.enter()
		defer g.leave()
		time.Sleep(20 * time.Millisecond)
		got.Add(m.Property(rmqtest.IDProperty))
		handled.Add(1)
		return nil
	})
	rate := func(d time.Duration) float64 {
		n0, t0 := handled.Load(), time.Now()
		time.Sleep(d)
		return float64(handled.Load()-n0) / time.Since(t0).Seconds()
	}
	for handled.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	g.reset()
	before := rate(3 * time.Second)
	peakBefore := g.reset()

	written := time.Now()
	replaceFile(t, path, liveDoc(group, topic, 8, 300))
	for s := c.Settings().Subscriptions[0]; s.PoolSize != 8 || s.Rate.Rate != 300; s = c.Settings().Subscriptions[0] {
		if time.Since(written) > 5*time.Second {
			t.Fatalf("the edit was not applied after 5s: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	applied := time.Since(written)
	time.Sleep(500 * time.Millisecond)
	g.reset()
	after := rate(3 * time.Second)
	peakAfter := g.reset()
	t.Logf("pool 2, 50/s: %.1f/s, peak concurrency %d; edit applied in %v; pool 8, 300/s: %.1f/s, peak concurrency %d",
		before, peakBefore, applied.Round(time.Millisecond), after, peakAfter)
	if applied > time.Second {
		t.Errorf("the edit took %v to apply, want under 1s", applied)
	}
	if errPct(before, 50) > 10 || errPct(after, 300) > 10 {
		t.Errorf("measured %.1f/s at 50/s and %.1f/s at 300/s", before, after)
	}
	if peakBefore > 2 || peakAfter <= 2 || peakAfter > 8 {
		t.Errorf("peak concurrency %d with pool 2 and %d with pool 8", peakBefore, peakAfter)
	}
	if st := w.Stats(); st.Applied != 2 || st.Rejected != 0 {
		t.Errorf("watcher stats = %+v", st)
	}
	r := got.RequireAll(t, ids, 60*time.Second)
	if r.Duplicates != 0 {
		t.Logf("%d duplicates (at-least-once)", r.Duplicates)
	}
}

func errPct(got, want float64) float64 {
	e := 100 * (got - want) / want
	if e < 0 {
		return -e
	}
	return e
}

// BenchmarkConfigApplyLatency reports the time from writing the file of a
// running consumer (on the real broker) to the new rate and pool size being
// in force, with the default 100ms debounce: ms/apply is the mean of ten
// edits, max-ms the slowest.
func BenchmarkConfigApplyLatency(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	topic, group := cl.NewTopic(b, rmqtest.Queues(2)), cl.NewGroup(b)
	path := filepath.Join(b.TempDir(), "rmqkit.yaml")
	writeFile(b, path, liveDoc(group, topic, 2, 100))
	c, _ := startFromFile(b, cl, path, func(context.Context, *consumer.Message) error { return nil })
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range 10 {
			pool, rate := 3+(i*10+j)%5, float64(200+i*10+j)
			written := time.Now()
			replaceFile(b, path, liveDoc(group, topic, pool, rate))
			for s := c.Settings().Subscriptions[0]; s.PoolSize != pool || s.Rate.Rate != rate; s = c.Settings().Subscriptions[0] {
				if time.Since(written) > 10*time.Second {
					b.Fatalf("edit %d not applied after 10s", j)
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(written))
			time.Sleep(50 * time.Millisecond)
		}
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "ms/apply")
	b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
}
