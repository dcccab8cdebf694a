package filewatch_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/internal/filewatch"
	"github.com/rmqkit/rmqkit/internal/filewatch/filewatchtest"
)

const debounce = 20 * time.Millisecond

// recorder collects what a Watcher reports.
type recorder struct {
	mu        sync.Mutex
	contents  []string
	readErrs  []error
	watchErrs []error
	missing   int
	closed    bool // set once Close returned; a callback after it is a bug
}

func (r *recorder) options() []filewatch.Option {
	return []filewatch.Option{
		filewatch.WithDebounce(debounce),
		filewatch.WithOnReadError(func(err error) { r.mu.Lock(); r.readErrs = append(r.readErrs, err); r.mu.Unlock() }),
		filewatch.WithOnWatchError(func(err error) { r.mu.Lock(); r.watchErrs = append(r.watchErrs, err); r.mu.Unlock() }),
		filewatch.WithOnMissing(func() { r.mu.Lock(); r.missing++; r.mu.Unlock() }),
	}
}

func (r *recorder) onChange(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		panic("content reported after Close returned")
	}
	r.contents = append(r.contents, string(data))
}

func (r *recorder) snapshot() (contents []string, readErrs, missing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.contents), len(r.readErrs), r.missing
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// quiet waits long enough for a pending read to have happened.
func quiet() { time.Sleep(5 * debounce) }

// kubernetesDir lays out dir as a ConfigMap volume holding name with
// content v1: name -> ..data/name, ..data -> ..v1.
func kubernetesDir(t *testing.T, dir, name string) string {
	t.Helper()
	must(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
	filewatchtest.Write(t, filepath.Join(dir, "..v1", name), "v1")
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	return filepath.Join(dir, name)
}

// kubernetesSwap publishes content as Kubernetes does: a new version
// directory, then an atomic rename of a new ..data symlink.
func kubernetesSwap(t *testing.T, dir, name, content string) {
	t.Helper()
	must(t, os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
	filewatchtest.Write(t, filepath.Join(dir, "..v2", name), content)
	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
}

func TestWatcherReportsEachNewContent(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(t *testing.T, dir string) string // lays out the file with content v1; nil: a plain file
		change       func(t *testing.T, dir, path string)
		want         []string // contents reported, in order
		wantMissing  int      // calls of OnMissing; -1: any
		wantReadErrs int      // calls of OnReadError
	}{
		{
			name:   "an in-place edit is reported",
			change: func(t *testing.T, _, path string) { filewatchtest.Write(t, path, "v2") },
			want:   []string{"v2"},
		},
		{
			name:   "a file renamed over the original is reported",
			change: func(t *testing.T, _, path string) { filewatchtest.Replace(t, path, "v2") },
			want:   []string{"v2"},
		},
		{
			name:   "a Kubernetes ..data symlink swap is reported",
			setup:  func(t *testing.T, dir string) string { return kubernetesDir(t, dir, "app.yaml") },
			change: func(t *testing.T, dir, _ string) { kubernetesSwap(t, dir, "app.yaml", "v2") },
			want:   []string{"v2"},
		},
		{
			name: "content equal to the last content read is not reported",
			change: func(t *testing.T, _, path string) {
				filewatchtest.Write(t, path, "v1")
				quiet()
				filewatchtest.Write(t, path, "v2")
				quiet()
				filewatchtest.Replace(t, path, "v2")
				quiet()
				filewatchtest.Write(t, path, "v1")
			},
			want: []string{"v2", "v1"},
		},
		{
			name: "writes within the debounce period are read once",
			change: func(t *testing.T, _, path string) {
				for _, c := range []string{"v", "v2-", "v2"} {
					filewatchtest.Write(t, path, c)
				}
			},
			want: []string{"v2"},
		},
		{
			name: "a missing file is being replaced, not an error",
			change: func(t *testing.T, _, path string) {
				must(t, os.Remove(path))
				quiet()
				filewatchtest.Write(t, path, "v2")
			},
			want:        []string{"v2"},
			wantMissing: 1,
		},
		{
			name: "other files of the directory are ignored",
			change: func(t *testing.T, dir, path string) {
				must(t, os.Remove(path)) // read once, found missing
				quiet()
				filewatchtest.Write(t, filepath.Join(dir, "other.yaml"), "x")
				filewatchtest.Replace(t, filepath.Join(dir, "other.yaml"), "y")
				quiet()
				filewatchtest.Write(t, path, "v2")
			},
			want:        []string{"v2"},
			wantMissing: 1, // more: events of other files made the file read
		},
		{
			name: "a file that cannot be read is reported as a read error",
			change: func(t *testing.T, _, path string) {
				must(t, os.Remove(path))
				must(t, os.Mkdir(path, 0o755))
				quiet()
				must(t, os.Remove(path))
				filewatchtest.Write(t, path, "v2")
			},
			want:         []string{"v2"},
			wantMissing:  -1, // the removals may be seen or not
			wantReadErrs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.yaml")
			if tc.setup != nil {
				path = tc.setup(t, dir)
			} else {
				filewatchtest.Write(t, path, "v1")
			}
			r := &recorder{}
			w, first, err := filewatch.New(path, r.options()...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = w.Close() })
			if string(first) != "v1" {
				t.Fatalf("New returned %q, want v1", first)
			}
			w.Start(context.Background(), r.onChange)

			tc.change(t, dir, path)
			filewatchtest.Eventually(t, "the last content", func() bool {
				got, _, _ := r.snapshot()
				return len(got) >= len(tc.want)
			})
			quiet() // nothing more may come
			got, readErrs, missing := r.snapshot()
			if !slices.Equal(got, tc.want) {
				t.Errorf("reported %q, want %q", got, tc.want)
			}
			if tc.wantMissing >= 0 && missing != tc.wantMissing {
				t.Errorf("OnMissing called %d times, want %d", missing, tc.wantMissing)
			}
			if readErrs != tc.wantReadErrs {
				t.Errorf("OnReadError called %d times, want %d", readErrs, tc.wantReadErrs)
			}
		})
	}
}

func TestNewFails(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts []filewatch.Option
		want error // nil: any error
	}{
		{"on a missing file", filepath.Join(dir, "missing.yaml"), nil, fs.ErrNotExist},
		{"on a missing directory", filepath.Join(dir, "nodir", "app.yaml"), nil, nil},
		{"on a negative debounce", filepath.Join(dir, "app.yaml"), []filewatch.Option{filewatch.WithDebounce(-time.Second)}, filewatch.ErrInvalidOption},
	}
	filewatchtest.Write(t, filepath.Join(dir, "app.yaml"), "v1")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, data, err := filewatch.New(tc.path, tc.opts...)
			if err == nil || w != nil || data != nil {
				t.Fatalf("New = %v, %q, %v; want an error", w, data, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWatcherEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, w *filewatch.Watcher, start func(), cancel context.CancelFunc)
	}{
		{"with its context", func(t *testing.T, w *filewatch.Watcher, start func(), cancel context.CancelFunc) {
			start()
			cancel()
			select {
			case <-w.Done():
			case <-time.After(filewatchtest.Timeout):
				t.Fatal("Done not closed after the context ended")
			}
		}},
		{"on Close, which is idempotent", func(t *testing.T, w *filewatch.Watcher, start func(), _ context.CancelFunc) {
			start()
			must(t, w.Close())
			if err := w.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
		}},
		{"on Close before Start; Start then does nothing", func(t *testing.T, w *filewatch.Watcher, start func(), _ context.CancelFunc) {
			must(t, w.Close())
			select {
			case <-w.Done():
			default:
				t.Fatal("Done not closed by Close before Start")
			}
			start()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.yaml")
			filewatchtest.Write(t, path, "v1")
			r := &recorder{}
			w, _, err := filewatch.New(path, r.options()...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.end(t, w, func() { w.Start(ctx, r.onChange) }, cancel)
			must(t, w.Close()) // also after the end
			<-w.Done()
			r.mu.Lock()
			r.closed = true
			r.mu.Unlock()
			filewatchtest.Write(t, path, "v2")
			quiet()
			if got, _, _ := r.snapshot(); len(got) != 0 {
				t.Fatalf("reported %q after the end", got)
			}
		})
	}
}
