//go:build integration

package broadcast_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// inst is a broadcast consumer and its instance.
type inst struct {
	*consumer.Consumer
	*broadcast.Instance
}

// Group is the instance group (both halves say the same).
func (i inst) Group() string { return i.Consumer.Group() }

// option adds broadcast or consumer options to instance.
type option func(*[]consumer.Option, *[]broadcast.Option)

func bo(opts ...broadcast.Option) option {
	return func(_ *[]consumer.Option, b *[]broadcast.Option) { *b = append(*b, opts...) }
}

func co(opts ...consumer.Option) option {
	return func(c *[]consumer.Option, _ *[]broadcast.Option) { *c = append(*c, opts...) }
}

// instance returns a broadcast consumer of base on cl with the given
// identity, subscribed to topic with h, stopped at the end of the test. It
// is not started.
func instance(t *testing.T, cl *rmqtest.Cluster, base, identity, topic string, h consumer.Handler, opts ...option) inst {
	t.Helper()
	copts := []consumer.Option{consumer.WithNameServer(cl.NameServer), consumer.WithLogger(quiet)}
	bopts := []broadcast.Option{broadcast.WithIdentity(identity), broadcast.WithStateDir(t.TempDir())}
	for _, o := range opts {
		o(&copts, &bopts)
	}
	c, err := consumer.New(base, append(copts, broadcast.Mode(bopts...))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.All, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, c) })
	i, _ := broadcast.InstanceOf(c)
	return inst{c, i}
}

// quiet logs warnings and errors only.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func start(t *testing.T, c interface{ Start(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func stop(t *testing.T, c interface {
	Stop(context.Context) error
	Group() string
}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop %s: %v", c.Group(), err)
	}
}

func collect(got *rmqtest.Collector) consumer.Handler {
	return func(_ context.Context, m *consumer.Message) error {
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}
}

func adminClient(t *testing.T, cl *rmqtest.Cluster) *admin.Client {
	t.Helper()
	adm, err := admin.New([]string{cl.NameServer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

func TestEveryInstanceReceivesEveryMessage(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	base := cl.NewGroup(t)
	var got [3]*rmqtest.Collector
	groups := map[string]bool{}
	for i := range got {
		got[i] = rmqtest.NewCollector()
		c := instance(t, cl, base, fmt.Sprintf("node-%d", i), topic, collect(got[i]))
		start(t, c)
		groups[c.Group()] = true
	}
	if len(groups) != 3 {
		t.Fatalf("instances share groups: %v", groups)
	}
	began := time.Now()
	ids := cl.NewProducer(t).Produce(topic, "m", 10000)
	for i, g := range got {
		r := g.RequireAll(t, ids, 180*time.Second)
		if r.Duplicates != 0 {
			t.Errorf("instance %d: %d duplicates in a fault-free run", i, r.Duplicates)
		}
	}
	t.Logf("3 instances x %d messages delivered in %v", len(ids), time.Since(began))
}

// A new instance starts at the end of the queues, although the broker would
// hand a brand-new group the whole content of young queues; with
// WithStartTime it starts at the messages stored since then.
func TestNewInstanceStartsAtTheEndOrAtItsStartTime(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	base := cl.NewGroup(t)
	p := cl.NewProducer(t)
	older := p.Produce(topic, "older", 100)
	time.Sleep(1500 * time.Millisecond)
	mark := time.Now()
	time.Sleep(1500 * time.Millisecond)
	old := p.Produce(topic, "old", 100)

	latest, since := rmqtest.NewCollector(), rmqtest.NewCollector()
	start(t, instance(t, cl, base, "latest", topic, collect(latest)))
	start(t, instance(t, cl, base, "since", topic, collect(since), bo(broadcast.WithStartTime(mark))))
	fresh := p.Produce(topic, "new", 100)

	latest.RequireAll(t, fresh, 60*time.Second)
	since.RequireAll(t, append(slices.Clone(old), fresh...), 60*time.Second)
	time.Sleep(2 * time.Second) // anything else would have come by now
	if n := len(latest.Check(append(slices.Clone(older), old...)).Lost); n != 200 {
		t.Errorf("the new instance received %d messages produced before its start", 200-n)
	}
	if n := len(since.Check(older).Lost); n != 100 {
		t.Errorf("the instance starting at %v received %d older messages", mark, 100-n)
	}
}

// Why Start commits a new group's start offsets itself: the broker answers
// a group it has never seen with offset 0 while a queue's first message is
// in its page cache, so the client's ConsumeFromLastOffset alone would hand
// a new instance the whole history of a young topic.
func TestBrokerHandsABrandNewGroupTheWholeYoungQueue(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(2))
	old := cl.NewProducer(t).Produce(topic, "old", 50)
	got := rmqtest.NewCollector()
	cl.StartPlainConsumer(t, topic, got, rmq.WithConsumeFromWhere(rmq.ConsumeFromLastOffset))
	r := got.WaitAll(t, old, 15*time.Second)
	t.Logf("plain client, new group, ConsumeFromLastOffset: received %d of %d messages produced before it started", len(old)-len(r.Lost), len(old))
	if len(r.Lost) == len(old) {
		t.Fatal("the broker no longer hands a new group old messages: initOffsets may be unnecessary")
	}
}

// A restarted instance resumes from its committed offsets: it receives what
// was produced while it was down, rather than starting at the end again.
func TestRestartedInstanceGetsWhatWasProducedWhileItWasDown(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	base := cl.NewGroup(t)
	p := cl.NewProducer(t)
	first, second := rmqtest.NewCollector(), rmqtest.NewCollector()

	a := instance(t, cl, base, "node", topic, collect(first))
	start(t, a)
	before := p.Produce(topic, "before", 300)
	first.RequireAll(t, before, 60*time.Second)
	stop(t, a)

	during := p.Produce(topic, "during", 300)
	b := instance(t, cl, base, "node", topic, collect(second), bo(broadcast.WithIdentityWait(30*time.Second)))
	if b.Group() != a.Group() {
		t.Fatalf("groups %q and %q for one identity", a.Group(), b.Group())
	}
	start(t, b)
	after := p.Produce(topic, "after", 300)
	r := second.RequireAll(t, slices.Concat(during, after), 60*time.Second)
	if r.Duplicates != 0 {
		t.Errorf("%d duplicates of messages only the restarted instance consumed", r.Duplicates)
	}
	// Messages the first instance handled that the second saw too.
	again := len(before) - len(second.Check(before).Lost)
	t.Logf("after a graceful restart: 0 lost; %d of %d messages handled before the stop came again", again, len(before))
	// docs/broadcast.md (Guarantees): after a graceful stop nothing comes
	// again (Stop waits until the client has booked every acknowledged
	// callback, and never cuts a callback in two).
	if again != 0 {
		t.Errorf("%d of %d messages handled before a graceful stop came again", again, len(before))
	}
	for _, id := range before {
		if n := second.Count(id); n > 1 {
			t.Errorf("%s delivered %d times after one graceful restart", id, n)
		}
	}
}

// Stopping and starting an instance with the same identity again and again,
// in one process, is never refused and loses nothing produced while it was
// stopped.
func TestRepeatedRestartsInProcessLoseNothing(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	base := cl.NewGroup(t)
	p := cl.NewProducer(t)
	got := rmqtest.NewCollector()
	var all []string
	const restarts = 8 // each instance lives at least 1.5 s (see Stop)
	for i := range restarts {
		c := instance(t, cl, base, "node", topic, collect(got))
		start(t, c)
		ids := p.Produce(topic, fmt.Sprintf("up%d", i), 50)
		got.WaitAll(t, ids, 30*time.Second)
		stop(t, c)
		all = append(all, ids...)
		all = append(all, p.Produce(topic, fmt.Sprintf("down%d", i), 50)...)
	}
	c := instance(t, cl, base, "node", topic, collect(got))
	start(t, c)
	r := got.RequireAll(t, all, 60*time.Second)
	t.Logf("%d restarts: 0 lost of %d; %d delivered again", restarts, len(all), r.Duplicates)
	// docs/broadcast.md (Guarantees): after a graceful stop nothing comes
	// again. (With a callback cut in two by Stop, 3 to 93 came again here.)
	if r.Duplicates != 0 {
		t.Errorf("%d duplicates in %d graceful restarts, want none", r.Duplicates, restarts)
	}
}

// A message whose handler fails on one instance is retried there, through
// that instance's retry topic and then its dead-letter queue; the other
// instances see every message once.
func TestFailuresAreRetriedOnTheFailingInstanceOnly(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(4))
	base := cl.NewGroup(t)

	type delivery struct {
		id        string
		reconsume int
	}
	var mu sync.Mutex
	seen := map[string][]delivery{}
	record := func(who string, m *consumer.Message) string {
		id := m.Property(rmqtest.IDProperty)
		mu.Lock()
		seen[who] = append(seen[who], delivery{id, m.ReconsumeCount})
		mu.Unlock()
		return id
	}
	healthy := map[string]*rmqtest.Collector{"a": rmqtest.NewCollector(), "c": rmqtest.NewCollector()}
	for who, got := range healthy {
		start(t, instance(t, cl, base, who, topic, func(_ context.Context, m *consumer.Message) error {
			got.Add(record(who, m))
			return nil
		}))
	}
	flaky := rmqtest.NewCollector()
	var poison atomic.Int32
	b := instance(t, cl, base, "b", topic, func(_ context.Context, m *consumer.Message) error {
		id := record("b", m)
		if id == "poison" {
			poison.Add(1)
			return errors.New("always fails")
		}
		if strings.HasSuffix(id, "0") && m.ReconsumeCount == 0 {
			return errors.New("fails once")
		}
		flaky.Add(id)
		return nil
	}, co(consumer.WithMaxRetries(1)))
	start(t, b)

	p := cl.NewProducer(t)
	ids := p.Produce(topic, "m", 100) // m-0, m-10, ... fail once on b
	p.Send(topic, rmqtest.Msg{ID: "poison"})

	flaky.RequireAll(t, ids, 90*time.Second)
	rmqtest.WaitUntil(60*time.Second, func() bool { return b.Stats()[0].DeadLettered > 0 })
	if s := b.Stats()[0]; s.DeadLettered != 1 || poison.Load() != 2 {
		t.Fatalf("poison: %d attempts, stats %+v; want 2 attempts (max retries 1) and 1 dead-lettered", poison.Load(), s)
	}
	for who, got := range healthy {
		r := got.RequireAll(t, append(slices.Clone(ids), "poison"), 30*time.Second)
		if r.Duplicates != 0 {
			t.Errorf("instance %s: %d duplicates", who, r.Duplicates)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	retried := 0
	for _, d := range seen["b"] {
		if d.reconsume > 0 {
			retried++
		}
	}
	if retried != 11 { // ten "fails once" and the poison's retry
		t.Errorf("instance b saw %d redeliveries, want 11", retried)
	}
	for _, who := range []string{"a", "c"} {
		for _, d := range seen[who] {
			if d.reconsume > 0 {
				t.Fatalf("instance %s got a redelivery of %s: retries leaked to it", who, d.id)
			}
		}
	}
}

// A second process resolving the same identity is refused while the first
// runs, and can start once it has gone.
func TestSecondProcessWithTheSameIdentityIsRefused(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(2))
	base := cl.NewGroup(t)
	got := rmqtest.NewCollector()
	first := instance(t, cl, base, "same", topic, collect(got))
	start(t, first)

	// A short wait: long enough for the broker to notice a stopped client,
	// too short for this one, which does not stop.
	second := instance(t, cl, base, "same", topic, collect(got), bo(broadcast.WithIdentityWait(time.Second)))
	err := second.Start(context.Background())
	if !errors.Is(err, broadcast.ErrIdentityInUse) {
		t.Fatalf("second Start = %v, want ErrIdentityInUse", err)
	}
	if !strings.Contains(err.Error(), `"same"`) || !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Errorf("error %q should name the identity and the other client's address", err)
	}
	t.Logf("refused: %v", err)

	stop(t, first)
	// The same Consumer starts once the identity is free (the broker
	// notices the stop within milliseconds, seconds under load).
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := second.Start(context.Background())
		if err == nil {
			break
		}
		if !errors.Is(err, broadcast.ErrIdentityInUse) || time.Now().After(deadline) {
			t.Fatalf("Start after the first instance stopped: %v", err)
		}
	}
	ids := cl.NewProducer(t).Produce(topic, "m", 50)
	got.RequireAll(t, ids, 60*time.Second)
}

// Garbage collection deletes the group of an instance gone for the TTL, and
// never a live instance's, an ordinary group sharing the prefix, or an
// instance of another base group that extends this one's name.
func TestGarbageCollectionDeletesOnlyStaleInstanceGroups(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(2))
	base := cl.NewGroup(t)
	ctx := context.Background()
	adm := adminClient(t, cl)
	nop := func(context.Context, *consumer.Message) error { return nil }
	const ttl = 3 * time.Second

	live := instance(t, cl, base, "live", topic, nop)
	start(t, live)
	gone := instance(t, cl, base, "gone", topic, nop)
	start(t, gone)
	stop(t, gone)
	other := instance(t, cl, base+"-eu", "pod", topic, nop) // group <base>-eu-pod
	start(t, other)
	stop(t, other)
	legacy := base + "-legacy"
	if err := adm.CreateSubscriptionGroup(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	runner := instance(t, cl, base, "runner", topic, nop, bo(broadcast.WithGarbageCollection(ttl), broadcast.WithGarbageCollectionInterval(500*time.Millisecond)))
	start(t, runner)

	// The broker may list a client that has just stopped for a few more
	// milliseconds, seconds when loaded: look until the report settles.
	for {
		rep, err := runner.CollectGarbage(ctx, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(rep.Live, []string{live.Group()}) && len(rep.Offline) == 1 && rep.Offline[0].Group == gone.Group() {
			break
		}
		if time.Since(began) > 20*time.Second {
			t.Fatalf("report %+v: want %s live and %s offline", rep, live.Group(), gone.Group())
		}
		time.Sleep(100 * time.Millisecond)
	}
	exists := func(g string) bool {
		groups, err := adm.SubscriptionGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(groups, g)
	}
	for exists(gone.Group()) {
		if time.Since(began) > 45*time.Second {
			t.Fatalf("%s still there after 30s", gone.Group())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := time.Since(began); d < ttl {
		t.Fatalf("deleted after %v, before the TTL", d)
	}
	// The retry topic goes right after the group.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := adm.TopicRoute(ctx, "%RETRY%"+gone.Group())
		if errors.Is(err, admin.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the retry topic of %s: %v, want it deleted", gone.Group(), err)
			break
		}
	}
	t.Logf("the running instance deleted %s %v after it started watching (ttl %v)", gone.Group(), time.Since(began).Round(100*time.Millisecond), ttl)
	time.Sleep(2 * ttl) // the others have had time to be deleted, wrongly
	for _, g := range []string{runner.Group(), live.Group(), other.Group(), legacy} {
		if !exists(g) {
			t.Errorf("group %s was deleted", g)
		}
	}
}
