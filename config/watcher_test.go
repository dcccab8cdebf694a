package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/filewatch/filewatchtest"
	"github.com/rmqkit/rmqkit/throttle"
)

// hooks records what a Watcher reports.
type hooks struct {
	mu      sync.Mutex
	errs    []error
	applied [][]config.Change
	log     bytes.Buffer
}

func (h *hooks) options() []config.Option {
	return []config.Option{
		config.WithOnError(func(err error) { h.mu.Lock(); h.errs = append(h.errs, err); h.mu.Unlock() }),
		config.WithOnApply(func(ch []config.Change) { h.mu.Lock(); h.applied = append(h.applied, ch); h.mu.Unlock() }),
		config.WithLogger(slog.New(slog.NewTextHandler(&lockedWriter{h: h}, nil))),
		config.WithDebounce(20 * time.Millisecond),
	}
}

type lockedWriter struct{ h *hooks }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.log.Write(p)
}

func (h *hooks) counts() (errs, applied int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.errs), len(h.applied)
}

func (h *hooks) lastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errs[len(h.errs)-1]
}

func (h *hooks) logged() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	filewatchtest.Write(t, path, content)
}

// replaceFile renames a new file over path, as editors do.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	filewatchtest.Replace(t, path, content)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	filewatchtest.Eventually(t, what, cond)
}

// doc is a document setting the pool size and rate of "created".
func doc(pool int, rate float64) string {
	return "group: orders\nsubscriptions:\n  created:\n    poolSize: " + strconv.Itoa(pool) +
		"\n    rate: " + strconv.FormatFloat(rate, 'g', -1, 64) + "\n"
}

func created(c *consumer.Consumer) consumer.SubscriptionSettings {
	return c.Settings().Subscriptions[0]
}

func startWatcher(t *testing.T, c *consumer.Consumer, content string, h *hooks) (*config.Watcher, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	writeFile(t, path, content)
	w, err := config.Watch(path, c, h.options()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, path
}

func TestWatchAppliesTheFileAndFollowsEdits(t *testing.T) {
	c := newConsumer(t, nil)
	h := &hooks{}
	w, path := startWatcher(t, c, doc(4, 50), h)
	if s := created(c); s.PoolSize != 4 || s.Rate.Rate != 50 {
		t.Fatalf("after Watch: %+v", s)
	}

	writeFile(t, path, doc(6, 70)) // in place
	eventually(t, "the in-place edit", func() bool { s := created(c); return s.PoolSize == 6 && s.Rate.Rate == 70 })

	replaceFile(t, path, doc(9, 90)) // renamed over the file
	// The settings change first; the counters and the log follow on the
	// watcher's goroutine, so wait for the log line, written after both.
	eventually(t, "the replacement, logged with old and new values", func() bool {
		s := created(c)
		return s.PoolSize == 9 && s.Rate.Rate == 90 && strings.Contains(h.logged(), "field=subscriptions.created.poolSize old=6 new=9")
	})

	if st := w.Stats(); st.Applied != 3 || st.Rejected != 0 || st.Changes != 6 {
		t.Fatalf("stats = %+v, want 3 applied with 6 changes", st)
	}
}

func TestBadEditsAreRejectedVisiblyAndTheLastGoodConfigurationStays(t *testing.T) {
	c := newConsumer(t, nil)
	h := &hooks{}
	w, path := startWatcher(t, c, doc(4, 50), h)
	bad := []struct {
		name, content, want string
	}{
		{"syntax", "group: orders\nsubscriptions:\n  created: {poolSize: 5\n", "line"},
		{"unknown key", doc(5, 60) + "    poolsize: 5\n", "subscriptions.created.poolsize (line 6)"},
		{"negative size", doc(-5, 60), "subscriptions.created.poolSize (line 4)"},
		{"absurd rate", doc(5, 5e7), "subscriptions.created.rate (line 5)"},
		{"unknown subscription", doc(5, 60) + "  shipped: {rate: 1}\n", "subscriptions.shipped (line 6)"},
		{"start-only change", doc(5, 60) + "    orderly: true\n", "start-only"},
		{"other group", strings.Replace(doc(5, 60), "orders", "payments", 1), "group (line 1)"},
	}
	for i, b := range bad {
		writeFile(t, path, b.content)
		eventually(t, "the rejection of "+b.name, func() bool { n, _ := h.counts(); return n == i+1 })
		err := h.lastErr()
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: error %q, want ErrInvalid naming the file and %q", b.name, err, b.want)
		}
		if s := created(c); s.PoolSize != 4 || s.Rate.Rate != 50 {
			t.Fatalf("%s: a rejected file changed the consumer: %+v", b.name, s)
		}
	}
	if st := w.Stats(); st.Rejected != uint64(len(bad)) || st.Applied != 1 {
		t.Fatalf("stats = %+v, want %d rejected", st, len(bad))
	}
	if log := h.logged(); strings.Count(log, "rmqkit config rejected") != len(bad) {
		t.Fatalf("rejections not logged:\n%s", log)
	}
	// A good edit after bad ones applies.
	writeFile(t, path, doc(7, 80))
	eventually(t, "the good edit", func() bool { return created(c).PoolSize == 7 })
	if w.Current().Subscriptions["created"].Rate == nil || *w.Current().Subscriptions["created"].Rate != 80 {
		t.Fatalf("Current = %+v", w.Current())
	}
}

func TestWatchRefusesABadInitialFile(t *testing.T) {
	c := newConsumer(t, nil)
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	if _, err := config.Watch(path, c); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Watch of a missing file = %v", err)
	}
	writeFile(t, path, doc(0, 5))
	if _, err := config.Watch(path, c); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Watch of an invalid file = %v", err)
	}
}

func TestWatcherApplyGoesThroughTheSamePath(t *testing.T) {
	c := newConsumer(t, nil)
	h := &hooks{}
	w, _ := startWatcher(t, c, doc(4, 50), h)
	r := 75.0
	if err := w.Apply(&config.Document{Group: "orders", Subscriptions: map[string]config.Subscription{"created": {Rate: &r}}}); err != nil {
		t.Fatal(err)
	}
	if created(c).Rate != (throttle.Limit{Rate: 75}) {
		t.Fatalf("rate after Apply = %v", created(c).Rate)
	}
	err := w.Apply(&config.Document{Group: "orders", Subscriptions: map[string]config.Subscription{"nope": {}}})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Apply(unknown topic) = %v", err)
	}
	if st := w.Stats(); st.Applied != 2 || st.Rejected != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if n, applied := h.counts(); n != 1 || applied != 2 {
		t.Fatalf("hooks: %d errors, %d applies", n, applied)
	}
}

func TestEditingAnotherFileOfTheDirectoryIsIgnored(t *testing.T) {
	c := newConsumer(t, nil)
	h := &hooks{}
	w, path := startWatcher(t, c, doc(4, 50), h)
	writeFile(t, filepath.Join(filepath.Dir(path), "other.yaml"), "garbage: [")
	writeFile(t, path, doc(4, 50)) // same content: ignored
	time.Sleep(150 * time.Millisecond)
	if st := w.Stats(); st.Applied != 1 || st.Rejected != 0 {
		t.Fatalf("stats = %+v, want only the initial apply", st)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}
