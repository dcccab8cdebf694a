package config_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/rmqkit/rmqkit/config"
)

// chanSource delivers the versions sent on its channel.
type chanSource struct {
	first    []byte
	firstErr error // passed with the first version
	failNow  error // returned by Watch before any version
	versions chan version
}

type version struct {
	doc []byte
	err error
}

func (s *chanSource) String() string { return "test source" }

func (s *chanSource) Watch(ctx context.Context, update func([]byte, error)) error {
	if s.failNow != nil {
		return s.failNow
	}
	update(s.first, s.firstErr)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case v := <-s.versions:
			update(v.doc, v.err)
		}
	}
}

func TestWatchSourceAppliesEveryVersionAndKeepsTheLastGoodOne(t *testing.T) {
	c := newConsumer(t, nil)
	h := &hooks{}
	src := &chanSource{first: []byte(doc(4, 50)), versions: make(chan version)}
	w, err := config.WatchSource(src, c, h.options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if created(c).PoolSize != 4 {
		t.Fatalf("first version not applied: %+v", created(c))
	}
	send := func(v version) { src.versions <- v }
	send(version{doc: []byte(doc(6, 50))})
	eventually(t, "the second version", func() bool { return created(c).PoolSize == 6 })
	for _, bad := range []version{
		{doc: []byte(doc(0, 50))},                        // invalid value
		{doc: []byte("group: orders\nsubscriptions: [")}, // not YAML
		{err: errors.New("read failed")},                 // unreadable
	} {
		send(bad)
	}
	eventually(t, "three rejections", func() bool { return w.Stats().Rejected == 3 })
	// Absence and a failing watch are reported but reject nothing.
	send(version{err: fmt.Errorf("key deleted: %w", fs.ErrNotExist)})
	send(version{err: fmt.Errorf("%w: connection lost", config.ErrWatch)})
	send(version{doc: []byte(doc(6, 50))}) // a version after them, to wait on
	eventually(t, "the last version", func() bool { return w.Stats().Applied == 3 })
	if st := w.Stats(); st.Rejected != 3 || created(c).PoolSize != 6 {
		t.Fatalf("stats %+v, pool %d; want 3 rejections and the last good pool size 6", st, created(c).PoolSize)
	}
	if errs, _ := h.counts(); errs != 4 { // three rejections and the watch failure
		t.Errorf("OnError called %d times, want 4", errs)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func TestWatchSourceRefusesAMissingOrBadFirstVersion(t *testing.T) {
	c := newConsumer(t, nil)
	before := created(c)
	for name, tc := range map[string]struct {
		src  *chanSource
		want error
	}{
		"absent":       {&chanSource{firstErr: fmt.Errorf("no key: %w", fs.ErrNotExist)}, fs.ErrNotExist},
		"invalid":      {&chanSource{first: []byte(doc(0, 5))}, config.ErrInvalid},
		"cannot watch": {&chanSource{failNow: errors.New("dial failed")}, nil},
	} {
		tc.src.versions = make(chan version)
		w, err := config.WatchSource(tc.src, c)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: WatchSource = %v, %v; want an error wrapping %v", name, w, err, tc.want)
		}
	}
	if created(c) != before {
		t.Fatalf("a refused first version changed the consumer: %+v, was %+v", created(c), before)
	}
}
