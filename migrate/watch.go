package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	rmqconfig "github.com/rmqkit/rmqkit/config"
)

// WatchOption configures Watch and WatchSource.
type WatchOption func(*watchConfig)

type watchConfig struct {
	debounce time.Duration
	onError  func(error)
	onApply  func(Document)
	logger   *slog.Logger
}

// WithDebounce sets how long the file must be quiet after a change before
// it is read: editors write a file in several steps. The default is 100ms.
// It is for Watch's file only.
func WithDebounce(d time.Duration) WatchOption { return func(c *watchConfig) { c.debounce = d } }

// WithOnError calls f with every rejected document (an error wrapping
// config.ErrInvalid), every failure to read or watch the document and every
// phase switch that failed. The default is none; all are logged either way.
func WithOnError(f func(error)) WatchOption { return func(c *watchConfig) { c.onError = f } }

// WithOnApply calls f with every document applied. The weight is set by
// then; a phase switch may still be waiting for a drain.
func WithOnApply(f func(Document)) WatchOption { return func(c *watchConfig) { c.onApply = f } }

// WithWatchLogger sets the watcher's logger. The default is the
// Subscription's (WithLogger), else the Producer's (WithProducerLogger).
func WithWatchLogger(l *slog.Logger) WatchOption { return func(c *watchConfig) { c.logger = l } }

// WatchStats counts a Watcher's documents.
type WatchStats struct {
	Applied  uint64 // documents applied
	Rejected uint64 // documents rejected and versions that could not be read; the last good state stayed
	// PhaseErrors counts phase switches that failed (not those cancelled
	// by a newer document).
	PhaseErrors uint64
}

// Watcher applies a control document to a Subscription and a Producer and
// follows the document's changes. Create it with Watch or WatchSource; it
// ends when the context given to them ends or Close is called. Its methods
// are safe for simultaneous use by multiple goroutines.
type Watcher struct {
	path   string // the source's name
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

// Watch applies the control document in the file at path (see Document:
// a control file of its own, or the consumer's configuration file with a
// migration section) to sub and prod and then follows the file: each change
// is read after the debounce period, validated as a whole and applied, or
// rejected (logged, counted, reported to WithOnError) with the last good
// state kept. Either sub or prod may be nil; the document's key for it is
// then ignored.
//
// The weight is set at once. A phase switch runs in the background, since
// leaving Dual waits for the drain; a newer document that asks for another
// phase (or the same phase with another force) cancels the switch still
// waiting and starts its own. Before sub is started, the phase is only
// chosen for Start, so a service can call Watch, then Start.
//
// A file that cannot be read or parsed makes Watch fail: nothing is
// applied. Watch follows the file as config.Watch does (config.FileSource),
// so editors and tools that replace the file (write a temporary file and
// rename it over, or Kubernetes' symlink swap) keep being followed. The
// watcher ends when ctx ends or on Close; a phase switch it started is
// then cancelled.
func Watch(ctx context.Context, path string, sub *Subscription, prod *Producer, opts ...WatchOption) (*Watcher, error) {
	cfg := newWatchConfig(opts)
	if cfg.debounce < 0 {
		return nil, fmt.Errorf("%w: debounce %v is negative", ErrInvalidOption, cfg.debounce)
	}
	return WatchSource(ctx, rmqconfig.FileSource(path, rmqconfig.WithDebounce(cfg.debounce)), sub, prod, opts...)
}

// WatchSource does what Watch does for any source of the document (a
// config.Source, such as an etcd key of module
// github.com/rmqkit/rmqkit/contrib/etcdconfig).
func WatchSource(ctx context.Context, src rmqconfig.Source, sub *Subscription, prod *Producer, opts ...WatchOption) (*Watcher, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: WatchSource: no source", ErrInvalidOption)
	}
	if sub == nil && prod == nil {
		return nil, fmt.Errorf("%w: Watch: no subscription and no producer", ErrInvalidOption)
	}
	cfg := newWatchConfig(opts)
	logger := cfg.logger
	switch {
	case logger != nil:
	case sub != nil:
		logger = sub.cfg.logger
	default:
		logger = prod.logger
	}
	w := &Watcher{path: src.String(), sub: sub, prod: prod, cfg: cfg, exited: make(chan struct{})}
	w.logger = logger.With("source", w.path)
	w.ctx, w.cancel = context.WithCancel(ctx)
	first := make(chan error, 1)
	var (
		mu              sync.Mutex // between the source's goroutines and the end of its Watch
		started, failed bool
	)
	go func() {
		defer close(w.exited)
		err := src.Watch(w.ctx, func(data []byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case failed:
			case !started:
				started = true
				ierr := w.initial(data, err)
				failed = ierr != nil
				first <- ierr
			default:
				w.update(data, err)
			}
		})
		mu.Lock()
		if !started {
			started, failed = true, true
			first <- fmt.Errorf("migrate: watch %s: %w", w.path, err)
		}
		mu.Unlock()
		w.cancel()
		w.jobs.Wait()
	}()
	if err := <-first; err != nil {
		w.cancel()
		<-w.exited
		return nil, err
	}
	return w, nil
}

func newWatchConfig(opts []WatchOption) watchConfig {
	cfg := watchConfig{debounce: 100 * time.Millisecond}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg
}

// initial applies the source's first version.
func (w *Watcher) initial(data []byte, err error) error {
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	doc, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	w.apply(*doc)
	return nil
}

// update handles a later version of the source.
func (w *Watcher) update(data []byte, err error) {
	switch {
	case err == nil:
		w.reload(data)
	case errors.Is(err, fs.ErrNotExist):
		// Absent for a moment, as in the middle of a replacement: the
		// state stays, and the next version is read when it comes.
		w.logger.Warn("rmqkit migrate: control document absent; the last good state stays in force", "error", err)
	default:
		w.fail(fmt.Errorf("migrate: %w", err), true)
	}
}

// Close stops watching and cancels a phase switch the watcher started, and
// waits for both to end. What was applied stays in force. It is safe to
// call more than once.
func (w *Watcher) Close() error {
	w.cancel()
	<-w.exited
	return nil
}

// Done is closed when the watcher has ended.
func (w *Watcher) Done() <-chan struct{} { return w.exited }

// Current returns the document last applied.
func (w *Watcher) Current() Document {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Stats returns the watcher's counters.
func (w *Watcher) Stats() WatchStats {
	return WatchStats{Applied: w.applied.Load(), Rejected: w.rejected.Load(), PhaseErrors: w.phaseErrors.Load()}
}

// reload parses and applies a new content of the file.
func (w *Watcher) reload(data []byte) {
	doc, err := Parse(data)
	if err != nil {
		w.fail(fmt.Errorf("%s: %w", w.path, err), true)
		return
	}
	w.apply(*doc)
}

func (w *Watcher) fail(err error, rejected bool) {
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
func (w *Watcher) apply(doc Document) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current = doc
	w.applied.Add(1)
	w.logger.Info("rmqkit migrate: control file applied", "document", doc.String())
	if doc.Weight != nil && w.prod != nil {
		_ = w.prod.SetWeight(*doc.Weight) // validated by Parse
	}
	if doc.Phase != nil && w.sub != nil {
		w.switchLocked(*doc.Phase, doc.Force)
	}
	if w.cfg.onApply != nil {
		w.cfg.onApply(doc)
	}
}

func (w *Watcher) switchLocked(p Phase, force bool) {
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
