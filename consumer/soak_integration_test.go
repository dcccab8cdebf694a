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

// With a backlog of 1,000,000 messages of 1 KiB and a slow handler, the
// consumer's memory stays bounded by its prefetch thresholds.
func TestSoakMemoryStaysBoundedUnderAMillionMessageBacklog(t *testing.T) {
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(8))
	p := cl.NewProducer(t)
	began := time.Now()
	const total, chunk = 1_000_000, 100_000
	for i := 0; i < total; i += chunk {
		p.ProduceSized(topic, "m"+strconv.Itoa(i/chunk), chunk, 1024)
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
		time.Sleep(time.Second)
		h, r := heapInUse(), rssBytes()
		peakHeap, peakRSS = max(peakHeap, h), max(peakRSS, r)
		if i%10 == 9 {
			t.Logf("t=%2ds handled=%d heap=%d MiB rss=%d MiB", i+1, handled.Load(), h>>20, r>>20)
		}
	}
	t.Logf("memory under a %d-message backlog: peak heap %d MiB (base %d), peak RSS %d MiB (base %d)",
		total, peakHeap>>20, baseHeap>>20, peakRSS>>20, baseRSS>>20)
	// The bound documented in the README: prefetch (8192 x 1 KiB bodies and
	// one parked goroutine each) plus the client's own buffers.
	const bound = 256 << 20
	if peakHeap-baseHeap > bound {
		t.Fatalf("heap grew by %d MiB, over the %d MiB bound", (peakHeap-baseHeap)>>20, bound>>20)
	}
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
			p.ProduceSized(topic, "s"+strconv.Itoa(i), 200, 256)
			produced.Add(200)
		}
	}()

	var mu sync.Mutex
	var lat []time.Duration
	var handled atomic.Int64
	c := newConsumer(t, cl, cl.NewGroup(t), quiet())
	err := c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		s := time.Now()
		time.Sleep(time.Millisecond)
		mu.Lock()
		lat = append(lat, time.Since(s))
		mu.Unlock()
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
	last, i := int64(0), 0
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
		t.Logf("soak t=%v produced=%d handled=%d rate=%.0f msg/s p99=%v heap=%d MiB rss=%d MiB pool=%d",
			time.Duration(i+1)*30*time.Second, produced.Load(), h, float64(h-last)/30, p99, heapInUse()>>20, rssBytes()>>20, sizes[i%len(sizes)])
		last = h
		i++
		if err := c.SetPoolSize(topic, sizes[i%len(sizes)]); err != nil {
			t.Fatal(err)
		}
	}
	prodWG.Wait()
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
