package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rmqconfig "github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/internal/filewatch/filewatchtest"
)

// writeFile replaces path like an editor does: a temporary file renamed
// over the original.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	filewatchtest.Replace(t, path, content)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	filewatchtest.Eventually(t, what, cond)
}

// watchEnv is a Subscription on fakes with a real clock, a producer on
// fake clients and a control file.
func watchEnv(t *testing.T, content string) (*env, *Producer, string) {
	t.Helper()
	e := newEnv(t, WithSettle(0), WithLagInterval(10*time.Millisecond))
	e.s.clk = realClock{}
	p, _, _ := newFakeProducer(t)
	path := filepath.Join(t.TempDir(), "migrate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, p, path
}

func watch(t *testing.T, path string, e *env, p *Producer, opts ...WatchOption) *Watcher {
	t.Helper()
	w, err := Watch(context.Background(), path, e.s, p, append([]WatchOption{WithWatchLogger(quietLogger()), WithDebounce(10 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func TestWatchAppliesTheFileAndFollowsEdits(t *testing.T) {
	e, p, path := watchEnv(t, "phase: dual\nweight: 50\n")
	w := watch(t, path, e, p)
	if p.Weight() != 50 || e.s.Phase() != Dual {
		t.Fatalf("after Watch: weight %d, phase %v; want 50, dual", p.Weight(), e.s.Phase())
	}
	e.start() // in the phase the file chose
	if got := e.running(); len(got) != 2 {
		t.Fatalf("running %v, want both sides", got)
	}
	writeFile(t, path, "phase: new-only\nweight: 100\n")
	eventually(t, "weight 100 and phase new-only", func() bool { return p.Weight() == 100 && e.s.Phase() == NewOnly })
	if st := w.Stats(); st.Applied != 2 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
	if d := w.Current(); d.Phase == nil || *d.Phase != NewOnly {
		t.Errorf("Current = %v", d)
	}
}

func TestWatchKeepsTheLastGoodStateOnABadEdit(t *testing.T) {
	e, p, path := watchEnv(t, "weight: 30\n")
	var mu sync.Mutex
	var errs []error
	w := watch(t, path, e, p, WithOnError(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }))
	e.start()
	writeFile(t, path, "phase: dual\nweight: 150\n")
	eventually(t, "the rejection", func() bool { return w.Stats().Rejected == 1 })
	if p.Weight() != 30 || e.s.Phase() != OldOnly {
		t.Errorf("after a bad edit: weight %d, phase %v; want 30, old-only (nothing of it applied)", p.Weight(), e.s.Phase())
	}
	mu.Lock()
	if len(errs) != 1 || !errors.Is(errs[0], rmqconfig.ErrInvalid) || !strings.Contains(errs[0].Error(), "weight") {
		t.Errorf("reported %v, want one error naming weight", errs)
	}
	mu.Unlock()
	writeFile(t, path, "phase: dual\nweight: 60\n")
	eventually(t, "the fixed file", func() bool { return p.Weight() == 60 && e.s.Phase() == Dual })
}

func TestWatchFailsOnAnInvalidFile(t *testing.T) {
	e, p, path := watchEnv(t, "phase: sideways\nweight: 10\n")
	_, err := Watch(context.Background(), path, e.s, p, WithWatchLogger(quietLogger()))
	if !errors.Is(err, rmqconfig.ErrInvalid) {
		t.Fatalf("Watch = %v, want config.ErrInvalid", err)
	}
	if p.Weight() != 0 {
		t.Errorf("weight %d applied from a rejected file", p.Weight())
	}
	if _, err := Watch(context.Background(), filepath.Join(t.TempDir(), "missing.yaml"), e.s, p); err == nil {
		t.Error("Watch on a missing file succeeded")
	}
	if _, err := Watch(context.Background(), path, nil, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Watch without targets = %v", err)
	}
}

// A newer document that asks for another phase cancels a switch still
// waiting for the drain.
func TestNewerDocumentCancelsAWaitingSwitch(t *testing.T) {
	e, p, path := watchEnv(t, "phase: dual\n")
	e.lag.set(func(Side, time.Duration) (reading, error) { return reading{topicLag: 1}, nil }) // never drained
	w := watch(t, path, e, p)
	e.start()
	writeFile(t, path, "phase: new-only\n")
	eventually(t, "the switch to wait", func() bool { return e.s.Stats().Target == NewOnly })
	writeFile(t, path, "phase: dual\n")
	eventually(t, "the switch to be cancelled", func() bool { return e.s.Stats().Target == Dual })
	if e.s.Phase() != Dual || len(e.running()) != 2 {
		t.Errorf("phase %v, running %v; want dual on both", e.s.Phase(), e.running())
	}
	if st := w.Stats(); st.PhaseErrors != 0 {
		t.Errorf("a cancelled switch counted as an error: %+v", st)
	}
}

// A process with only a producer ignores the phase; the watcher ends with
// its context.
func TestWatchWithOnlyAProducer(t *testing.T) {
	e, p, path := watchEnv(t, "phase: new\nweight: 100\n")
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Watch(ctx, path, nil, p, WithWatchLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Weight() != 100 || e.s.Phase() != OldOnly {
		t.Errorf("weight %d, phase %v", p.Weight(), e.s.Phase())
	}
	cancel()
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not end with its context")
	}
}
