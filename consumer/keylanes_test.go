package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/pool"
)

// laneModel drives keyLanes as key-ordered callbacks do: several "queues",
// each adding a batch and waiting for it before its next, with tasks that
// run on a real pool. It records what every key saw.
type laneModel struct {
	t     *testing.T
	lanes *keyLanes
	pool  *pool.Pool

	addMu   sync.Mutex     // assigns each key's add order with the add itself
	added   map[string]int // per key: tasks added so far
	mu      sync.Mutex
	ran     map[string][]int // per key: add order of the tasks, in run order
	running map[string]int   // per key: tasks running now
	active  atomic.Int64     // tasks running now, all keys
	peak    atomic.Int64
}

func newLaneModel(t *testing.T, poolSize int) *laneModel {
	p, err := pool.New("model", poolSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return &laneModel{t: t, lanes: newKeyLanes(), pool: p, added: map[string]int{}, ran: map[string][]int{}, running: map[string]int{}}
}

// batch adds one callback's tasks (work runs inside each) and waits for them.
func (m *laneModel) batch(keys []string, work func(key string)) {
	var wg sync.WaitGroup
	tasks := make([]func(), len(keys))
	m.addMu.Lock()
	for i, k := range keys {
		seq := m.added[k]
		m.added[k]++
		tasks[i] = func() {
			defer wg.Done()
			_ = m.pool.Do(context.Background(), func(context.Context) error {
				m.enter(k, seq)
				defer m.leave(k)
				work(k)
				return nil
			})
		}
	}
	wg.Add(len(keys))
	m.lanes.add(keys, tasks)
	m.addMu.Unlock()
	wg.Wait()
}

func (m *laneModel) enter(k string, seq int) {
	n := m.active.Add(1)
	for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if k != "" {
		m.running[k]++
		if m.running[k] > 1 {
			m.t.Errorf("key %q: %d handlers at once", k, m.running[k])
		}
	}
	m.ran[k] = append(m.ran[k], seq)
}

func (m *laneModel) leave(k string) {
	m.mu.Lock()
	if k != "" {
		m.running[k]--
	}
	m.mu.Unlock()
	m.active.Add(-1)
}

// A key's tasks run one at a time in the order they were added, from
// however many queues; keys run in parallel; lanes are freed when idle.
func TestKeyLanesKeepEachKeysOrderUnderRandomLoad(t *testing.T) {
	const queues, batches, batchSize, keys, poolSize = 8, 40, 32, 50, 16
	m := newLaneModel(t, poolSize)
	var wg sync.WaitGroup
	for q := range queues {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(q), 1))
			for range batches {
				ks := make([]string, batchSize)
				for i := range ks {
					// Skewed: key 0 is a fifth of the messages.
					if r.IntN(5) == 0 {
						ks[i] = "k0"
					} else {
						ks[i] = fmt.Sprintf("k%d", r.IntN(keys))
					}
				}
				m.batch(ks, func(string) {
					if r := rand.IntN(4); r > 0 {
						time.Sleep(time.Duration(r) * 50 * time.Microsecond)
					}
				})
			}
		})
	}
	wg.Wait()
	total := 0
	for k, seqs := range m.ran {
		total += len(seqs)
		for i, s := range seqs {
			if s != i {
				t.Fatalf("key %q ran its tasks in the order %v, want the order they were added", k, seqs)
			}
		}
	}
	if total != queues*batches*batchSize {
		t.Fatalf("ran %d tasks, want %d", total, queues*batches*batchSize)
	}
	if p := m.peak.Load(); p > poolSize || p < 2 {
		t.Fatalf("peak concurrency %d, want in [2, %d]", p, poolSize)
	}
	if n := m.lanes.len(); n != 0 {
		t.Fatalf("%d lanes left after every task finished, want 0 (freed when idle)", n)
	}
}

// Concurrency is min(distinct keys in flight, pool size): a blocked key
// holds only its own lane, and keyless tasks run side by side.
func TestKeyLanesConcurrencyIsDistinctKeysUpToThePoolSize(t *testing.T) {
	tests := []struct {
		name     string
		keys     []string
		poolSize int
		want     int
	}{
		{"more keys than workers", []string{"a", "b", "c", "d", "e", "f"}, 4, 4},
		{"fewer keys than workers", []string{"a", "a", "b", "a", "b", "c"}, 8, 3},
		{"one key is serial", []string{"a", "a", "a", "a"}, 8, 1},
		{"keyless messages order with nothing", []string{"", "", "", "", "a", "a"}, 8, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newLaneModel(t, tt.poolSize)
			release := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				m.batch(tt.keys, func(string) { <-release })
			}()
			if !rmqtest.WaitUntil(5*time.Second, func() bool { return m.active.Load() == int64(tt.want) }) {
				t.Fatalf("running = %d, want %d", m.active.Load(), tt.want)
			}
			// Nothing more starts while they hold their workers and lanes.
			time.Sleep(20 * time.Millisecond)
			if n := m.active.Load(); n != int64(tt.want) {
				t.Fatalf("running = %d after a pause, want it to stay %d", n, tt.want)
			}
			close(release)
			<-done
			if p := m.peak.Load(); p != int64(tt.want) {
				t.Fatalf("peak concurrency %d, want %d", p, tt.want)
			}
			if n := m.lanes.len(); n != 0 {
				t.Fatalf("%d lanes left, want 0", n)
			}
		})
	}
}

// A later callback's task of a key waits behind an earlier callback's,
// while the later callback's other keys go on.
func TestKeyLanesLaterCallbackWaitsOnlyForItsSharedKey(t *testing.T) {
	m := newLaneModel(t, 8)
	release := make(chan struct{})
	first := make(chan struct{})
	go func() {
		defer close(first)
		m.batch([]string{"hot"}, func(string) { <-release })
	}()
	if !rmqtest.WaitUntil(5*time.Second, func() bool { return m.active.Load() == 1 }) {
		t.Fatal("first callback did not start")
	}
	var others atomic.Int64
	second := make(chan struct{})
	go func() {
		defer close(second)
		m.batch([]string{"hot", "x", "y"}, func(k string) {
			if k != "hot" {
				others.Add(1)
			}
		})
	}()
	if !rmqtest.WaitUntil(5*time.Second, func() bool { return others.Load() == 2 }) {
		t.Fatal("other keys of the later callback did not run while the shared key waited")
	}
	m.mu.Lock()
	hot := len(m.ran["hot"])
	m.mu.Unlock()
	if hot != 1 {
		t.Fatalf("key hot ran %d times while its first task held it, want 1", hot)
	}
	close(release)
	<-first
	<-second
	if got := m.ran["hot"]; len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("key hot ran %v, want [0 1]", got)
	}
}
