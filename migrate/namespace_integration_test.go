//go:build integration

package migrate_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/migrate"
)

// setupNamespaced is setup with a namespace of its own on each cluster: the
// topic exists on the brokers as <ns>%<topic>. The plain topic is created
// too, as a decoy that must stay unread.
func setupNamespaced(t *testing.T) (tc *twoClusters, ns [2]string) {
	t.Helper()
	tc = setup(t)
	ns = [2]string{rmqtest.Name(t, "nsa"), rmqtest.Name(t, "nsb")}
	tc.old.Namespace, tc.new.Namespace = ns[migrate.Old], ns[migrate.New]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, adm := range tc.adm {
		if err := adm.CreateTopic(ctx, ns[i]+"%"+tc.topic, 4, false); err != nil {
			t.Fatalf("%s cluster: %v", migrate.Side(i), err)
		}
	}
	return tc, ns
}

// With a namespace on both clusters, messages sent through the Producer in
// dual at weight 50 all reach the handler, under the plain topic name,
// once each; the brokers know the group, topic and retry topic by their
// namespaced names; the drain is read under those names, so leaving dual
// completes; and the plain topic of the same name is not read.
func TestNamespacedMigrationLosesNothing(t *testing.T) {
	t.Parallel()
	tc, ns := setupNamespaced(t)
	ctx := context.Background()
	const total = 1000

	got := rmqtest.NewCollector()
	var (
		mu        sync.Mutex
		badTopic  = map[string]int{} // topic the handler saw, when not the plain one
		failed    = map[string]bool{}
		perBroker = map[string]int{}
	)
	handler := func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		mu.Lock()
		defer mu.Unlock()
		if m.Topic != tc.topic {
			badTopic[m.Topic]++
		}
		// One message per cluster fails once, so that a retry goes through
		// the namespaced retry topic.
		if (id == "m-0" || id == "m-1") && !failed[id] {
			failed[id] = true
			return errors.New("injected failure")
		}
		perBroker[m.Broker]++
		got.Add(id)
		return nil
	}
	sub, err := migrate.NewSubscription(tc.old, tc.new, tc.group, tc.topic, consumer.All, handler,
		migrate.WithPhase(migrate.Dual),
		migrate.WithSettle(time.Second),
		migrate.WithLagInterval(300*time.Millisecond),
		migrate.WithRetryGrace(3*time.Second),
		migrate.WithStartPositions(consumer.StartFromEarliest, consumer.StartFromEarliest),
		migrate.WithLogger(newLogger(t, slog.LevelInfo)),
		migrate.WithConsumerOptions(consumer.WithLogger(newLogger(t, slog.LevelWarn))),
	)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, sub)
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The decoy: the plain topic on both clusters, written without a
	// namespace.
	decoy := []string{"decoy-a", "decoy-b"}
	rmqtest.ClusterA(t).NewProducer(t).Send(tc.topic, rmqtest.Msg{ID: decoy[0]})
	rmqtest.ClusterB(t).NewProducer(t).Send(tc.topic, rmqtest.Msg{ID: decoy[1]})

	prod := tc.producer(t, migrate.WithWeight(50))
	ids := make([]string, total)
	for i := range ids {
		ids[i] = "m-" + strconv.Itoa(i)
		m := newMsg(tc.topic, ids[i])
		if i%2 == 0 {
			m.WithShardingKey("key-" + strconv.Itoa(i%32))
		}
		if i < 2 { // m-0 to old, m-1 to new: the keyless counter decides m-1
			m = newMsg(tc.topic, ids[i])
		}
		r, err := sendOne(ctx, prod, m)
		if err != nil {
			t.Fatalf("send %s: %v", ids[i], err)
		}
		if m.Topic != tc.topic {
			t.Fatalf("after the send, the message's topic is %q, want %q", m.Topic, tc.topic)
		}
		if r.MessageQueue == nil || r.MessageQueue.Topic != ns[r.Side]+"%"+tc.topic {
			t.Fatalf("send %s to the %s cluster stored it in %+v, want topic %s%%%s", ids[i], r.Side, r.MessageQueue, ns[r.Side], tc.topic)
		}
	}
	r := got.RequireAll(t, ids, 90*time.Second)
	if r.Duplicates != 0 {
		t.Errorf("%d duplicates in a fault-free run", r.Duplicates)
	}
	ps := prod.Stats()
	t.Logf("%d messages: sent old %d new %d; consumed by broker %v; lost %d, duplicates %d",
		total, ps.Sent[migrate.Old], ps.Sent[migrate.New], perBroker, len(r.Lost), r.Duplicates)
	if ps.Sent[migrate.Old] < total/4 || ps.Sent[migrate.New] < total/4 {
		t.Errorf("weight 50 sent old %d, new %d", ps.Sent[migrate.Old], ps.Sent[migrate.New])
	}

	// The brokers know the group and its retry topic by namespaced names,
	// the ones the drain readings use.
	for side, adm := range tc.adm {
		nsGroup := ns[side] + "%" + tc.group
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ts, err := adm.ConsumeStats(sctx, nsGroup, ns[side]+"%"+tc.topic)
		var rs admin.ConsumeStats
		if err == nil {
			rs, err = adm.ConsumeStats(sctx, nsGroup, "%RETRY%"+nsGroup)
		}
		cancel()
		if err != nil {
			t.Fatalf("%s cluster: %v", migrate.Side(side), err)
		}
		var retried int64
		for _, q := range rs.Queues {
			retried += q.BrokerOffset
		}
		t.Logf("%s cluster: group %s has %d queues of %s%%%s, retry topic %%RETRY%%%s holds %d messages",
			migrate.Side(side), nsGroup, len(ts.Queues), ns[side], tc.topic, nsGroup, retried)
		if len(ts.Queues) == 0 || retried < 1 {
			t.Errorf("%s cluster: %d queues for the namespaced topic, %d messages in the namespaced retry topic; want > 0 and >= 1",
				migrate.Side(side), len(ts.Queues), retried)
		}
	}

	// Leaving dual waits for the drain of the old cluster, read under the
	// namespaced names: with the plain ones the topic is not found and the
	// switch never completes.
	if err := prod.SetWeight(100); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := sub.SetPhase(sctx, migrate.NewOnly); err != nil {
		t.Fatalf("dual -> new-only: %v (old side: %+v)", err, sub.Stats().Old)
	}
	t.Logf("dual -> new-only took %v", time.Since(t0))
	if st := sub.Stats(); st.Old.LagErr != nil || st.Old.Failed != 1 || st.New.Failed != 1 || st.Old.PendingRetries != 0 {
		t.Errorf("stats after the switch: %+v", st)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(badTopic) != 0 {
		t.Errorf("the handler saw topics other than %q: %v", tc.topic, badTopic)
	}
	for _, id := range decoy {
		if n := got.Count(id); n != 0 {
			t.Errorf("%s, sent to the plain topic without a namespace, was consumed %d times", id, n)
		}
	}
}
