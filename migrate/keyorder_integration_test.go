//go:build integration

package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/migrate"
)

// The Producer's default queue selector keeps every message of a sharding
// key on one queue of its cluster, so an orderly subscription receives
// each key's messages in the order they were sent (docs/migrate.md's per-key
// order); messages without a key still spread over all queues.
//
// 200 keys x 10 messages in dual at weight 50, sent in per-key order by 8
// goroutines, each key's messages interleaved with other keys'.
func TestProducerKeepsEachKeyOnOneQueueInOrder(t *testing.T) {
	t.Parallel()
	tc := setup(t) // 4 queues per broker on each cluster
	ctx := context.Background()
	const keys, perKey, keyless, senders = 200, 10, 200, 8

	type pos struct {
		side  migrate.Side
		queue string // broker/queue id
	}
	var (
		mu         sync.Mutex
		sentTo     = map[string]map[pos]bool{} // key -> queues its sends were stored in
		keylessQ   = [2]map[string]int{{}, {}}
		lastSeq    = map[string]int{} // key -> last seq handled
		violations []string
	)
	got := rmqtest.NewCollector()
	handler := func(_ context.Context, m *consumer.Message) error {
		id := m.Property(rmqtest.IDProperty)
		if key := m.Property("order_key"); key != "" {
			seq, _ := strconv.Atoi(m.Property("seq"))
			mu.Lock()
			last, seen := lastSeq[key]
			if seen && seq != last+1 || !seen && seq != 0 {
				if len(violations) < 10 {
					after := "first"
					if seen {
						after = "after " + strconv.Itoa(last)
					}
					violations = append(violations, fmt.Sprintf("%s: seq %d %s (queue %s/%d)", key, seq, after, m.Broker, m.QueueID))
				} else {
					violations = append(violations, "")
				}
			}
			if !seen || seq > last {
				lastSeq[key] = seq
			}
			mu.Unlock()
		}
		got.Add(id)
		return nil
	}
	sub, err := migrate.NewSubscription(tc.old, tc.new, tc.group, tc.topic, consumer.All, handler,
		migrate.WithPhase(migrate.Dual),
		migrate.WithStartPositions(consumer.StartFromEarliest, consumer.StartFromEarliest),
		migrate.WithSubscribeOptions(consumer.WithOrderly(), consumer.WithOrderlySuspend(time.Second)),
		migrate.WithLogger(newLogger(t, slog.LevelWarn)),
		migrate.WithConsumerOptions(consumer.WithLogger(newLogger(t, slog.LevelWarn))),
	)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, sub)
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	prod := tc.producer(t, migrate.WithWeight(50))

	var ids []string
	for k := range keys {
		for s := range perKey {
			ids = append(ids, fmt.Sprintf("k%d-%d", k, s))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, senders+1)
	for w := range senders {
		wg.Go(func() {
			// Sender w owns keys w, w+senders, ...: seq by seq, so each key's
			// messages are sent in order, between other keys' messages.
			for s := range perKey {
				for k := w; k < keys; k += senders {
					key := "key-" + strconv.Itoa(k)
					m := newMsg(tc.topic, fmt.Sprintf("k%d-%d", k, s)).WithShardingKey(key)
					m.WithProperty("order_key", key)
					m.WithProperty("seq", strconv.Itoa(s))
					r, err := sendOne(ctx, prod, m)
					if err != nil {
						errs <- fmt.Errorf("send %s seq %d: %w", key, s, err)
						return
					}
					mu.Lock()
					if sentTo[key] == nil {
						sentTo[key] = map[pos]bool{}
					}
					sentTo[key][pos{r.Side, fmt.Sprintf("%s/%d", r.MessageQueue.BrokerName, r.MessageQueue.QueueId)}] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Go(func() {
		for i := range keyless {
			id := "nokey-" + strconv.Itoa(i)
			r, err := sendOne(ctx, prod, newMsg(tc.topic, id))
			if err != nil {
				errs <- fmt.Errorf("send %s: %w", id, err)
				return
			}
			mu.Lock()
			keylessQ[r.Side][fmt.Sprintf("%s/%d", r.MessageQueue.BrokerName, r.MessageQueue.QueueId)]++
			mu.Unlock()
			ids = append(ids, id)
		}
	})
	began := time.Now()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("sent %d messages in %v", len(ids), time.Since(began).Round(time.Millisecond))

	mu.Lock()
	spread, perSide := 0, [2]map[string]int{{}, {}}
	for key, qs := range sentTo {
		if len(qs) != 1 {
			if spread < 5 {
				t.Errorf("key %s was stored in %d queues: %v", key, len(qs), qs)
			}
			spread++
		}
		for p := range qs {
			perSide[p.side][p.queue]++
		}
	}
	t.Logf("keys per queue: old %v, new %v; keyless messages per queue: old %v, new %v",
		perSide[migrate.Old], perSide[migrate.New], keylessQ[migrate.Old], keylessQ[migrate.New])
	for side := range 2 {
		// 4 queues per broker: about 100/n keys, 100/n keyless messages in
		// each of the n queues.
		route, err := tc.adm[side].TopicRoute(ctx, tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		n := len(route.MessageQueues())
		if len(perSide[side]) != n || len(keylessQ[side]) != n {
			t.Errorf("%s cluster: keys in %d queues, keyless messages in %d; want all %d", migrate.Side(side), len(perSide[side]), len(keylessQ[side]), n)
		}
	}
	mu.Unlock()
	if spread > 0 {
		t.Errorf("%d of %d keys were spread over more than one queue", spread, keys)
	}

	r := got.RequireAll(t, ids, 120*time.Second)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("consumed %d messages: lost %d, duplicates %d, per-key order violations %d",
		len(ids), len(r.Lost), r.Duplicates, len(violations))
	if r.Duplicates != 0 {
		t.Errorf("%d duplicates in a fault-free run", r.Duplicates)
	}
	if len(violations) != 0 {
		t.Errorf("%d per-key order violations, first: %v", len(violations), violations[:min(len(violations), 10)])
	}
}
