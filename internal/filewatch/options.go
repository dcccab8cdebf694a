package filewatch

import "time"

// DefaultDebounce is the debounce period when WithDebounce is not given.
const DefaultDebounce = 100 * time.Millisecond

// Option configures New.
type Option func(*options)

type options struct {
	debounce     time.Duration
	onWatchError func(error)
	onReadError  func(error)
	onMissing    func()
}

// WithDebounce sets how long the file must be quiet after an event before
// it is read. The default is DefaultDebounce; zero reads at once; a
// negative period makes New fail.
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

// WithOnWatchError calls f with every error of the directory watch itself
// (for example a queue overflow), unwrapped. The default is none; the
// watch goes on either way.
func WithOnWatchError(f func(error)) Option { return func(o *options) { o.onWatchError = f } }

// WithOnReadError calls f with every failure to read the file after a
// change, other than its absence (see WithOnMissing). The default is none;
// the next event makes the file read again either way.
func WithOnReadError(f func(error)) Option { return func(o *options) { o.onReadError = f } }

// WithOnMissing calls f when the file is absent after a change: it is
// being replaced or was removed. The default is none.
func WithOnMissing(f func()) Option { return func(o *options) { o.onMissing = f } }
