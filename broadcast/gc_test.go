package broadcast

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/internal/admin"

	"github.com/rmqkit/rmqkit/consumer"
)

// gcFixture is a collector of base group "orders", run by instance
// "orders-self", over a fake broker and a fake clock.
type gcFixture struct {
	adm   *fakeAdmin
	clock *fakeClock
	col   *collector
}

func newGCFixture(t *testing.T) *gcFixture {
	t.Helper()
	f := &gcFixture{adm: newFakeAdmin(), clock: newFakeClock()}
	cfg := defaultConfig()
	cfg.logger = slog.New(slog.DiscardHandler)
	cfg.now = f.clock.Now
	f.col = newCollector(f.adm, &cfg, "orders", "orders-self")
	return f
}

const ttl = 10 * time.Minute

// pass runs one collection and fails the test on error.
func (f *gcFixture) pass(t *testing.T) GCReport {
	t.Helper()
	rep, err := f.col.collect(context.Background(), ttl)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return rep
}

// passes advances the clock by step before each of n passes and returns
// the last report.
func (f *gcFixture) passes(t *testing.T, n int, step time.Duration) GCReport {
	t.Helper()
	var rep GCReport
	for range n {
		f.clock.Advance(step)
		rep = f.pass(t)
	}
	return rep
}

func TestGCOnlyConsidersMarkedInstanceGroupsOfItsBase(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-gone", true)        // a stale instance: collected
	f.adm.addGroup("orders-self", true)        // the collector's own instance
	f.adm.addGroup("orders", false)            // the base itself, used elsewhere
	f.adm.addGroup("orders-legacy", false)     // an ordinary group sharing the prefix
	f.adm.addGroup("orders-eu-pod_1", true)    // an instance of base "orders-eu"
	f.adm.addGroup("ordersx-pod_1", true)      // another base
	f.adm.addGroup("orders-", true)            // no identity
	f.adm.addGroup("%RETRY%orders-gone", true) // not a group name we made
	f.pass(t)
	f.passes(t, 5, ttl/4)
	if got := f.adm.deleted(); !slices.Equal(got, []string{"orders-gone"}) {
		t.Fatalf("deleted %v, want only orders-gone", got)
	}
	if f.adm.connCalls["orders-self"] != 0 {
		t.Error("the collector looked at its own group")
	}
}

func TestGCDeletesAGroupOfflineForTheTTLWithItsRetryTopic(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-gone", true)
	start := f.clock.Now()
	rep := f.pass(t)
	if len(rep.Offline) != 1 || !rep.Offline[0].Since.Equal(start) {
		t.Fatalf("first pass: %+v, want orders-gone offline since %v", rep, start)
	}
	// Seen offline every 4 minutes: not yet at 8 minutes, deleted at 12.
	rep = f.passes(t, 2, 4*time.Minute)
	if len(rep.Deleted) != 0 {
		t.Fatalf("deleted after %v offline, before the TTL %v", 8*time.Minute, ttl)
	}
	rep = f.passes(t, 1, 4*time.Minute)
	if !slices.Equal(rep.Deleted, []string{"orders-gone"}) {
		t.Fatalf("after 12 minutes offline: %+v, want orders-gone deleted", rep)
	}
	if !slices.Equal(f.adm.deletedTopics, []string{"%RETRY%orders-gone"}) {
		t.Errorf("deleted topics %v, want the retry topic only (the DLQ is kept)", f.adm.deletedTopics)
	}
}

func TestGCNeverDeletesALiveGroup(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-live", true)
	f.adm.setConns("orders-live", "10.0.0.1@rmqkit-live")
	rep := f.passes(t, 20, ttl/2)
	if len(f.adm.deleted()) != 0 {
		t.Fatalf("deleted %v, a group with a connected client", f.adm.deleted())
	}
	if !slices.Equal(rep.Live, []string{"orders-live"}) {
		t.Errorf("report %+v, want orders-live live", rep)
	}
}

func TestGCTreatsAClientTheBrokerListsButThatIsGoneAsOffline(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-ghost", true)
	f.adm.setConns("orders-ghost", "10.0.0.1@ghost")
	f.adm.runningInfo["10.0.0.1@ghost"] = &admin.ResponseError{Code: 1, Remark: "RemotingSendRequestException: send request to </10.0.0.1:1> failed"}
	f.adm.addGroup("orders-silent", true)
	f.adm.setConns("orders-silent", "10.0.0.2@silent")
	f.adm.runningInfo["10.0.0.2@silent"] = &admin.ResponseError{Code: 1, Remark: "invoke consumer Timeout: 5000"}
	rep := f.passes(t, 4, ttl/3)
	if got := f.adm.deleted(); !slices.Equal(got, []string{"orders-ghost"}) {
		t.Fatalf("deleted %v, want the ghost's group only (a client that does not answer may be alive)", got)
	}
	if !slices.Equal(rep.Live, []string{"orders-silent"}) {
		t.Errorf("report %+v, want orders-silent live", rep)
	}
}

func TestGCRestartsTheClockWhenTheInstanceCameBack(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-flaky", true)
	f.passes(t, 3, 4*time.Minute) // offline 8 minutes
	f.adm.setConns("orders-flaky", "10.0.0.1@rmqkit-flaky")
	f.passes(t, 1, 4*time.Minute)
	f.adm.setConns("orders-flaky")
	restart := f.clock.Now().Add(4 * time.Minute)
	rep := f.passes(t, 3, 4*time.Minute) // offline again for 8 minutes
	if len(rep.Deleted) != 0 || len(rep.Offline) != 1 || !rep.Offline[0].Since.Equal(restart) {
		t.Fatalf("report %+v: want still offline, since %v", rep, restart)
	}
	rep = f.passes(t, 1, 4*time.Minute)
	if !slices.Equal(rep.Deleted, []string{"orders-flaky"}) {
		t.Fatalf("report %+v, want deleted 12 minutes into the second absence", rep)
	}
}

func TestGCRestartsTheClockWhenChecksAreTooFarApart(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-gone", true)
	f.pass(t)
	// The instance may have come and gone in a gap longer than TTL/2.
	rep := f.passes(t, 1, ttl)
	if len(rep.Deleted) != 0 {
		t.Fatal("deleted on two checks a whole TTL apart")
	}
	rep = f.passes(t, 2, ttl/2)
	if !slices.Equal(rep.Deleted, []string{"orders-gone"}) {
		t.Fatalf("report %+v, want deleted after a TTL of close checks", rep)
	}
}

func TestGCRestartsTheClockWhenOffsetsMoved(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-gone", true)
	f.passes(t, 3, 4*time.Minute)
	f.adm.mu.Lock()
	f.adm.progress["orders-gone"] = 42 // it consumed between two checks
	f.adm.mu.Unlock()
	rep := f.passes(t, 1, 4*time.Minute)
	if len(rep.Deleted) != 0 {
		t.Fatal("deleted a group whose offsets moved since the last check")
	}
	rep = f.passes(t, 3, 4*time.Minute)
	if !slices.Equal(rep.Deleted, []string{"orders-gone"}) {
		t.Fatalf("report %+v, want deleted once offline a TTL with still offsets", rep)
	}
}

func TestGCLooksAgainRightBeforeDeleting(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-back", true)
	f.passes(t, 3, 4*time.Minute)
	// The next pass sees it offline, then connected on the last look.
	f.adm.connSeq["orders-back"] = [][]admin.Connection{nil, {{ClientID: "10.0.0.1@back"}}}
	rep := f.passes(t, 1, 4*time.Minute)
	if len(f.adm.deleted()) != 0 {
		t.Fatalf("deleted a group whose client connected before the deletion: %+v", rep)
	}
}

func TestGCLeavesGroupsItCannotCheck(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-a", true)
	f.adm.addGroup("orders-b", true)
	boom := errors.New("broker unreachable")
	f.adm.connErr["orders-a"] = boom
	var err error
	for range 5 {
		f.clock.Advance(4 * time.Minute)
		_, err = f.col.collect(context.Background(), ttl)
	}
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the connection error", err)
	}
	if got := f.adm.deleted(); !slices.Equal(got, []string{"orders-b"}) {
		t.Fatalf("deleted %v, want orders-b only", got)
	}
}

func TestGCForgetsGroupsDeletedElsewhere(t *testing.T) {
	f := newGCFixture(t)
	f.adm.addGroup("orders-gone", true)
	f.passes(t, 2, time.Minute)
	f.adm.mu.Lock()
	delete(f.adm.groups, "orders-gone")
	f.adm.mu.Unlock()
	f.pass(t)
	if len(f.col.runs) != 0 {
		t.Fatalf("runs = %v after the group disappeared", f.col.runs)
	}
}

func TestGCRejectsATinyTTL(t *testing.T) {
	f := newGCFixture(t)
	if _, err := f.col.collect(context.Background(), time.Millisecond); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("err = %v, want ErrInvalidOption", err)
	}
}

func TestOfflineRun(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var r offlineRun
	r.observe(t0, 5, time.Minute)
	if r.expired(t0.Add(time.Hour), time.Minute) {
		t.Fatal("one check never expires")
	}
	r.observe(t0.Add(50*time.Second), 5, time.Minute)
	r.observe(t0.Add(100*time.Second), 5, time.Minute)
	if !r.expired(t0.Add(100*time.Second), 90*time.Second) || r.checks != 3 {
		t.Fatalf("run %+v: want expired after 100s of 3 close checks", r)
	}
	r.observe(t0.Add(300*time.Second), 5, time.Minute) // gap of 200s
	if r.checks != 1 || !r.since.Equal(t0.Add(300*time.Second)) {
		t.Fatalf("run %+v: want restarted after a long gap", r)
	}
}

func TestGarbageCollectorStandalone(t *testing.T) {
	adm := newFakeAdmin()
	clock := newFakeClock()
	adm.addGroup("orders-gone", true)
	adm.addGroup("orders-live", true)
	adm.setConns("orders-live", "10.0.0.1@live")
	g, err := NewGarbageCollector("orders", time.Minute, consumer.Connection{NameServers: []string{"127.0.0.1:1"}},
		WithLogger(slog.New(slog.DiscardHandler)), withFakeAdmin(adm),
		func(c *config) { c.now = clock.Now })
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for range 3 {
		if _, err := g.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(30 * time.Second)
	}
	if got := adm.deleted(); !slices.Equal(got, []string{"orders-gone"}) {
		t.Fatalf("deleted %v, want orders-gone", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Run(ctx, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the context's error", err)
	}
	for name, conn := range map[string]consumer.Connection{
		"no name server": {},
		"tiny ttl":       {NameServers: []string{"x:1"}},
	} {
		ttl := time.Minute
		if name == "tiny ttl" {
			ttl = time.Millisecond
		}
		if _, err := NewGarbageCollector("orders", ttl, conn); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
}
