// Command migrate walks through moving a topic from one cluster to another
// under load, with rmqkit's migrate package: a producer sends all the
// time, while a control file moves the subscription old-only -> dual ->
// new-only and the producers' weight 0 -> 50 -> 100. Every second it
// prints the phase, the weight, and per cluster what was sent, consumed
// and is left (lag); at the end, how many messages were lost (none).
//
//	scripts/rocketmq.sh up --clusters 2
//	go run ./examples/migrate -duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/migrate"
	"github.com/rmqkit/rmqkit/rmqlog"
)

func main() {
	var old, new exampleutil.Cluster
	flag.StringVar(&old.NameServer, "old-namesrv", envOr("RMQKIT_NAMESRV", "127.0.0.1:9876"), "old cluster's name server")
	flag.StringVar(&old.Broker, "old-broker", envOr("RMQKIT_BROKER", "127.0.0.1:10911"), "old cluster's broker (for creating the topic)")
	flag.StringVar(&new.NameServer, "new-namesrv", envOr("RMQKIT_NAMESRV_B", "127.0.0.1:19876"), "new cluster's name server")
	flag.StringVar(&new.Broker, "new-broker", envOr("RMQKIT_BROKER_B", "127.0.0.1:20911"), "new cluster's broker (for creating the topic)")
	duration := flag.Duration("duration", 60*time.Second, "how long the walk-through sends messages (at least 30s)")
	rate := flag.Int("rate", 200, "messages per second")
	flag.Parse()
	if *duration < 30*time.Second || *rate < 1 {
		log.Fatal("-duration must be at least 30s and -rate at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, old, new, *duration, *rate); err != nil {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, oldC, newC exampleutil.Cluster, duration time.Duration, rate int) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))
	// Phase switches and file changes are worth seeing.
	events := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))

	suffix := strconv.FormatInt(time.Now().Unix(), 36)
	topic, group := "rmqkit_migrate_"+suffix, "rmqkit_migrate_group_"+suffix
	for _, c := range []exampleutil.Cluster{oldC, newC} {
		if err := c.CreateTopic(ctx, topic, 4); err != nil {
			return err
		}
	}
	old := migrate.Cluster{NameServers: []string{oldC.NameServer}}
	new := migrate.Cluster{NameServers: []string{newC.NameServer}}

	var (
		mu       sync.Mutex
		sent     = map[string]bool{}
		consumed = map[string]int{}
	)
	sub, err := migrate.NewSubscription(old, new, group, topic, consumer.All,
		func(_ context.Context, m *consumer.Message) error {
			mu.Lock()
			consumed[string(m.Body)]++
			mu.Unlock()
			return nil
		},
		migrate.WithPoolSize(8),
		migrate.WithSettle(3*time.Second),
		migrate.WithLagInterval(time.Second),
		migrate.WithStartPositions(consumer.StartFromEarliest, consumer.StartFromEarliest),
		migrate.WithLogger(events),
		migrate.WithConsumerOptions(consumer.WithLogger(logger)),
		migrate.WithOnPhaseChange(func(from, to migrate.Phase, took time.Duration) {
			fmt.Printf("=== phase %v -> %v in %v\n", from, to, took.Round(time.Millisecond))
		}),
	)
	if err != nil {
		return err
	}
	prod, err := migrate.NewProducer(old, new,
		migrate.WithProducerOptions(rmqproducer.WithGroupName("rmqkit_migrate_producer"), rmqproducer.WithRetry(2)),
		migrate.WithProducerLogger(events),
	)
	if err != nil {
		return err
	}
	defer prod.Shutdown()

	// The control file: what an operator (or a config system) edits.
	dir, err := os.MkdirTemp("", "rmqkit-migrate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	control := filepath.Join(dir, "migrate.yaml")
	edit := func(content string) error {
		fmt.Printf("=== edit %s: %q\n", control, content)
		tmp := control + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, control)
	}
	if err := edit("phase: old-only\nweight: 0\n"); err != nil {
		return err
	}
	w, err := migrate.Watch(ctx, control, sub, prod, migrate.WithWatchLogger(events))
	if err != nil {
		return err
	}
	defer w.Close()
	if err := sub.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sub.Stop(sctx)
	}()

	// The producer: rate messages per second, half of them with one of 32
	// sharding keys, until duration has passed.
	sendCtx, stopSending := context.WithTimeout(ctx, duration)
	defer stopSending()
	var sending sync.WaitGroup
	sending.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-sendCtx.Done():
				return
			case <-tick.C:
			}
			id := "msg-" + strconv.Itoa(i)
			m := primitive.NewMessage(topic, []byte(id))
			if i%2 == 0 {
				m.WithShardingKey("customer-" + strconv.Itoa(i%32))
			}
			if _, err := prod.SendSync(sendCtx, m); err != nil {
				if sendCtx.Err() == nil {
					fmt.Println("send failed:", err)
				}
				continue
			}
			mu.Lock()
			sent[id] = true
			mu.Unlock()
		}
	})

	// The procedure, spread over the duration.
	step := duration / 6
	steps := []struct {
		at      time.Duration
		content string
		what    string
	}{
		{1 * step, "phase: dual\nweight: 0\n", "1. read both clusters"},
		{2 * step, "phase: dual\nweight: 50\n", "2. move half of the producers' traffic"},
		{3 * step, "phase: dual\nweight: 100\n", "3. move all of it"},
		{4 * step, "phase: new-only\nweight: 100\n", "4. stop reading the old cluster once it is drained"},
	}
	began := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for len(steps) > 0 && time.Since(began) >= steps[0].at {
			fmt.Println("===", steps[0].what)
			if err := edit(steps[0].content); err != nil {
				return err
			}
			steps = steps[1:]
		}
		printStatus(sub, prod)
		mu.Lock()
		all := len(steps) == 0 && sendCtx.Err() != nil && len(consumed) >= len(sent)
		mu.Unlock()
		done = all && sub.Phase() == migrate.NewOnly
		if time.Since(began) > duration+2*time.Minute {
			fmt.Println("=== giving up waiting")
			break
		}
	}
	sending.Wait()

	mu.Lock()
	defer mu.Unlock()
	lost, dups := 0, 0
	for id := range sent {
		switch n := consumed[id]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	fmt.Printf("=== done: sent %d, consumed %d distinct, lost %d, duplicates %d\n", len(sent), len(consumed), lost, dups)
	if lost > 0 {
		return fmt.Errorf("%d messages lost", lost)
	}
	return nil
}

func printStatus(sub *migrate.Subscription, prod *migrate.Producer) {
	st, ps := sub.Stats(), prod.Stats()
	phase := st.Phase.String()
	if st.Target != st.Phase {
		phase += " -> " + st.Target.String()
	}
	side := func(s migrate.SideStats, sent uint64) string {
		lag := fmt.Sprintf("lag %d+%d retry", s.Lag, s.RetryLag)
		if s.LagErr != nil {
			lag = "lag ?"
		}
		reading := " "
		if s.Reading {
			reading = "*"
		}
		return fmt.Sprintf("%ssent %5d consumed %5d %s drained %-5v", reading, sent, s.Consumed, lag, s.Drained)
	}
	fmt.Printf("phase %-20s weight %3d | old %s | new %s\n", phase, ps.Weight,
		side(st.Old, ps.Sent[migrate.Old]), side(st.New, ps.Sent[migrate.New]))
}
