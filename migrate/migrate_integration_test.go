//go:build integration

package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/migrate"
)

// testLog routes a logger to t.Log until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func newLogger(t *testing.T, level slog.Level) *slog.Logger {
	w := &testLog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// twoClusters creates one topic, same name, on both clusters.
type twoClusters struct {
	old, new migrate.Cluster
	adm      [2]*admin.Client
	topic    string
	group    string
}

func setup(t *testing.T) *twoClusters {
	t.Helper()
	a, b := rmqtest.ClusterA(t), rmqtest.ClusterB(t)
	tc := &twoClusters{
		old:   migrate.Cluster{NameServers: []string{a.NameServer}},
		new:   migrate.Cluster{NameServers: []string{b.NameServer}},
		topic: rmqtest.Name(t, "T"),
		group: rmqtest.Name(t, "G"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, c := range []*rmqtest.Cluster{a, b} {
		adm, err := admin.New([]string{c.NameServer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = adm.Close() })
		if err := adm.CreateTopic(ctx, tc.topic, 4, false); err != nil {
			t.Fatalf("cluster %s: %v", c.Name, err)
		}
		tc.adm[i] = adm
	}
	return tc
}

func (tc *twoClusters) producer(t *testing.T, opts ...migrate.ProducerOption) *migrate.Producer {
	t.Helper()
	p, err := migrate.NewProducer(tc.old, tc.new, append([]migrate.ProducerOption{
		migrate.WithProducerOptions(
			rmqproducer.WithGroupName(rmqtest.Name(t, "P")),
			rmqproducer.WithRetry(2),
			rmqproducer.WithSendMsgTimeout(10*time.Second),
		),
		migrate.WithProducerLogger(newLogger(t, slog.LevelWarn)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// lagOn returns the group's lag on the topic and on its retry topic on one
// cluster, and the number of topic queues the broker reported.
func (tc *twoClusters) lagOn(t *testing.T, side migrate.Side) (topicLag, retryLag int64, queues int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts, err := tc.adm[side].ConsumeStats(ctx, tc.group, tc.topic)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tc.adm[side].ConsumeStats(ctx, tc.group, "%RETRY%"+tc.group)
	if err != nil {
		t.Fatal(err)
	}
	return ts.TotalLag, rs.TotalLag, len(ts.Queues)
}

// sendOne sends m, retrying transient failures of a busy test machine.
func sendOne(ctx context.Context, p *migrate.Producer, m *primitive.Message) (migrate.Result, error) {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var r migrate.Result
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		r, err = p.Send(sctx, m)
		cancel()
		if err == nil && r.Status == primitive.SendOK {
			return r, nil
		}
		if err == nil {
			err = fmt.Errorf("send status %v", r.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return migrate.Result{}, err
}

// newMsg returns a message carrying the test id.
func newMsg(topic, id string) *primitive.Message {
	m := primitive.NewMessage(topic, []byte(id))
	m.WithProperty(rmqtest.IDProperty, id)
	return m
}

func writeControl(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as an editor saves
		t.Fatal(err)
	}
}

// stopAtCleanup stops sub when the test ends.
func stopAtCleanup(t *testing.T, sub *migrate.Subscription) {
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sub.Stop(sctx)
	})
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(began)
}

// The whole procedure under load: 20,000 messages while the weight moves
// 0 -> 50 -> 100 and the subscription old-only -> dual -> new-only (the
// last steps through the control file), with a handler failure on the old
// cluster just before the drain. Nothing is lost; the drain neither ends
// early nor hangs.
func TestMigrationUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	tc := setup(t)
	ctx := context.Background()
	const total, poisonCount = 20000, 5
	const sendPace = 600 // messages per second, all senders together

	var (
		got      = rmqtest.NewCollector()
		mu       sync.Mutex
		consumed = [2]map[string]bool{{}, {}} // ids handled successfully, by cluster
		poison   = make(map[string]bool)
		failedAt = make(map[string]time.Time)
		retryAt  = make(map[string]time.Time)
		sentTo   = make(map[string]migrate.Side)
		oldAtEnd map[string]bool // ids consumed on the old cluster when its consumer stopped
		switches = make(map[migrate.Phase]time.Duration)
		stopped  time.Time
	)
	handler := func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		side := migrate.New
		if m.Broker == "broker-a" || m.Broker == "broker-a2" { // cluster a: one or two masters
			side = migrate.Old
		}
		mu.Lock()
		defer mu.Unlock()
		if poison[id] && m.ReconsumeCount == 0 {
			failedAt[id] = time.Now()
			return errors.New("injected failure before the drain")
		}
		if poison[id] {
			retryAt[id] = time.Now()
		}
		consumed[side][id] = true
		got.Add(id)
		return nil
	}
	sub, err := migrate.NewSubscription(tc.old, tc.new, tc.group, tc.topic, consumer.All, handler,
		migrate.WithSettle(3*time.Second),
		migrate.WithLagInterval(500*time.Millisecond),
		migrate.WithRetryGrace(5*time.Second),
		migrate.WithPoolSize(16),
		migrate.WithStartPositions(consumer.StartFromEarliest, consumer.StartFromEarliest),
		migrate.WithLogger(newLogger(t, slog.LevelInfo)),
		migrate.WithConsumerOptions(consumer.WithLogger(newLogger(t, slog.LevelWarn))),
		migrate.WithOnPhaseChange(func(from, to migrate.Phase, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			switches[to] = took
			if to == migrate.NewOnly { // the old consumer has stopped
				stopped = time.Now()
				oldAtEnd = make(map[string]bool, len(consumed[migrate.Old]))
				for id := range consumed[migrate.Old] {
					oldAtEnd[id] = true
				}
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, sub)
	prod := tc.producer(t)

	control := filepath.Join(t.TempDir(), "migrate.yaml")
	writeControl(t, control, "phase: old-only\nweight: 0\n")
	w, err := migrate.Watch(ctx, control, sub, prod, migrate.WithWatchLogger(newLogger(t, slog.LevelInfo)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Senders: 4 goroutines, paced; every other message has one of 64
	// sharding keys.
	ids := make([]string, total)
	for i := range ids {
		ids[i] = "m-" + strconv.Itoa(i)
	}
	var next, sent atomic.Int64
	sendErr := make(chan error, 4)
	var senders sync.WaitGroup
	began := time.Now()
	for range 4 {
		senders.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				if ahead := time.Until(began.Add(time.Duration(i) * time.Second / sendPace)); ahead > 0 {
					time.Sleep(ahead)
				}
				m := newMsg(tc.topic, ids[i])
				if i%2 == 0 {
					m.WithShardingKey("key-" + strconv.Itoa(i%64))
				}
				r, err := sendOne(ctx, prod, m)
				if err != nil {
					sendErr <- fmt.Errorf("send %s: %w", ids[i], err)
					return
				}
				mu.Lock()
				sentTo[ids[i]] = r.Side
				mu.Unlock()
				sent.Add(1)
			}
		})
	}
	atSent := func(n int64) {
		waitFor(t, fmt.Sprintf("%d messages sent", n), 2*time.Minute, func() bool {
			select {
			case err := <-sendErr:
				t.Fatal(err)
			default:
			}
			return sent.Load() >= n
		})
	}

	// 1. old-only -> dual through the API, before any traffic moves.
	atSent(2000)
	t0 := time.Now()
	if err := sub.SetPhase(ctx, migrate.Dual); err != nil {
		t.Fatal(err)
	}
	t.Logf("switch old-only -> dual took %v (start of the new cluster's consumer)", time.Since(t0))

	// 2. weight 50 through the control file.
	atSent(5000)
	t0 = time.Now()
	writeControl(t, control, "phase: dual\nweight: 50\n")
	d := waitFor(t, "weight 50 from the file", 10*time.Second, func() bool { return prod.Weight() == 50 })
	t.Logf("weight 0 -> 50 through the file took %v", d)

	// 3. Right before the drain: messages on the old cluster whose first
	// delivery fails, so their retries wait in the broker's schedule.
	atSent(12000)
	var poisonIDs []string
	for i := 0; len(poisonIDs) < poisonCount; i++ {
		key := "poison-key-" + strconv.Itoa(i)
		if migrate.KeySide(key, 50) != migrate.Old {
			continue
		}
		id := "poison-" + strconv.Itoa(len(poisonIDs))
		mu.Lock()
		poison[id] = true
		mu.Unlock()
		m := newMsg(tc.topic, id).WithShardingKey(key)
		r, err := sendOne(ctx, prod, m)
		if err != nil || r.Side != migrate.Old {
			t.Fatalf("poison %s: side %v, %v", id, r.Side, err)
		}
		mu.Lock()
		sentTo[id] = r.Side
		mu.Unlock()
		poisonIDs = append(poisonIDs, id)
	}
	waitFor(t, "the injected failures", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(failedAt) == poisonCount
	})

	// 4. weight 100 and new-only in one edit: the subscription must wait
	// for the old cluster to drain, the pending retries included.
	t0 = time.Now()
	writeControl(t, control, "phase: new-only\nweight: 100\n")
	waitFor(t, "weight 100 from the file", 10*time.Second, func() bool { return prod.Weight() == 100 })
	drainTook := waitFor(t, "the drain of the old cluster", 90*time.Second, func() bool { return sub.Phase() == migrate.NewOnly })
	t.Logf("switch dual -> new-only through the file took %v after the producers stopped sending to old (hook: dual %v, new-only %v)",
		drainTook, switches[migrate.Dual], switches[migrate.NewOnly])
	// The bound: the retry delay (10 s), the client learning the retry
	// topic's route and assigning its queue (route refresh 30 s, rebalance
	// 20 s: a retry soon after a consumer started can wait for both), the
	// offset commit (5 s), the settle period (3 s) and slack.
	if drainTook > 75*time.Second {
		t.Errorf("the drain took %v once nothing was sent to the old cluster, want <= 75s", drainTook)
	}

	// Not early: the old cluster has nothing left for the group...
	topicLag, retryLag, queues := tc.lagOn(t, migrate.Old)
	t.Logf("old cluster after the switch: topic lag %d, retry lag %d (%d queues)", topicLag, retryLag, queues)
	if topicLag != 0 || retryLag != 0 || queues == 0 {
		t.Errorf("old cluster after the drain: topic lag %d, retry lag %d, %d queues; want 0, 0, >0", topicLag, retryLag, queues)
	}
	// ... and every message stored there was consumed before its consumer
	// stopped, the retried ones included.
	mu.Lock()
	missing := 0
	for id, side := range sentTo {
		if side == migrate.Old && !oldAtEnd[id] {
			if missing < 5 {
				t.Errorf("%s was sent to the old cluster but not consumed there before its consumer stopped", id)
			}
			missing++
		}
	}
	for _, id := range poisonIDs {
		if retryAt[id].IsZero() || !retryAt[id].Before(stopped) {
			t.Errorf("retry of %s (failed at %v) consumed at %v, not before the old consumer stopped at %v", id, failedAt[id], retryAt[id], stopped)
		} else {
			t.Logf("%s failed at +%v, redelivered %v later; old consumer stopped %v after that",
				id, failedAt[id].Sub(began).Round(time.Millisecond), retryAt[id].Sub(failedAt[id]).Round(time.Millisecond), stopped.Sub(retryAt[id]).Round(time.Millisecond))
		}
	}
	mu.Unlock()
	if missing > 0 {
		t.Errorf("%d messages of the old cluster not consumed before its consumer stopped", missing)
	}
	if ok, err := sub.Drained(ctx); !ok || err != nil {
		t.Errorf("Drained after the switch = %v, %v", ok, err)
	}

	senders.Wait()
	close(sendErr)
	for err := range sendErr {
		t.Fatal(err)
	}
	all := append(append([]string(nil), ids...), poisonIDs...)
	r := got.RequireAll(t, all, 60*time.Second)
	st, ps := sub.Stats(), prod.Stats()
	t.Logf("lost %d, duplicates %d of %d; consumed old %d new %d, failed old %d; sent old %d new %d, fallbacks %v; total %v",
		len(r.Lost), r.Duplicates, len(all), st.Old.Consumed, st.New.Consumed, st.Old.Failed, ps.Sent[migrate.Old], ps.Sent[migrate.New], ps.Fallbacks, time.Since(began).Round(time.Second))
	if st.Old.PendingRetries != 0 || st.Old.Failed != poisonCount || st.Phase != migrate.NewOnly {
		t.Errorf("stats: %+v", st)
	}
	if ps.Sent[migrate.Old]+ps.Sent[migrate.New] != uint64(len(all)) {
		t.Errorf("producer stats %+v for %d messages", ps, len(all))
	}
	if ws := w.Stats(); ws.Applied != 3 || ws.Rejected != 0 || ws.PhaseErrors != 0 {
		t.Errorf("watcher stats %+v, want 3 documents applied", ws)
	}
}

// Messages that reach the old cluster after its consumer stopped (a
// producer that still sent there) are shown as lag and consumed by a fresh
// consumer when the subscription returns to dual.
func TestReturningToDualConsumesWhatWaitedOnTheOldCluster(t *testing.T) {
	t.Parallel()
	tc := setup(t)
	ctx := context.Background()
	got := rmqtest.NewCollector()
	sub, err := migrate.NewSubscription(tc.old, tc.new, tc.group, tc.topic, consumer.All,
		func(_ context.Context, m *consumer.Message) error {
			got.Add(m.Property(rmqtest.IDProperty))
			return nil
		},
		migrate.WithPhase(migrate.Dual),
		migrate.WithSettle(time.Second),
		migrate.WithLagInterval(300*time.Millisecond),
		migrate.WithStartPositions(consumer.StartFromEarliest, consumer.StartFromEarliest),
		migrate.WithLogger(newLogger(t, slog.LevelInfo)),
		migrate.WithConsumerOptions(consumer.WithLogger(newLogger(t, slog.LevelWarn))),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	prod := tc.producer(t, migrate.WithWeight(100))
	var first []string
	for i := range 100 {
		id := "before-" + strconv.Itoa(i)
		if _, err := sendOne(ctx, prod, newMsg(tc.topic, id)); err != nil {
			t.Fatal(err)
		}
		first = append(first, id)
	}
	t0 := time.Now()
	if err := sub.SetPhase(ctx, migrate.NewOnly); err != nil {
		t.Fatal(err)
	}
	t.Logf("dual -> new-only (old cluster empty) took %v", time.Since(t0))

	// A producer still at weight 0 writes to the old cluster nobody reads.
	if err := prod.SetWeight(0); err != nil {
		t.Fatal(err)
	}
	var stranded []string
	for i := range 200 {
		id := "stranded-" + strconv.Itoa(i)
		if _, err := sendOne(ctx, prod, newMsg(tc.topic, id)); err != nil {
			t.Fatal(err)
		}
		stranded = append(stranded, id)
	}
	waitFor(t, "the stranded messages to show as old lag", 30*time.Second, func() bool { return sub.Stats().Old.Lag == 200 })
	if ok, _ := sub.Drained(ctx); ok {
		t.Error("Drained = true with 200 messages waiting on the old cluster")
	}

	t0 = time.Now()
	if err := sub.SetPhase(ctx, migrate.Dual); err != nil {
		t.Fatal(err)
	}
	t.Logf("new-only -> dual took %v (a fresh consumer on the old cluster)", time.Since(t0))
	r := got.RequireAll(t, append(first, stranded...), 60*time.Second)
	t.Logf("lost %d, duplicates %d", len(r.Lost), r.Duplicates)

	// Back to old-only: the new cluster must drain first (it has nothing).
	t0 = time.Now()
	if err := sub.SetPhase(ctx, migrate.OldOnly); err != nil {
		t.Fatal(err)
	}
	t.Logf("dual -> old-only took %v", time.Since(t0))
	if st := sub.Stats(); st.Phase != migrate.OldOnly || !st.Old.Reading || st.New.Reading || st.Old.Consumed != 200 || st.New.Consumed != 100 {
		t.Errorf("stats %+v", st)
	}
	// The old consumer commits its offsets within the client's persist
	// period (first after 10 s).
	waitFor(t, "old lag 0", 30*time.Second, func() bool { st := sub.Stats().Old; return st.Lag == 0 && st.LagErr == nil })
}
