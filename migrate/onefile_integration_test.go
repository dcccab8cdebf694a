//go:build integration

package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/migrate"
)

// One YAML file drives the migration's consumers (config.File, given
// through WithConsumerOptions) and the migration itself (migrate.Watch on
// the same file's migration section): an edit of the file changes the
// consumers' rate and the phase together.
func TestOneFileDrivesTheConsumersAndTheMigration(t *testing.T) {
	t.Parallel()
	tc := setup(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	file := func(rate int, phase string) string {
		return fmt.Sprintf("group: %s\nsubscriptions:\n  %s: {rate: %d, burst: 1}\nmigration: {phase: %s}\n", tc.group, tc.topic, rate, phase)
	}
	writeControl(t, path, file(20, "old-only"))

	var handled atomic.Int64
	sub, err := migrate.NewSubscription(tc.old, tc.new, tc.group, tc.topic, consumer.All,
		func(context.Context, *consumer.Message) error { handled.Add(1); return nil },
		migrate.WithSettle(time.Second),
		migrate.WithLagInterval(300*time.Millisecond),
		migrate.WithStartPositions(consumer.StartFromEarliest, consumer.StartFromEarliest),
		migrate.WithLogger(newLogger(t, slog.LevelWarn)),
		migrate.WithConsumerOptions(consumer.WithLogger(newLogger(t, slog.LevelWarn)),
			config.File(path, config.WithLogger(newLogger(t, slog.LevelWarn)))),
	)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, sub)
	w, err := migrate.Watch(ctx, path, sub, nil, migrate.WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A backlog on the old cluster that the rate, not the handler, paces.
	p := tc.producer(t)
	for i := range 600 {
		if _, err := sendOne(ctx, p, newMsg(tc.topic, "m-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	rate := func() float64 {
		n0, t0 := handled.Load(), time.Now()
		time.Sleep(2 * time.Second)
		return float64(handled.Load()-n0) / time.Since(t0).Seconds()
	}
	waitFor(t, "the first message", time.Minute, func() bool { return handled.Load() > 0 })
	slow := rate()

	writeControl(t, path, file(200, "dual"))
	waitFor(t, "the dual phase", 30*time.Second, func() bool { return sub.Phase() == migrate.Dual })
	time.Sleep(300 * time.Millisecond) // past the debounce of the consumer's watch
	fast := rate()
	t.Logf("rate 20/s from the file: %.1f/s; after the edit to 200/s and dual: %.1f/s", slow, fast)
	if slow > 20*1.25 {
		t.Fatalf("handled %.1f/s under the file's rate of 20/s", slow)
	}
	if fast < 20*3 {
		t.Fatalf("handled %.1f/s after the file raised the rate to 200/s: the consumers did not follow the file", fast)
	}
	if st := w.Stats(); st.Applied != 2 || st.Rejected != 0 {
		t.Fatalf("migrate watcher stats %+v, want 2 applied", st)
	}
}
