package throttle

import (
	"sync"
	"testing"
	"time"
)

// manualClock moves only when the test advances it. Timers fire when the
// clock passes their deadline.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*manualTimer]bool
	created int
	seen    int // created, as of the last waitTimer
}

type manualTimer struct {
	at time.Time
	c  chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Unix(1_700_000_000, 0), timers: map[*manualTimer]bool{}}
}

func (m *manualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

func (m *manualClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{at: m.now.Add(d), c: make(chan time.Time, 1)}
	m.created++
	if d <= 0 {
		t.c <- m.now
		return t.c, func() bool { return false }
	}
	m.timers[t] = true
	return t.c, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		active := m.timers[t]
		delete(m.timers, t)
		return active
	}
}

// Advance moves the clock by d and fires the timers due.
func (m *manualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	for t := range m.timers {
		if !t.at.After(m.now) {
			t.c <- m.now
			delete(m.timers, t)
		}
	}
}

// pending returns the deadlines of the active timers, as offsets from now.
func (m *manualClock) pending() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []time.Duration
	for t := range m.timers {
		out = append(out, t.at.Sub(m.now))
	}
	return out
}

// waitTimer waits until a timer was created since the last call and
// exactly one timer is active, and returns its remaining duration.
func (m *manualClock) waitTimer(t *testing.T) time.Duration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		fresh := m.created > m.seen
		m.mu.Unlock()
		if p := m.pending(); fresh && len(p) == 1 {
			m.mu.Lock()
			m.seen = m.created
			m.mu.Unlock()
			return p[0]
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no single active timer after 5s: %v", m.pending())
	return 0
}

// autoClock jumps to the deadline of every timer at once, so sequential
// callers never block and the clock shows how long they would have waited.
type autoClock struct {
	mu  sync.Mutex
	now time.Time
}

func newAutoClock() *autoClock { return &autoClock{now: time.Unix(1_700_000_000, 0)} }

func (a *autoClock) Now() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now
}

func (a *autoClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = a.now.Add(d)
	c := make(chan time.Time, 1)
	c <- a.now
	return c, func() bool { return false }
}
