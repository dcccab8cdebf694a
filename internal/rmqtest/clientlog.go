package rmqtest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/rmqkit/rmqkit/rmqlog"
)

// clientLog is the process's client log tee, set by InstallClientLog.
var clientLog struct {
	mu       sync.Mutex
	on       bool
	watchers map[*LogWatch]struct{}
}

// InstallClientLog routes the RocketMQ client's log (rlog, process-global)
// to out for records at or above show, and lets tests watch its info
// records and above too (WatchClientLog). Call it once from TestMain,
// instead of rmqlog.Install. While no test watches, records below show
// cost what they cost with rmqlog.Install.
func InstallClientLog(out io.Writer, show slog.Level) {
	h := &teeHandler{out: slog.NewTextHandler(out, &slog.HandlerOptions{Level: show})}
	rmqlog.Install(slog.New(h), rmqlog.WithLevel(slog.LevelInfo))
	clientLog.mu.Lock()
	clientLog.on = true
	clientLog.mu.Unlock()
}

// LogWatch sees client log records whose message contains a text and one
// of whose attribute values contains another (a group name, say).
type LogWatch struct {
	msg, attr string
	once      sync.Once
	seen      chan struct{}
}

// WatchClientLog starts watching the client's log (info and above) for
// a record whose message contains msg and that has an attribute whose
// value contains attr, until the end of the test. It fails the test if
// InstallClientLog was not called: a watch that cannot see anything would
// make an assertion of absence pass vacuously.
func WatchClientLog(t testing.TB, msg, attr string) *LogWatch {
	t.Helper()
	w := &LogWatch{msg: msg, attr: attr, seen: make(chan struct{})}
	clientLog.mu.Lock()
	defer clientLog.mu.Unlock()
	if !clientLog.on {
		t.Fatal("WatchClientLog needs rmqtest.InstallClientLog in TestMain")
	}
	if clientLog.watchers == nil {
		clientLog.watchers = make(map[*LogWatch]struct{})
	}
	clientLog.watchers[w] = struct{}{}
	t.Cleanup(func() {
		clientLog.mu.Lock()
		delete(clientLog.watchers, w)
		clientLog.mu.Unlock()
	})
	return w
}

// Seen is closed once a matching record was logged.
func (w *LogWatch) Seen() <-chan struct{} { return w.seen }

// Happened reports whether a matching record was logged.
func (w *LogWatch) Happened() bool {
	select {
	case <-w.seen:
		return true
	default:
		return false
	}
}

func (w *LogWatch) check(r slog.Record) {
	if !strings.Contains(r.Message, w.msg) {
		return
	}
	match := false
	r.Attrs(func(a slog.Attr) bool {
		match = strings.Contains(a.Value.String(), w.attr)
		return !match
	})
	if match {
		w.once.Do(func() { close(w.seen) })
	}
}

// teeHandler shows records at or above out's level and passes every record
// to the watchers.
type teeHandler struct {
	out slog.Handler
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if h.out.Enabled(ctx, l) {
		return true
	}
	clientLog.mu.Lock()
	defer clientLog.mu.Unlock()
	return len(clientLog.watchers) > 0
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	clientLog.mu.Lock()
	for w := range clientLog.watchers {
		w.check(r)
	}
	clientLog.mu.Unlock()
	if h.out.Enabled(ctx, r.Level) {
		return h.out.Handle(ctx, r)
	}
	return nil
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &teeHandler{out: h.out.WithAttrs(as)}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{out: h.out.WithGroup(name)}
}
