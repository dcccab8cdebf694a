//go:build integration

package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// kneeDownstream is a simulated downstream, cheap on CPU: a call takes base
// while at most knee calls are in flight, and base·n/knee with n > knee in
// flight (a saturated resource shared in proportion).
type kneeDownstream struct {
	knee     int
	base     time.Duration
	inflight atomic.Int64
}

func (d *kneeDownstream) call(ctx context.Context) error {
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	wait := d.base
	if int(n) > d.knee {
		wait = time.Duration(int64(d.base) * n / int64(d.knee))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// httpDownstream serves the same downstream over a local HTTP server, for
// realism (connections, parsing, the HTTP client's pool).
func httpDownstream(tb testing.TB, d *kneeDownstream) func(context.Context) error {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := d.call(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	tb.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}}
	tb.Cleanup(client.CloseIdleConnections)
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("downstream: %s", resp.Status)
		}
		return nil
	}
}

// adpResult is one run over a backlog.
type adpResult struct {
	rate  float64       // messages per second, first to last
	p99   time.Duration // handler latency
	p50   time.Duration
	trace []int // pool size every traceEvery
	end   consumer.AdaptiveStats
}

const traceEvery = 250 * time.Millisecond

// traceString compresses a size trace: "2 3 5 8 12 9x40 4 9x39" (a value
// repeated n times is written vxn).
func (r adpResult) traceString() string {
	var b strings.Builder
	for i := 0; i < len(r.trace); {
		j := i
		for j < len(r.trace) && r.trace[j] == r.trace[i] {
			j++
		}
		if j-i > 1 {
			fmt.Fprintf(&b, "%dx%d ", r.trace[i], j-i)
		} else {
			fmt.Fprintf(&b, "%d ", r.trace[i])
		}
		i = j
	}
	return strings.TrimSpace(b.String())
}

// adpConsume runs a fresh group over topic until n messages were handled,
// each calling call, and measures the rate, the handler latency and the
// pool's size over time.
func adpConsume(tb testing.TB, cl *rmqtest.Cluster, topic string, n int, call func(context.Context) error, opts ...consumer.SubscribeOption) adpResult {
	tb.Helper()
	c, err := consumer.New(cl.NewGroup(tb), consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest), consumer.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	lat := make([]time.Duration, n)
	var (
		count atomic.Int64
		first atomic.Int64
		last  atomic.Int64
		done  = make(chan struct{})
		once  sync.Once
	)
	err = c.Subscribe(topic, consumer.All, func(ctx context.Context, _ *consumer.Message) error {
		start := time.Now()
		first.CompareAndSwap(0, start.UnixNano())
		if err := call(ctx); err != nil {
			return err
		}
		i := count.Add(1) - 1
		if i < int64(n) {
			lat[i] = time.Since(start)
			if i == int64(n)-1 {
				last.Store(time.Now().UnixNano())
				once.Do(func() { close(done) })
			}
		}
		return nil
	}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	var res adpResult
	tick := time.NewTicker(traceEvery)
	timeout := time.After(5 * time.Minute)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			if first.Load() != 0 {
				res.trace = append(res.trace, c.Stats()[0].Pool.Capacity)
			}
		case <-timeout:
			tb.Fatalf("handled %d of %d in 5 minutes", count.Load(), n)
		}
	}
	tick.Stop()
	res.end = c.Stats()[0].Adaptive
	_ = c.Stop(context.Background())
	res.rate = float64(n) / time.Duration(last.Load()-first.Load()).Seconds()
	slices.Sort(lat)
	res.p50, res.p99 = lat[n/2], lat[n*99/100]
	return res
}

// TestAdaptivePoolFindsTheKneeOfADownstream runs an adaptive subscription
// from a pool of 64 over a backlog whose handler calls a downstream that
// serves 8 calls at once in 5 ms: the pool settles near 8 (within [4, 12]
// once settled: a probe halves it for a window) at close to the
// downstream's capacity.
func TestAdaptivePoolFindsTheKneeOfADownstream(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	const k, n = 8, 16_000 // 1,600 msgs/s at capacity: 10 s
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	cl.NewProducer(t).Produce(topic, "adp", n)
	d := &kneeDownstream{knee: k, base: 5 * time.Millisecond}
	res := adpConsume(t, cl, topic, n, d.call, consumer.WithPoolSize(64),
		consumer.WithAdaptivePool(consumer.Adaptive{Min: 2, Max: 64, Window: 250 * time.Millisecond}))
	t.Logf("rate %.0f/s, p50 %v, p99 %v, end %+v\nsizes every %v: %s", res.rate, res.p50, res.p99, res.end, traceEvery, res.traceString())
	settled := res.trace[len(res.trace)/3:]
	sum := 0
	for i, l := range settled {
		if l > k*3/2 || l < k/2 {
			t.Fatalf("size %d at sample %d after settling; want within [%d, %d]: %s", l, i+len(res.trace)/3, k/2, k*3/2, res.traceString())
		}
		sum += l
	}
	// The pool's size is what the controller decides, and it does not
	// depend on how much CPU the machine has left: once settled it stays
	// near the knee on average (probes halve it for a window at a time).
	if mean := float64(sum) / float64(len(settled)); mean < 0.75*k {
		t.Fatalf("mean size %.1f after settling is below 0.75 of the knee %d: %s", mean, k, res.traceString())
	}
	// The rate depends on the CPU: make test runs this beside other tests
	// on 2 cores (alone it measured 1,417/s, p50 6.6 ms; at load 4 in CI
	// 938/s with the size at 10 most of the time; BenchmarkAdaptive has the
	// figures). Half the capacity still tells a pool stuck small (2 would
	// give 400/s) from one at the knee.
	capacity := float64(k) / d.base.Seconds()
	if res.rate < 0.5*capacity {
		t.Fatalf("rate %.0f/s is below half the downstream's capacity %.0f/s", res.rate, capacity)
	}
	if res.p50 > 2*d.base {
		t.Fatalf("median handler latency %v is above twice the unloaded %v: the pool queues at the downstream", res.p50, d.base)
	}
}

// adpBacklogs are produced once per process, one per knee, and re-read by
// a fresh group in every run.
var adpBacklogs sync.Map // knee -> topic

func adpBacklog(b *testing.B, cl *rmqtest.Cluster, k, n int) string {
	if t, ok := adpBacklogs.Load(k); ok {
		return t.(string)
	}
	topic := cl.NewTopic(b, rmqtest.Queues(8))
	start := time.Now()
	cl.NewProducer(b).Produce(topic, "adp", n)
	b.Logf("knee %d: produced %d messages in %v", k, n, time.Since(start))
	adpBacklogs.Store(k, topic)
	return topic
}

// BenchmarkAdaptive compares, on the same backlog, an adaptive pool
// (starting from pools of 2 and of 64) with the best fixed size of a sweep
// and with the default size (20), for a downstream whose knee is 64 (the
// default is far below it) and 8 (the default is above it). The handler
// calls an in-process downstream (5 ms up to k calls at once, in
// proportion beyond); the http variant goes through a local HTTP server.
// Adaptive windows are 250 ms, so that a run of ~20 s holds 80 of them.
// "start" is the pool's size before Start: the controller replaces it by
// Min at Start (it measures the unloaded latency first), so both starts
// behave alike by design. Runs go adaptive(2), the sweep, default,
// adaptive(64), so that a drift of the machine's load during the benchmark
// does not favour one side. Run it alone on the machine: p99 follows the
// load of whatever else runs. Reported: msgs/s and p99 handler latency of each run, the ratios
// adaptive/best and adaptive/default (msgs/s) and p99-adaptive/best, and
// the size trace in the log.
func BenchmarkAdaptive(b *testing.B) {
	cl := rmqtest.ClusterA(b)
	const base = 5 * time.Millisecond
	adaptive := consumer.WithAdaptivePool(consumer.Adaptive{Min: 2, Max: 256, Window: 250 * time.Millisecond})
	for _, v := range []struct {
		name  string
		knee  int
		http  bool
		sweep []int
	}{
		// The sweeps hold the knee and 1.5 times it: on a 2-core machine the
		// consumer's own gaps (a handler returning, the next message
		// reaching the worker) put the best fixed size a little above the
		// knee; half the knee measured half the throughput.
		{"knee=64", 64, false, []int{64, 96}},
		{"knee=8", 8, false, []int{8, 12}},
		{"knee=8/http", 8, true, []int{8, 12}},
	} {
		b.Run(v.name, func(b *testing.B) {
			capacity := float64(v.knee) / base.Seconds()
			n := int(20 * capacity) // about 20 s per run at capacity
			topic := adpBacklog(b, cl, v.knee, n)
			d := &kneeDownstream{knee: v.knee, base: base}
			call := d.call
			if v.http {
				call = httpDownstream(b, d)
			}
			run := func(name string, opts ...consumer.SubscribeOption) adpResult {
				var r adpResult
				for range b.N {
					r = adpConsume(b, cl, topic, n, call, opts...)
				}
				b.Logf("%s %s: %.0f msgs/s, p50 %v, p99 %v; sizes every %v: %s", v.name, name, r.rate, r.p50, r.p99, traceEvery, r.traceString())
				return r
			}
			adaptive2 := run("adaptive(start=2)", consumer.WithPoolSize(2), adaptive)
			var best adpResult
			bestSize := 0
			for _, size := range v.sweep {
				r := run(fmt.Sprintf("fixed=%d", size), consumer.WithPoolSize(size))
				// The best fixed size: the highest rate; within 3% of it, the
				// lower latency.
				if bestSize == 0 || r.rate > 1.03*best.rate || (r.rate > best.rate/1.03 && r.p99 < best.p99) {
					best, bestSize = r, size
				}
			}
			def := best
			if !v.http {
				def = run("default=20")
			}
			worst, worstDef, worstP99 := 1e9, 1e9, 0.0
			adaptive64 := run("adaptive(start=64)", consumer.WithPoolSize(64), adaptive)
			for _, r := range []adpResult{adaptive2, adaptive64} {
				worst = min(worst, r.rate/best.rate)
				worstP99 = max(worstP99, float64(r.p99)/float64(best.p99))
				worstDef = min(worstDef, r.rate/def.rate)
			}
			if !v.http {
				b.ReportMetric(worstDef, "adaptive/default")
			}
			b.Logf("%s: best fixed size %d: %.0f msgs/s, p99 %v; default: %.0f msgs/s, p99 %v", v.name, bestSize, best.rate, best.p99, def.rate, def.p99)
			b.ReportMetric(worst, "adaptive/best")
			b.ReportMetric(worstP99, "p99-adaptive/best")
			b.ReportMetric(float64(bestSize), "best-size")
		})
	}
}
