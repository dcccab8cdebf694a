package filewatch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher follows one file through its directory. Create it with New,
// apply the first content New returns, then call Start; stop it with
// Close or by ending Start's context. Its methods are safe for
// simultaneous use by multiple goroutines.
type Watcher struct {
	path string
	opts options
	fsw  *fsnotify.Watcher

	digest [sha256.Size]byte // of the content last read; the run goroutine's after Start

	mu       sync.Mutex
	started  bool
	closed   bool
	stop     chan struct{}
	done     chan struct{}
	closeErr error // of releasing the watch; written before done is closed
}

// New watches the directory of path and then reads the file, returning
// its content. A file that cannot be read, or a directory that cannot be
// watched, makes New fail; the errors of the file system are returned
// unwrapped, those of the watch as "watch <dir>: <error>". Nothing is
// reported before Start.
func New(path string, opts ...Option) (*Watcher, []byte, error) {
	o := options{debounce: DefaultDebounce}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.debounce < 0 {
		return nil, nil, fmt.Errorf("%w: debounce %v is negative", ErrInvalidOption, o.debounce)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Dir(abs)
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := fsw.Add(dir); err != nil {
		_ = fsw.Close()
		return nil, nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		_ = fsw.Close()
		return nil, nil, err
	}
	w := &Watcher{path: abs, opts: o, fsw: fsw, digest: sha256.Sum256(data), stop: make(chan struct{}), done: make(chan struct{})}
	return w, data, nil
}

// Path returns the absolute path of the file.
func (w *Watcher) Path() string { return w.path }

// Start follows the file on a new goroutine until ctx ends or Close is
// called, calling onChange with every new content (see the package
// documentation). Calls after the first, or after Close, do nothing.
func (w *Watcher) Start(ctx context.Context, onChange func(data []byte)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed {
		return
	}
	w.started = true
	go w.run(ctx, onChange)
}

// Done is closed when the watcher has ended: after Close, or after Start's
// context ended and the last callback returned.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Close stops watching and waits for a callback under way to return. It
// returns the error of releasing the watch, the first time; later calls
// return nil.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	started := w.started
	w.mu.Unlock()
	close(w.stop)
	if !started {
		err := w.fsw.Close()
		close(w.done)
		return err
	}
	<-w.done
	return w.closeErr
}

// run follows the directory's events until ctx ends or Close.
func (w *Watcher) run(ctx context.Context, onChange func([]byte)) {
	defer close(w.done)
	defer func() { w.closeErr = w.fsw.Close() }()
	name := filepath.Base(w.path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			// "..": Kubernetes swaps the ..data symlink the file goes through.
			if base := filepath.Base(ev.Name); base == name || strings.HasPrefix(base, "..") {
				timer.Reset(w.opts.debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if w.opts.onWatchError != nil {
				w.opts.onWatchError(err)
			}
		case <-timer.C:
			if data, ok := w.read(); ok {
				onChange(data)
			}
		}
	}
}

// read reads the file and reports whether its content is new.
func (w *Watcher) read() ([]byte, bool) {
	data, err := os.ReadFile(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		// Removed, or being replaced: the next event brings it back.
		if w.opts.onMissing != nil {
			w.opts.onMissing()
		}
		return nil, false
	}
	if err != nil {
		if w.opts.onReadError != nil {
			w.opts.onReadError(err)
		}
		return nil, false
	}
	digest := sha256.Sum256(data)
	if digest == w.digest {
		return nil, false
	}
	w.digest = digest
	return data, true
}
