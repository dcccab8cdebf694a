//go:build integration && soak

package consumer_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// rssBytes reads the process's resident set size from /proc.
func rssBytes() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// Memory figures of docs/guarantees.md (Memory), measured by
// TestSoakMemoryStaysBoundedUnderAMillionMessageBacklog, and the margin the
// soak tests allow over them: half again, for other runs' noise (GC timing,
// the broker's pace). A consumer that buffered beyond its prefetch
// thresholds (a 1,000,000-message backlog of 1 KiB) would exceed them many
// times over.
const (
	documentedPeakHeap = 71 << 20
	documentedPeakRSS  = 124 << 20
	memoryMargin       = 1.5
)

// checkMemory fails the test if a peak exceeds the documented figure plus
// the margin.
func checkMemory(t *testing.T, peakHeap, peakRSS uint64) {
	t.Helper()
	if limit := uint64(documentedPeakHeap * memoryMargin); peakHeap > limit {
		t.Errorf("peak heap %d MiB, over the documented %d MiB + 50%% (%d MiB)", peakHeap>>20, documentedPeakHeap>>20, limit>>20)
	}
	if limit := uint64(documentedPeakRSS * memoryMargin); peakRSS > limit {
		t.Errorf("peak RSS %d MiB, over the documented %d MiB + 50%% (%d MiB)", peakRSS>>20, documentedPeakRSS>>20, limit>>20)
	}
}

// soakInt reads an integer override from the environment.
func soakInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// With a backlog of 1,000,000 messages of 1 KiB (RMQKIT_SOAK_BACKLOG
// overrides) and a slow handler, the consumer's memory stays bounded by its
// prefetch thresholds.
func TestSoakMemoryStaysBoundedUnderAMillionMessageBacklog(t *testing.T) {
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(8))
	p := cl.NewProducer(t)
	began := time.Now()
	total := soakInt(t, "RMQKIT_SOAK_BACKLOG", 1_000_000)
	chunk := min(total, 100_000)
	for i := 0; i < total; i += chunk {
		p.ProduceSized(topic, "m"+strconv.Itoa(i/chunk), min(chunk, total-i), 1024)
	}
	t.Logf("produced %d messages of 1 KiB in %v", total, time.Since(began))

	runtime.GC()
	baseHeap, baseRSS := heapInUse(), rssBytes()
	var handled atomic.Int64
	c := newConsumer(t, cl, cl.NewGroup(t), quiet()) // default prefetch: 8192 messages / 128 MiB
	err := c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		time.Sleep(time.Millisecond) // slow: the backlog stays
		handled.Add(1)
		return nil
	}, consumer.WithPoolSize(8))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	var peakHeap, peakRSS uint64
	for i := range 60 {
		time.Sleep(time.Second) // a sample a second: the duration is the point
		h, r := heapInUse(), rssBytes()
		peakHeap, peakRSS = max(peakHeap, h), max(peakRSS, r)
		if i%10 == 9 {
			t.Logf("t=%2ds handled=%d heap=%d MiB rss=%d MiB", i+1, handled.Load(), h>>20, r>>20)
		}
	}
	t.Logf("memory under a %d-message backlog: peak heap %d MiB (base %d), peak RSS %d MiB (base %d)",
		total, peakHeap>>20, baseHeap>>20, peakRSS>>20, baseRSS>>20)
	if handled.Load() == 0 {
		t.Fatal("nothing handled: the test proves nothing")
	}
	checkMemory(t, peakHeap, peakRSS)
}

// soakIDs counts deliveries of the continuous soak's ids ("s<chunk>-<n>",
// n < 200) compactly: a map of a million strings would weigh more than
// the consumer being measured.
type soakIDs struct {
	mu     sync.Mutex
	counts []uint8
	bad    int
}

func (c *soakIDs) add(id string) {
	chunk, n, ok := strings.Cut(strings.TrimPrefix(id, "s"), "-")
	i, err1 := strconv.Atoi(chunk)
	j, err2 := strconv.Atoi(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok || err1 != nil || err2 != nil || j < 0 || j >= 200 || i < 0 {
		c.bad++
		return
	}
	k := i*200 + j
	if k >= len(c.counts) {
		c.counts = append(c.counts, make([]uint8, k+1-len(c.counts)+200*100)...)
	}
	if c.counts[k] < 255 {
		c.counts[k]++
	}
}

// check returns lost and duplicated deliveries of the first n ids.
func (c *soakIDs) check(n int) (lost, dup, bad int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range n {
		switch v := c.at(k); {
		case v == 0:
			lost++
		case v > 1:
			dup += int(v) - 1
		}
	}
	return lost, dup, c.bad
}

func (c *soakIDs) at(k int) uint8 {
	if k < len(c.counts) {
		return c.counts[k]
	}
	return 0
}

// A 10-minute run (RMQKIT_SOAK_DURATION overrides) with a steady producer
// and a pool resized every 30 s, reporting throughput, p99 handler latency
// and memory every 30 s.
func TestSoakContinuousConsumptionWithPeriodicResizes(t *testing.T) {
	d := 10 * time.Minute
	if v := os.Getenv("RMQKIT_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(8))
	p := cl.NewProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	var produced atomic.Int64
	var prodWG sync.WaitGroup
	prodWG.Add(1)
	go func() { // about 2,000 messages a second
		defer prodWG.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p.ProduceSized(topic, "s"+strconv.Itoa(i), 200, 256) // ids s<i>-0 ... s<i>-199
			produced.Add(200)
		}
	}()

	var mu sync.Mutex
	var lat []time.Duration
	var handled atomic.Int64
	var ids soakIDs
	c := newConsumer(t, cl, cl.NewGroup(t), quiet())
	err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		s := time.Now()
		time.Sleep(time.Millisecond)
		mu.Lock()
		lat = append(lat, time.Since(s))
		mu.Unlock()
		ids.add(m.Property(rmqtest.IDProperty))
		handled.Add(1)
		return nil
	}, consumer.WithPoolSize(8))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	sizes := []int{8, 2, 16, 4}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	last, i, lastAt := int64(0), 0, time.Now()
	var peakHeap, peakRSS uint64
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		mu.Lock()
		l := lat
		lat = nil
		mu.Unlock()
		slices.Sort(l)
		var p99 time.Duration
		if len(l) > 0 {
			p99 = l[len(l)*99/100]
		}
		h := handled.Load()
		peakHeap, peakRSS = max(peakHeap, heapInUse()), max(peakRSS, rssBytes())
		t.Logf("soak t=%v produced=%d handled=%d rate=%.0f msg/s p99=%v heap=%d MiB rss=%d MiB pool=%d",
			time.Duration(i+1)*30*time.Second, produced.Load(), h, float64(h-last)/time.Since(lastAt).Seconds(), p99, heapInUse()>>20, rssBytes()>>20, sizes[i%len(sizes)])
		last, lastAt = h, time.Now()
		i++
		if err := c.SetPoolSize(topic, sizes[i%len(sizes)]); err != nil {
			t.Fatal(err)
		}
	}
	prodWG.Wait()

	// Everything produced is handled once: no loss, and no duplicates from
	// the resizes (docs/guarantees.md: pool resized every 100 ms, 0 lost, 0 duplicates).
	n := int(produced.Load())
	if !rmqtest.WaitUntil(3*time.Minute, func() bool { lost, _, _ := ids.check(n); return lost == 0 }) {
		lost, _, _ := ids.check(n)
		t.Fatalf("lost %d of %d messages 3 minutes after the producer stopped", lost, n)
	}
	// Redelivered copies would come with the last ones.
	rmqtest.WaitUntil(10*time.Second, func() bool { return stats(c, topic).Succeeded >= uint64(n) })
	lost, dup, bad := ids.check(n)
	t.Logf("soak: %d produced, %d lost, %d duplicates; peak heap %d MiB, peak RSS %d MiB", n, lost, dup, peakHeap>>20, peakRSS>>20)
	if lost != 0 || dup != 0 || bad != 0 {
		t.Errorf("%d lost, %d duplicates, %d unknown ids; want none", lost, dup, bad)
	}
	checkMemory(t, peakHeap, peakRSS)
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
