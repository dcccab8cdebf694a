package rmqtest

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// Collector records which message ids were consumed and how often.
// It is safe for simultaneous use by multiple goroutines.
type Collector struct {
	mu     sync.Mutex
	counts map[string]int
	order  []string
	total  int
	signal chan struct{}
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{counts: make(map[string]int), signal: make(chan struct{}, 1)}
}

// Add records one delivery of id.
func (c *Collector) Add(id string) {
	c.mu.Lock()
	c.counts[id]++
	c.order = append(c.order, id)
	c.total++
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// Count returns how many times id was delivered.
func (c *Collector) Count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[id]
}

// Total returns the number of deliveries recorded.
func (c *Collector) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Distinct returns the number of different ids recorded.
func (c *Collector) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts)
}

// Order returns the ids in the order they were recorded.
func (c *Collector) Order() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.order...)
}

// Report is the loss and duplicate count of a run.
type Report struct {
	Expected   int
	Lost       []string // expected ids never delivered
	Duplicates int      // deliveries beyond the first, over expected ids
	Unexpected int      // deliveries of ids not expected
}

// Check compares the deliveries with the expected ids.
func (c *Collector) Check(ids []string) Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Expected: len(ids)}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
		switch n := c.counts[id]; {
		case n == 0:
			r.Lost = append(r.Lost, id)
		case n > 1:
			r.Duplicates += n - 1
		}
	}
	for id, n := range c.counts {
		if !want[id] {
			r.Unexpected += n
		}
	}
	sort.Strings(r.Lost)
	return r
}

// WaitAll waits until every id was delivered at least once or timeout
// passes, and returns the report at that moment.
func (c *Collector) WaitAll(t testing.TB, ids []string, timeout time.Duration) Report {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		r := c.Check(ids)
		if len(r.Lost) == 0 {
			return r
		}
		select {
		case <-deadline:
			return r
		case <-c.signal:
		case <-tick.C:
		}
	}
}

// RequireAll waits like WaitAll and fails the test if any id is missing.
// It logs the duplicate count, which at-least-once delivery allows.
func (c *Collector) RequireAll(t testing.TB, ids []string, timeout time.Duration) Report {
	t.Helper()
	r := c.WaitAll(t, ids, timeout)
	if len(r.Lost) > 0 {
		show := r.Lost
		if len(show) > 10 {
			show = show[:10]
		}
		t.Fatalf("lost %d of %d messages after %v (first: %v); duplicates %d", len(r.Lost), r.Expected, timeout, show, r.Duplicates)
	}
	t.Logf("all %d messages delivered; duplicates: %d", r.Expected, r.Duplicates)
	return r
}
