package etcdconfig_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/contrib/etcdconfig"
)

// etcdServer is an embedded etcd with a data directory and ports that
// survive a restart.
type etcdServer struct {
	t      *testing.T
	dir    string
	client string // http://127.0.0.1:port
	peer   string
	e      *embed.Etcd
}

func freeURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

func startEtcd(t *testing.T) *etcdServer {
	s := &etcdServer{t: t, dir: t.TempDir(), client: freeURL(t), peer: freeURL(t)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *etcdServer) start() {
	s.t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = s.dir
	cu, _ := url.Parse(s.client)
	pu, _ := url.Parse(s.peer)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "fatal" // the restart logs its closed listeners as errors
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		s.t.Fatal("etcd did not become ready")
	}
	s.e = e
}

func (s *etcdServer) stop() {
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

func (s *etcdServer) restart() { s.stop(); s.start() }

// proxy forwards TCP connections to target until cut: then it drops them
// and refuses new ones, as a network partition would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func newConsumer(t *testing.T) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:1"), consumer.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe("created", consumer.All, func(context.Context, *consumer.Message) error { return nil }, consumer.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func doc(pool int) string {
	return fmt.Sprintf("group: orders\nsubscriptions:\n  created: {poolSize: %d}\n", pool)
}

func poolSize(c *consumer.Consumer) int { return c.Settings().Subscriptions[0].PoolSize }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errLog records the errors the Watcher reports.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }

func (l *errLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		if errors.Is(err, config.ErrWatch) && strings.Contains(err.Error(), substr) {
			return true
		}
	}
	return false
}

func put(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, key, value)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// TestEtcdKeyDrivesTheConsumerThroughBadValuesRestartsAndCompaction: the
// key's value is applied; later values follow; a bad value or a deleted key
// leaves the last good document in force; after etcd restarts the watch
// resumes; and when the revisions the watch must resume from were
// compacted while it was cut off, the source reads the key again and
// applies its latest value.
func TestEtcdKeyDrivesTheConsumerThroughBadValuesRestartsAndCompaction(t *testing.T) {
	srv := startEtcd(t)
	px := newProxy(t, strings.TrimPrefix(srv.client, "http://"))
	admin := newClient(t, srv.client) // the operator's client, direct
	cli := newClient(t, px.URL())     // the service's client, through the proxy
	const key = "/services/orders/rmqkit.yaml"
	c := newConsumer(t)

	src, err := etcdconfig.New(cli, key, etcdconfig.WithMaxBackoff(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.WatchSource(src, c); err == nil {
		t.Fatal("WatchSource of a missing key succeeded")
	}

	put(t, admin, key, doc(4))
	var errs errLog
	w, err := config.WatchSource(src, c, config.WithOnError(errs.add), config.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if poolSize(c) != 4 {
		t.Fatalf("first value not applied: pool %d", poolSize(c))
	}

	put(t, admin, key, doc(5))
	eventually(t, "the second value", func() bool { return poolSize(c) == 5 })

	// Bad input: rejected, the last good document stays.
	put(t, admin, key, "group: orders\nsubscriptions: {created: {poolSize: 0}}\n")
	put(t, admin, key, "group: [")
	eventually(t, "two rejections", func() bool { return w.Stats().Rejected == 2 })
	if poolSize(c) != 5 {
		t.Fatalf("a rejected value changed the pool to %d", poolSize(c))
	}
	// A deleted key changes nothing; writing it again applies.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	put(t, admin, key, doc(6))
	eventually(t, "the value after the delete", func() bool { return poolSize(c) == 6 })

	// etcd restarts: the watch resumes and the next value applies.
	srv.restart()
	put(t, admin, key, doc(7))
	eventually(t, "the value after the restart", func() bool { return poolSize(c) == 7 })

	// Cut off, the service misses two values, and etcd compacts them away.
	px.setCut(true)
	put(t, admin, key, doc(8))
	rev := put(t, admin, key, doc(9))
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if _, err := admin.Compact(cctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	px.setCut(false)
	eventually(t, "the latest value after the compaction", func() bool { return poolSize(c) == 9 })
	if !errs.has("compacted") {
		t.Errorf("no compaction reported; errors: %v", errs.errs)
	}
	if st := w.Stats(); st.Rejected != 2 {
		t.Errorf("stats %+v, want only the two bad values rejected", st)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for name, f := range map[string]func() error{
		"nil client": func() error { _, err := etcdconfig.New(nil, "k"); return err },
		"empty key":  func() error { _, err := etcdconfig.New(cli, ""); return err },
		"short backoff": func() error {
			_, err := etcdconfig.New(cli, "k", etcdconfig.WithMaxBackoff(time.Millisecond))
			return err
		},
	} {
		if err := f(); !errors.Is(err, etcdconfig.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}
