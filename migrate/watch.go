package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqkit/rmqkit/internal/filewatch"
)

// WatchOption configures WatchFile.
type WatchOption func(*watchConfig)

type watchConfig struct {
	debounce time.Duration
	onError  func(error)
	onApply  func(Document)
}

// WithDebounce sets how long the file must be quiet after a change before
// it is read: editors write a file in several steps. The default is 100ms.
func WithDebounce(d time.Duration) WatchOption { return func(c *watchConfig) { c.debounce = d } }

// WithOnError calls f with every rejected document (an error wrapping
// ErrInvalidDocument), every failure to read the file and every phase
// switch that failed. The default is none; all are logged either way.
func WithOnError(f func(error)) WatchOption { return func(c *watchConfig) { c.onError = f } }

// WithOnApply calls f with every document applied. The weight is set by
// then; a phase switch may still be waiting for a drain.
func WithOnApply(f func(Document)) WatchOption { return func(c *watchConfig) { c.onApply = f } }

// WatchStats counts a FileWatcher's documents.
type WatchStats struct {
	Applied  uint64 // documents applied
	Rejected uint64 // documents rejected and files that could not be read; the last good state stayed
	// PhaseErrors counts phase switches that failed (not those cancelled
	// by a newer document).
	PhaseErrors uint64
}

// FileWatcher applies a control file to a Subscription and a Producer and
// follows the file's changes. Create it with WatchFile; it ends when the
// context given to WatchFile ends or Close is called. Its methods are
// safe for simultaneous use by multiple goroutines.
type FileWatcher struct {
	path   string
	sub    *Subscription
	prod   *Producer
	logger *slog.Logger
	cfg    watchConfig

	ctx    context.Context
	cancel context.CancelFunc
	exited chan struct{}
	jobs   sync.WaitGroup

	mu      sync.Mutex
	current Document
	job     *phaseJob

	applied, rejected, phaseErrors atomic.Uint64
}

// phaseJob is a phase switch running on behalf of a document.
type phaseJob struct {
	phase  Phase
	force  bool
	cancel context.CancelFunc
	done   chan struct{}
}

// WatchFile applies the control document at path (see Document) to sub
// and prod and then follows the file: each change is read after the
// debounce period, validated as a whole and applied, or rejected (logged,
// counted, reported to WithOnError) with the last good state kept. Either
// sub or prod may be nil; the document's key for it is then ignored.
//
// The weight is set at once. A phase switch runs in the background, since
// leaving Dual waits for the drain; a newer document that asks for another
// phase (or the same phase with another force) cancels the switch still
// waiting and starts its own. Before sub is started, the phase is only
// chosen for Start, so a service can call WatchFile, then Start.
//
// A file that cannot be read or parsed makes WatchFile fail: nothing is
// applied. WatchFile observes the file's directory, not the file, so
// editors and tools that replace the file (write a temporary file and
// rename it over, or Kubernetes' symlink swap) keep being followed. The
// watcher ends when ctx ends or on Close; a phase switch it started is
// then cancelled. A nil logger means slog.Default().
func WatchFile(ctx context.Context, path string, sub *Subscription, prod *Producer, logger *slog.Logger, opts ...WatchOption) (*FileWatcher, error) {
	if sub == nil && prod == nil {
		return nil, fmt.Errorf("%w: WatchFile: no subscription and no producer", ErrInvalidOption)
	}
	if logger == nil {
		logger = slog.Default()
	}
	cfg := watchConfig{debounce: 100 * time.Millisecond}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.debounce < 0 {
		return nil, fmt.Errorf("%w: debounce %v is negative", ErrInvalidOption, cfg.debounce)
	}
	w := &FileWatcher{sub: sub, prod: prod, cfg: cfg, exited: make(chan struct{})}
	fw, data, err := filewatch.New(path,
		filewatch.WithDebounce(cfg.debounce),
		filewatch.WithOnWatchError(func(err error) { w.fail(fmt.Errorf("migrate: watch %s: %w", w.path, err), true) }),
		filewatch.WithOnReadError(func(err error) { w.fail(fmt.Errorf("migrate: %w", err), true) }),
	)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	w.path = fw.Path()
	doc, err := ParseDocument(data)
	if err != nil {
		_ = fw.Close()
		return nil, fmt.Errorf("%s: %w", w.path, err)
	}
	w.logger = logger.With("file", w.path)
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.apply(doc)
	fw.Start(w.ctx, w.reload)
	go func() {
		defer close(w.exited)
		<-fw.Done()
		w.cancel()
		w.jobs.Wait()
	}()
	return w, nil
}

// Close stops watching and cancels a phase switch the watcher started, and
// waits for both to end. What was applied stays in force. It is safe to
// call more than once.
func (w *FileWatcher) Close() error {
	w.cancel()
	<-w.exited
	return nil
}

// Done is closed when the watcher has ended.
func (w *FileWatcher) Done() <-chan struct{} { return w.exited }

// Current returns the document last applied.
func (w *FileWatcher) Current() Document {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Stats returns the watcher's counters.
func (w *FileWatcher) Stats() WatchStats {
	return WatchStats{Applied: w.applied.Load(), Rejected: w.rejected.Load(), PhaseErrors: w.phaseErrors.Load()}
}

// reload parses and applies a new content of the file.
func (w *FileWatcher) reload(data []byte) {
	doc, err := ParseDocument(data)
	if err != nil {
		w.fail(fmt.Errorf("%s: %w", w.path, err), true)
		return
	}
	w.apply(doc)
}

func (w *FileWatcher) fail(err error, rejected bool) {
	if rejected {
		w.rejected.Add(1)
		w.logger.Warn("rmqkit migrate: control file rejected; the last good state stays in force", "error", err)
	} else {
		w.phaseErrors.Add(1)
		w.logger.Error("rmqkit migrate: phase switch failed", "error", err)
	}
	if w.cfg.onError != nil {
		w.cfg.onError(err)
	}
}

// apply applies a valid document: the weight now, the phase through a
// job.
func (w *FileWatcher) apply(doc Document) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current = doc
	w.applied.Add(1)
	w.logger.Info("rmqkit migrate: control file applied", "document", doc.String())
	if doc.Weight != nil && w.prod != nil {
		_ = w.prod.SetWeight(*doc.Weight) // validated by ParseDocument
	}
	if doc.Phase != nil && w.sub != nil {
		w.switchLocked(*doc.Phase, doc.Force)
	}
	if w.cfg.onApply != nil {
		w.cfg.onApply(doc)
	}
}

func (w *FileWatcher) switchLocked(p Phase, force bool) {
	if j := w.job; j != nil {
		select {
		case <-j.done:
		default:
			if j.phase == p && j.force == force {
				return // the same switch is still under way
			}
			j.cancel()
		}
		w.job = nil
	}
	set := w.sub.SetPhase
	if force {
		set = w.sub.ForcePhase
	}
	if !w.sub.started() {
		// Only chooses the phase Start begins in: immediate.
		if err := set(w.ctx, p); err != nil {
			w.fail(err, false)
		}
		return
	}
	ctx, cancel := context.WithCancel(w.ctx)
	j := &phaseJob{phase: p, force: force, cancel: cancel, done: make(chan struct{})}
	w.job = j
	w.jobs.Add(1)
	go func() {
		defer w.jobs.Done()
		defer close(j.done)
		defer cancel()
		if err := set(ctx, p); err != nil && ctx.Err() == nil {
			w.fail(fmt.Errorf("migrate: phase %v from %s: %w", p, w.path, err), false)
		}
	}()
}
