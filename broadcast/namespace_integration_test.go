//go:build integration

package broadcast_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// With WithNamespace, everything the package does through its admin client
// uses the namespaced names: every instance receives every message of
// <ns>%<topic> under the plain topic name; the instance groups the broker
// has are <ns>%<base>-<identity>, marked, with their retry topics and start
// offsets; a second process with the same identity is refused; and
// garbage collection deletes the stale namespaced instance group but
// neither live ones nor a stale instance group of the same base outside
// the namespace.
func TestNamespacedInstances(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	ctx := context.Background()
	adm := adminClient(t, cl)
	ns, topic, base := rmqtest.Name(t, "ns"), rmqtest.Name(t, "T"), cl.NewGroup(t)
	nsTopic := ns + "%" + topic
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := adm.CreateTopic(cctx, nsTopic, 4, false); err != nil {
		t.Fatal(err)
	}
	withNS := co(consumer.WithNamespace(ns))

	var mu sync.Mutex
	badTopic := map[string]int{}
	collectPlain := func(got *rmqtest.Collector) consumer.Handler {
		return func(_ context.Context, m *consumer.Message) error {
			if m.Topic != topic {
				mu.Lock()
				badTopic[m.Topic]++
				mu.Unlock()
			}
			got.Add(m.Property(rmqtest.IDProperty))
			return nil
		}
	}
	// Three instances; "gone" stops at once, "runner" collects garbage.
	var got [3]*rmqtest.Collector
	var insts [3]inst
	for i, id := range []string{"live", "runner", "gone"} {
		got[i] = rmqtest.NewCollector()
		opts := []option{withNS}
		if id == "runner" {
			opts = append(opts, bo(broadcast.WithGarbageCollection(3*time.Second), broadcast.WithGarbageCollectionInterval(500*time.Millisecond)))
		}
		insts[i] = instance(t, cl, base, id, topic, collectPlain(got[i]), opts...)
	}
	live, runner, gone := insts[0], insts[1], insts[2]
	start(t, gone)
	stop(t, gone)
	// A stale instance group of the same base outside the namespace, marked
	// as Start marks its groups: not this collector's.
	plainStale := base + "-gone"
	if err := adm.CreateSubscriptionGroup(ctx, plainStale, admin.WithBroadcast(false)); err != nil {
		t.Fatal(err)
	}
	start(t, live)

	// The identity check looks at the namespaced group: a second process
	// with the identity "live" is refused.
	dup := instance(t, cl, base, "live", topic, collectPlain(rmqtest.NewCollector()), withNS, bo(broadcast.WithIdentityWait(time.Second)))
	if err := dup.Start(ctx); !errors.Is(err, broadcast.ErrIdentityInUse) {
		t.Fatalf("second instance with identity live: Start = %v, want ErrIdentityInUse", err)
	}
	began := time.Now()
	start(t, runner)

	// The broker has the namespaced groups, marked, with their retry
	// topics and start offsets on every queue of the namespaced topic.
	configs, err := adm.SubscriptionGroupConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	route, err := adm.TopicRoute(ctx, nsTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []inst{live, runner} {
		g := ns + "%" + c.Group()
		i := slices.IndexFunc(configs, func(gc admin.GroupConfig) bool { return gc.Name == g })
		if i < 0 || configs[i].ConsumeBroadcastEnable {
			t.Errorf("group %s: not on the broker or not marked as an instance group (index %d)", g, i)
		}
		if slices.ContainsFunc(configs, func(gc admin.GroupConfig) bool { return gc.Name == c.Group() }) {
			t.Errorf("group %s exists without the namespace", c.Group())
		}
		if _, err := adm.TopicRoute(ctx, "%RETRY%"+g); err != nil {
			t.Errorf("retry topic of %s: %v", g, err)
		}
		st, err := adm.ConsumeStats(ctx, g, nsTopic)
		if err != nil || len(st.Queues) != len(route.MessageQueues()) {
			t.Errorf("offsets of %s on %s: %d queues, %v; want %d", g, nsTopic, len(st.Queues), err, len(route.MessageQueues()))
		}
	}

	// Every instance receives every message, once.
	ids := cl.NewProducer(t).Produce(nsTopic, "m", 1000)
	for i, c := range []inst{live, runner} {
		r := got[i].RequireAll(t, ids, 90*time.Second)
		if r.Duplicates != 0 {
			t.Errorf("instance %s: %d duplicates in a fault-free run", c.Identity(), r.Duplicates)
		}
	}
	if n := got[2].Total(); n != 0 {
		t.Errorf("the stopped instance received %d messages", n)
	}

	// Garbage collection deletes the stale namespaced group, and its retry
	// topic, and nothing else.
	exists := func(g string) bool {
		groups, err := adm.SubscriptionGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(groups, g)
	}
	staleNS := ns + "%" + gone.Group()
	if !rmqtest.WaitUntil(45*time.Second-time.Since(began), func() bool { return !exists(staleNS) }) {
		t.Fatalf("%s still there after 45s", staleNS)
	}
	t.Logf("the runner deleted %s after %v", staleNS, time.Since(began).Round(100*time.Millisecond))
	var routeErr error
	if !rmqtest.WaitUntil(10*time.Second, func() bool {
		_, routeErr = adm.TopicRoute(ctx, "%RETRY%"+staleNS)
		return errors.Is(routeErr, admin.ErrNotFound)
	}) {
		t.Errorf("the retry topic of %s: %v, want it deleted", staleNS, routeErr)
	}
	rep, err := runner.CollectGarbage(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ns + "%" + live.Group()}; !slices.Equal(rep.Live, want) || len(rep.Offline) != 0 {
		t.Errorf("report %+v: want live %v, nothing offline", rep, want)
	}
	for _, g := range []string{ns + "%" + live.Group(), ns + "%" + runner.Group(), plainStale} {
		if !exists(g) {
			t.Errorf("group %s was deleted", g)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(badTopic) != 0 {
		t.Errorf("handlers saw topics other than %q: %v", topic, fmt.Sprint(badTopic))
	}
}
