package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/filewatch"
)

// Source is where a configuration document comes from and how its changes
// are followed: a file (Watch), a key of a config centre (module
// github.com/rmqkit/rmqkit/contrib/etcdconfig), or anything that delivers
// successive versions of the YAML document. WatchSource applies it to a
// consumer.
type Source interface {
	// Watch calls update with the document's current content, then with
	// every later content, until ctx ends; it then returns ctx.Err(). Calls
	// to update come one at a time. A version that cannot be delivered
	// passes a nil doc and an error: one wrapping fs.ErrNotExist when the
	// document is absent (deleted, being replaced), one wrapping ErrWatch
	// when the watch itself failed (it goes on), any other for a document
	// that could not be read. Watch returns an error without calling update
	// when it cannot watch at all.
	Watch(ctx context.Context, update func(doc []byte, err error)) error
	// String names the source in logs and errors: a path, an etcd key.
	String() string
}

// ErrWatch is wrapped by the errors a Source reports when its watch fails
// but goes on (a lost connection, an overflowing event queue): the
// documents are not in question, and the last good one stays in force.
var ErrWatch = errors.New("config: watch failed")

// WatchSource applies src's current document to c (see Apply) and then
// every later version of it, as Watch does for a file: a version that
// cannot be read, parsed or applied is rejected (logged, counted, reported
// to WithOnError) and the last good document stays in force; an absent
// document is logged and changes nothing. A first version that is missing
// or rejected makes WatchSource fail: a consumer must not start without its
// configuration. Watcher.Apply's changes hold until src's next version.
//
// c must have its subscriptions already; it may be started or not.
// WithDebounce is for Watch's file and has no effect here.
func WatchSource(src Source, c *consumer.Consumer, opts ...Option) (*Watcher, error) {
	if src == nil || c == nil {
		return nil, errors.New("config: WatchSource needs a source and a consumer")
	}
	cfg := newWatchConfig(opts)
	w := &Watcher{c: c, cfg: cfg, path: src.String()}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	done := make(chan struct{})
	var (
		mu             sync.Mutex // the flags, between update (on the source's goroutines) and the end of Watch
		started, quits bool
		watchErr       error
	)
	go func() {
		defer close(done)
		err := src.Watch(ctx, func(doc []byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case quits:
			case !started:
				started = true
				ierr := w.initial(doc, err)
				quits = ierr != nil
				first <- ierr
			default:
				w.update(doc, err)
			}
		})
		mu.Lock()
		defer mu.Unlock()
		if !started {
			started, quits = true, true
			first <- fmt.Errorf("config: %w", err)
		}
		if !errors.Is(err, context.Canceled) {
			watchErr = err
		}
	}()
	if err := <-first; err != nil {
		cancel()
		<-done
		return nil, err
	}
	w.stop = func() error {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		err := watchErr
		watchErr = nil // returned once, like the file watcher's
		return err
	}
	return w, nil
}

func newWatchConfig(opts []Option) watchConfig {
	cfg := watchConfig{logger: slog.Default(), debounce: 100 * time.Millisecond}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg
}

// initial applies the source's first version.
func (w *Watcher) initial(doc []byte, err error) error {
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d, err := Parse(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	return w.apply(d, w.path)
}

// update handles a later version of the source.
func (w *Watcher) update(doc []byte, err error) {
	switch {
	case err == nil:
		w.reload(doc)
	case errors.Is(err, fs.ErrNotExist):
		w.missing()
	case errors.Is(err, ErrWatch):
		w.watchError(err)
	default:
		w.reject(w.path, fmt.Errorf("config: %w", err))
	}
}

// FileSource is the document in the file at path, followed as Watch follows
// it: through the file's directory, so that a file replaced by a rename or
// a symlink swap keeps being followed; each change is read once the file
// has been quiet for WithDebounce (default 100ms), the only option it reads.
// Package migrate watches its control file through it.
func FileSource(path string, opts ...Option) Source {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &fileSource{path: path, debounce: newWatchConfig(opts).debounce}
}

// fileSource is Watch's file, followed through its directory
// (internal/filewatch).
type fileSource struct {
	path     string // absolute
	debounce time.Duration
}

func (s *fileSource) String() string { return s.path }

func (s *fileSource) Watch(ctx context.Context, update func([]byte, error)) error {
	fw, data, err := filewatch.New(s.path,
		filewatch.WithDebounce(s.debounce),
		filewatch.WithOnWatchError(func(err error) {
			update(nil, fmt.Errorf("%w: %s: %w", ErrWatch, filepath.Dir(s.path), err))
		}),
		filewatch.WithOnReadError(func(err error) { update(nil, err) }),
		filewatch.WithOnMissing(func() { update(nil, fmt.Errorf("%s: %w", s.path, fs.ErrNotExist)) }),
	)
	if err != nil {
		return err
	}
	update(data, nil)
	fw.Start(ctx, func(data []byte) { update(data, nil) })
	<-ctx.Done()
	if err := fw.Close(); err != nil {
		return err
	}
	return ctx.Err()
}
