package etcdconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rmqkit/rmqkit/config"
)

// ErrInvalidOption is wrapped by the errors New returns for a bad argument.
var ErrInvalidOption = errors.New("etcdconfig: invalid option")

// Option configures a Source in New.
type Option func(*Source)

// WithMaxBackoff sets the longest wait between two attempts to read the key
// again after the watch broke. Attempts start 100 ms apart and double. The
// default is 5 seconds; it must be at least 100 ms.
func WithMaxBackoff(d time.Duration) Option { return func(s *Source) { s.maxBackoff = d } }

// Source follows one etcd key holding a configuration document. Create it
// with New and give it to config.WatchSource. The etcd client stays the
// caller's: Source never closes it.
type Source struct {
	cli        *clientv3.Client
	key        string
	maxBackoff time.Duration
}

var _ config.Source = (*Source)(nil)

// New returns a Source for key, read and watched through cli. Errors wrap
// ErrInvalidOption.
func New(cli *clientv3.Client, key string, opts ...Option) (*Source, error) {
	s := &Source{cli: cli, key: key, maxBackoff: 5 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	switch {
	case cli == nil:
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOption)
	case key == "":
		return nil, fmt.Errorf("%w: empty key", ErrInvalidOption)
	case s.maxBackoff < minBackoff:
		return nil, fmt.Errorf("%w: WithMaxBackoff %v is below %v", ErrInvalidOption, s.maxBackoff, minBackoff)
	}
	return s, nil
}

const minBackoff = 100 * time.Millisecond

// String names the source in logs: "etcd key <key>".
func (s *Source) String() string { return "etcd key " + s.key }

// Watch implements config.Source: it reads the key, delivers its value, and
// follows its changes until ctx ends (see the package documentation). A
// first read that fails returns its error, without calling update.
func (s *Source) Watch(ctx context.Context, update func(doc []byte, err error)) error {
	st := &state{update: update}
	rev, err := s.read(ctx, st)
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	backoff := minBackoff
	for {
		next, err := s.follow(ctx, st, rev)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		update(nil, fmt.Errorf("%w: %s: %w", config.ErrWatch, s, err))
		if next > rev {
			backoff = minBackoff // the watch made progress: retry at once
		} else {
			// It broke without delivering anything: do not spin on a
			// cluster that accepts reads but not watches.
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, s.maxBackoff)
		}
		// Read the key again: the watch may not resume (compaction), and a
		// read that succeeds proves the cluster is back.
		for {
			r, err := s.read(ctx, st)
			if err == nil {
				rev = r
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			update(nil, fmt.Errorf("%w: %s: %w", config.ErrWatch, s, err))
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, s.maxBackoff)
		}
	}
}

// state is what Watch delivered last.
type state struct {
	update func([]byte, error)
	last   []byte
	absent bool
}

func (st *state) put(v []byte) {
	if !st.absent && st.last != nil && bytes.Equal(v, st.last) {
		return // rewritten unchanged
	}
	st.last, st.absent = bytes.Clone(v), false
	st.update(st.last, nil)
}

func (st *state) remove(key string) {
	if st.absent {
		return
	}
	st.absent = true
	st.update(nil, fmt.Errorf("etcd key %s deleted: %w", key, fs.ErrNotExist))
}

// read gets the key, delivers its value if it changed, and returns the
// store's revision at the read.
func (s *Source) read(ctx context.Context, st *state) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key)
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		st.remove(s.key)
	} else {
		st.put(resp.Kvs[0].Value)
	}
	return resp.Header.Revision, nil
}

// follow watches the key from the revision after rev until the watch ends,
// and returns the last revision it saw and why it ended.
func (s *Source) follow(ctx context.Context, st *state, rev int64) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range s.cli.Watch(wctx, s.key, clientv3.WithRev(rev+1)) {
		if resp.CompactRevision != 0 {
			return rev, fmt.Errorf("revisions up to %d were compacted; reading the key again", resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return rev, err
		}
		for _, ev := range resp.Events {
			switch ev.Type {
			case clientv3.EventTypePut:
				st.put(ev.Kv.Value)
			case clientv3.EventTypeDelete:
				st.remove(s.key)
			}
		}
		rev = max(rev, resp.Header.Revision)
	}
	return rev, errors.New("watch channel closed")
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
