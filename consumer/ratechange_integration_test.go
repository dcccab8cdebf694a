//go:build integration

package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/throttle"
)

// starts records when handlers start, for counting starts per window.
type starts struct {
	n     atomic.Int64
	times []atomic.Int64 // unix nanos
}

func newStarts(capacity int) *starts { return &starts{times: make([]atomic.Int64, capacity)} }

func (s *starts) record() {
	if i := s.n.Add(1) - 1; int(i) < len(s.times) {
		s.times[i].Store(time.Now().UnixNano())
	}
}

func (s *starts) in(from, to time.Time) int {
	n := 0
	for i := range min(int(s.n.Load()), len(s.times)) {
		if t := s.times[i].Load(); t >= from.UnixNano() && t < to.UnixNano() {
			n++
		}
	}
	return n
}

// A changed rate is in force within one second, lowered or raised,
// whatever is already waiting for a worker: the limit bounds handler
// starts. In every 1 s window from 1 s after a change, starts are at most
// 1.1x the new rate, and, raised with a backlog, at least 0.9x.
func TestChangedRateIsInForceWithinOneSecond(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t)
	cl.NewProducer(t).Produce(topic, "m", 9000)
	st := newStarts(20000)
	c := newConsumer(t, cl, cl.NewGroup(t), quiet())
	// 8 workers of 10 ms handle at most 800/s: at a limit of 2000/s the
	// messages that passed the limit pile up waiting for a worker, as under
	// any real backlog.
	err := c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error {
		st.record()
		time.Sleep(10 * time.Millisecond)
		return nil
	}, consumer.WithPoolSize(8), consumer.WithRate(throttle.Limit{Rate: 2000}))
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	if !rmqtest.WaitUntil(30*time.Second, func() bool { return st.n.Load() >= 2000 }) {
		t.Fatalf("only %d handled", st.n.Load())
	}

	check := func(rate float64, changed time.Time, windows int, wantLow bool) {
		t.Helper()
		end := changed.Add(time.Duration(windows+1) * time.Second)
		time.Sleep(time.Until(end)) // the windows must pass; what they hold is the measurement
		for w := 1; w <= windows; w++ {
			from := changed.Add(time.Duration(w) * time.Second)
			got := float64(st.in(from, from.Add(time.Second)))
			if got > 1.1*rate || (wantLow && got < 0.9*rate) {
				t.Errorf("rate %v/s: %v starts in second %d after the change; want at most %v%s", rate, got, w, 1.1*rate,
					map[bool]string{true: " and at least 0.9x", false: ""}[wantLow])
			}
		}
	}
	lowered := time.Now()
	if err := c.SetRate(topic, throttle.Limit{Rate: 50}); err != nil {
		t.Fatal(err)
	}
	check(50, lowered, 3, false)
	raised := time.Now()
	if err := c.SetRate(topic, throttle.Limit{Rate: 300}); err != nil { // well below the pool's 800/s
		t.Fatal(err)
	}
	check(300, raised, 2, true)
}
