package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
)

// fakeClock advances by d on every After(d), at once: a drain loop runs
// through fake minutes in microseconds, deterministically.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// since returns the fake time elapsed since epoch.
func (c *fakeClock) since() time.Duration { return c.Now().Sub(epoch) }

// fakeLag answers readings from a script: a function of the side and the
// fake time since epoch.
type fakeLag struct {
	mu     sync.Mutex
	clk    *fakeClock
	script func(side Side, at time.Duration) (reading, error)
	calls  [2]int
}

func (f *fakeLag) read(ctx context.Context, side Side) (reading, error) {
	if err := ctx.Err(); err != nil {
		return reading{}, err
	}
	f.mu.Lock()
	f.calls[side]++
	script := f.script
	f.mu.Unlock()
	if script == nil {
		return reading{}, nil
	}
	return script(side, f.clk.since())
}

func (f *fakeLag) close() {}

func (f *fakeLag) set(script func(side Side, at time.Duration) (reading, error)) {
	f.mu.Lock()
	f.script = script
	f.mu.Unlock()
}

// fakeConsumer is a started side consumer.
type fakeConsumer struct {
	side    Side
	stopped chan struct{}
	once    sync.Once
}

func (c *fakeConsumer) Stop(context.Context) error {
	c.once.Do(func() { close(c.stopped) })
	return nil
}

func (c *fakeConsumer) isStopped() bool {
	select {
	case <-c.stopped:
		return true
	default:
		return false
	}
}

// env is a Subscription wired to fakes.
type env struct {
	t       *testing.T
	s       *Subscription
	clk     *fakeClock
	lag     *fakeLag
	mu      sync.Mutex
	started []*fakeConsumer
	failNew error // returned by the next start of a side
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv returns an unstarted Subscription on fakes: fake clock, fake lag
// (no lag, nothing stored, unless scripted), fake consumers, no background
// readings. Defaults: settle 10s, interval 1s, grace 10s.
func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	cfg := defaultConfig()
	cfg.lagInterval = time.Second
	cfg.logger = quietLogger()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clk: newFakeClock()}
	e.lag = &fakeLag{clk: e.clk}
	cl := Cluster{NameServers: []string{"127.0.0.1:1"}}
	e.s = newSubscription("G", "T", consumer.All, func(context.Context, *consumer.Message) error { return nil }, [2]Cluster{cl, cl}, cfg)
	e.s.clk = e.clk
	e.s.lag = e.lag
	e.s.startFn = func(_ context.Context, side Side) (sideConsumer, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := e.failNew; err != nil {
			e.failNew = nil
			return nil, err
		}
		c := &fakeConsumer{side: side, stopped: make(chan struct{})}
		e.started = append(e.started, c)
		return c, nil
	}
	t.Cleanup(func() { _ = e.s.Stop(context.Background()) })
	return e
}

func (e *env) start() {
	e.t.Helper()
	if err := e.s.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// running returns the sides of consumers started and not stopped.
func (e *env) running() []Side {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Side
	for _, c := range e.started {
		if !c.isStopped() {
			out = append(out, c.side)
		}
	}
	return out
}

// handle runs msg through side's tracking middleware with a handler that
// returns err.
func (e *env) handle(side Side, m *consumer.Message, err error) {
	h := e.s.track(side)(func(context.Context, *consumer.Message) error { return err })
	_ = h(context.Background(), m)
}

func msg(id string, reconsume int, props map[string]string) *consumer.Message {
	m := consumer.NewTestMessage("T", id, nil, props)
	m.ReconsumeCount = reconsume
	return m
}

var errHandler = errors.New("handler failed")

// fakeSender is a rocketmq-client-go producer that records what it sends.
type fakeSender struct {
	mu       sync.Mutex
	calls    [][]*primitive.Message
	fail     error
	shutdown bool
}

func (f *fakeSender) SendSync(_ context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return primitive.NewSendResult(), f.fail
	}
	f.calls = append(f.calls, msgs)
	return &primitive.SendResult{Status: primitive.SendOK, MsgID: "x"}, nil
}

func (f *fakeSender) Shutdown() error {
	f.mu.Lock()
	f.shutdown = true
	f.mu.Unlock()
	return nil
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += len(c)
	}
	return n
}

func newFakeProducer(t *testing.T, opts ...ProducerOption) (*Producer, *fakeSender, *fakeSender) {
	t.Helper()
	cfg := producerConfig{logger: quietLogger()}
	for _, o := range opts {
		o(&cfg)
	}
	old, nw := &fakeSender{}, &fakeSender{}
	return newProducer([2]sender{old, nw}, cfg), old, nw
}
