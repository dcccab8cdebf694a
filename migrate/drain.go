package migrate

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// originMessageID is the property in which the broker keeps, on a
// redelivered message, the id of the message that failed first
// (MessageConst.PROPERTY_ORIGIN_MESSAGE_ID).
const originMessageID = "ORIGIN_MESSAGE_ID"

// reading is one look at a side's consume stats.
type reading struct {
	topicLag int64 // the group's lag on the topic
	retryLag int64 // the group's lag on %RETRY%group
	stored   int64 // sum of the broker offsets of both: moves when a message arrives
}

func (r reading) lag() int64 { return r.topicLag + r.retryLag }

// retry is a failed message whose redelivery has not been seen yet.
type retry struct {
	due  time.Time // when the broker moves it to the retry topic
	keys []string  // ids under which a redelivery can be recognised
}

// sideState is what the Subscription knows about one cluster: counters of
// its consumers (across re-creations), pending retries and the drain
// state built from lag readings.
type sideState struct {
	consumed atomic.Uint64
	failed   atomic.Uint64
	// Fixed by the side's consumer settings when it is created.
	maxRetries atomic.Int32
	orderly    atomic.Bool

	pollMu sync.Mutex // serializes readings, so they are observed in order

	mu       sync.Mutex
	pending  map[string]*retry
	npending int
	last     reading
	lastAt   time.Time // start of the last reading; zero before the first
	lastErr  error
	// The quiet streak: since quietAt, every reading showed no lag, no
	// pending retry and stored == quietStored.
	quietAt     time.Time
	quietStored int64
	drained     bool
}

func newSideState() *sideState {
	s := &sideState{pending: make(map[string]*retry)}
	s.maxRetries.Store(16)
	return s
}

// keys returns the ids a delivery of m may be known by: its own id (the
// producer's UNIQ_KEY when it has one, which redeliveries keep) and the
// id of the first failed delivery, which the broker sets on redeliveries
// (needed for messages without UNIQ_KEY, such as the client's batches).
func keys(m *consumer.Message) []string {
	ks := make([]string, 0, 2)
	if m.ID != "" {
		ks = append(ks, m.ID)
	}
	if o := m.Property(originMessageID); o != "" && o != m.ID {
		ks = append(ks, o)
	}
	return ks
}

// delivered forgets the pending retry that m is the redelivery of, if any.
func (s *sideState) delivered(m *consumer.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys(m) {
		if r := s.pending[k]; r != nil {
			s.removeLocked(r)
		}
	}
}

func (s *sideState) removeLocked(r *retry) {
	for _, k := range r.keys {
		if s.pending[k] == r {
			delete(s.pending, k)
		}
	}
	s.npending--
}

// failedAt records that m's handler failed at now on this side. It
// returns whether the side stopped being drained. Orderly subscriptions
// retry in place (the message holds its queue, visible as lag) and a
// message past its retries goes to the dead-letter queue: neither leaves
// a retry pending.
func (s *sideState) failedAt(m *consumer.Message, now time.Time, delays []time.Duration) (undrained bool) {
	s.failed.Add(1)
	if s.orderly.Load() || m.ReconsumeCount >= int(s.maxRetries.Load()) {
		return false
	}
	level := min(3+m.ReconsumeCount, len(delays)) // 1-based, as the broker's
	r := &retry{due: now.Add(delays[level-1]), keys: keys(m)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range r.keys {
		if old := s.pending[k]; old != nil {
			s.removeLocked(old)
		}
		s.pending[k] = r
	}
	s.npending++
	s.quietAt = time.Time{}
	undrained = s.drained
	s.drained = false
	return undrained
}

// observe records a reading that started at at, and returns whether the
// side is drained now and whether that changed.
func (s *sideState) observe(r reading, err error, at time.Time, settle, grace time.Duration) (drained, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.drained
	s.lastAt, s.lastErr = at, err
	if err != nil {
		// Nothing is known: the streak must start again.
		s.quietAt, s.drained = time.Time{}, false
		return false, was
	}
	s.last = r
	if r.lag() == 0 {
		// The broker has moved every retry due before at-grace to the retry
		// topic, and nothing is left there: whoever consumed it, it is done.
		for k, p := range s.pending {
			if s.pending[k] == p && !at.Before(p.due.Add(grace)) {
				s.removeLocked(p)
			}
		}
	}
	quiet := r.lag() == 0 && s.npending == 0
	switch {
	case !quiet:
		s.quietAt = time.Time{}
	case s.quietAt.IsZero() || r.stored != s.quietStored:
		s.quietAt, s.quietStored = at, r.stored
	}
	s.drained = quiet && at.Sub(s.quietAt) >= settle
	return s.drained, s.drained != was
}

// SideStats is a snapshot of one cluster's side of a Subscription.
type SideStats struct {
	// Reading says a consumer of the Subscription runs on this cluster.
	Reading bool
	// Consumed counts handler calls on this side that returned nil, and
	// Failed those that failed, across the side's consumers since New.
	Consumed, Failed uint64
	// PendingRetries counts failed messages whose redelivery has not been
	// seen yet (see the package documentation).
	PendingRetries int
	// Lag and RetryLag are the group's lag on the topic and on its retry
	// topic at the last reading (LagAt), from the broker's consume stats.
	Lag, RetryLag int64
	// LagAt is when the last reading started; zero before the first.
	LagAt time.Time
	// LagErr is the error of the last reading, nil if it succeeded.
	LagErr error
	// QuietSince is when the current streak of readings without lag,
	// pending retries or new messages began; zero when there is none.
	QuietSince time.Time
	// Drained says the side is drained (see the package documentation).
	Drained bool
}

func (s *sideState) stats() SideStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SideStats{
		Consumed:       s.consumed.Load(),
		Failed:         s.failed.Load(),
		PendingRetries: s.npending,
		Lag:            s.last.topicLag,
		RetryLag:       s.last.retryLag,
		LagAt:          s.lastAt,
		LagErr:         s.lastErr,
		QuietSince:     s.quietAt,
		Drained:        s.drained,
	}
}
