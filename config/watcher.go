package config

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// Option configures a Watcher in Watch.
type Option func(*watchConfig)

type watchConfig struct {
	onError  func(error)
	onApply  func([]Change)
	logger   *slog.Logger
	debounce time.Duration
}

// WithOnError calls f with every rejection (an error wrapping ErrInvalid)
// and every failure to read or watch the file, from the Watcher's
// goroutine or Apply's caller. The default is no hook; rejections are
// logged and counted either way.
func WithOnError(f func(error)) Option { return func(c *watchConfig) { c.onError = f } }

// WithOnApply calls f after every document applied, with the changes it
// made (possibly none).
func WithOnApply(f func([]Change)) Option { return func(c *watchConfig) { c.onApply = f } }

// WithLogger sets the logger of applied changes and rejections. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *watchConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithDebounce sets how long the file must be quiet after a change before
// it is read: editors write a file in several steps. The default is 100ms.
func WithDebounce(d time.Duration) Option { return func(c *watchConfig) { c.debounce = d } }

// Stats counts a Watcher's documents.
type Stats struct {
	Applied  uint64 // documents applied (each may change nothing)
	Rejected uint64 // documents rejected, and files that could not be read; the last good document stayed in force
	Changes  uint64 // settings changed by the applied documents
}

// Watcher applies a configuration file (or another Source) to a consumer
// and re-applies it whenever it changes. Create it with Watch or
// WatchSource; stop it with Close. Its
// methods are safe for simultaneous use by multiple goroutines.
type Watcher struct {
	path string
	c    *consumer.Consumer
	cfg  watchConfig

	mu      sync.Mutex // serializes applies
	current *Document

	applied, rejected, changes atomic.Uint64

	stop func() error // ends the source's watch and waits for it
}

// Watch applies the document at path to c (see Apply) and then watches the
// file: every change is read after the debounce period and applied if
// valid. A file that does not exist, cannot be parsed or does not fit c
// makes Watch fail: a consumer must not start without its configuration.
//
// Watch observes the file's directory, not the file, so that editors and
// tools that replace the file (write a temporary file and rename it over
// the original, or Kubernetes' ..data symlink swap) keep being followed.
// Content equal to the last content read is ignored.
//
// c must have its subscriptions already; it may be started or not.
func Watch(path string, c *consumer.Consumer, opts ...Option) (*Watcher, error) {
	cfg := newWatchConfig(opts)
	if cfg.debounce < 0 {
		return nil, fmt.Errorf("config: debounce %v is negative", cfg.debounce)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return WatchSource(&fileSource{path: abs, debounce: cfg.debounce}, c, opts...)
}

// Close stops watching. Settings applied stay in force. It is safe to call
// more than once.
func (w *Watcher) Close() error { return w.stop() }

// Apply applies doc to the consumer through the same path as the file:
// validated as a whole, rejected (logged, counted, reported to WithOnError)
// or applied (each change logged). It returns the rejection, or nil. The
// file's next change overrides what Apply set.
func (w *Watcher) Apply(doc *Document) error { return w.apply(doc, "Apply") }

// fromFile is the source of documents read from the watched file.
func (w *Watcher) fromFile(source string) bool { return source == w.path }

// Current returns the document last applied. It must not be modified.
func (w *Watcher) Current() *Document {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Stats returns the Watcher's counters.
func (w *Watcher) Stats() Stats {
	return Stats{Applied: w.applied.Load(), Rejected: w.rejected.Load(), Changes: w.changes.Load()}
}

func (w *Watcher) apply(doc *Document, source string) error {
	w.mu.Lock()
	changes, err := Apply(w.c, doc)
	if err == nil {
		w.current = doc
	}
	w.mu.Unlock()
	group := w.c.Group()
	if err != nil {
		if len(changes) > 0 { // the consumer stopped under us
			w.changes.Add(uint64(len(changes)))
		}
		if w.fromFile(source) {
			err = fmt.Errorf("%s: %w", source, err)
		}
		w.reject(source, err)
		return err
	}
	w.applied.Add(1)
	w.changes.Add(uint64(len(changes)))
	for _, ch := range changes {
		w.cfg.logger.Info("rmqkit config changed", "group", group, "source", source, "field", ch.Field, "old", ch.Old, "new", ch.New)
	}
	w.cfg.logger.Info("rmqkit config applied", "group", group, "source", source, "changes", len(changes))
	if w.cfg.onApply != nil {
		w.cfg.onApply(changes)
	}
	return nil
}

func (w *Watcher) reject(source string, err error) {
	w.rejected.Add(1)
	w.cfg.logger.Warn("rmqkit config rejected; the last good configuration stays in force",
		"group", w.c.Group(), "source", source, "error", err)
	if w.cfg.onError != nil {
		w.cfg.onError(err)
	}
}

// reload parses and applies a new content of the file.
func (w *Watcher) reload(data []byte) {
	doc, err := Parse(data)
	if err != nil {
		w.reject(w.path, fmt.Errorf("%s: %w", w.path, err))
		return
	}
	_ = w.apply(doc, w.path)
}

// watchError reports a failure of the source's watch; it rejects nothing.
func (w *Watcher) watchError(err error) {
	w.cfg.logger.Warn("rmqkit config watch error", "group", w.c.Group(), "error", err)
	if w.cfg.onError != nil {
		w.cfg.onError(err)
	}
}

func (w *Watcher) missing() {
	w.cfg.logger.Warn("rmqkit config document missing; the last good configuration stays in force",
		"group", w.c.Group(), "source", w.path)
}
