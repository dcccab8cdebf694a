package config_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/throttle"
)

func noop(context.Context, *consumer.Message) error { return nil }

// newConsumer returns a consumer of group "orders" that is never started,
// with subscriptions "created" (pool 8, 100/s, max retries 16) and "paid"
// (pool 2, batch 10), and optionally a process limiter.
func newConsumer(t *testing.T, process *throttle.Limiter) *consumer.Consumer {
	t.Helper()
	opts := []consumer.Option{
		consumer.WithNameServer("127.0.0.1:1"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
		consumer.WithGroupRate(throttle.Limit{Rate: 1000}),
	}
	if process != nil {
		opts = append(opts, consumer.WithProcessLimiter(process))
	}
	c, err := consumer.New("orders", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.Subscribe("created", consumer.All, noop, consumer.WithPoolSize(8), consumer.WithRate(throttle.Limit{Rate: 100})); err != nil {
		t.Fatal(err)
	}
	batch := func(context.Context, []*consumer.Message) error { return nil }
	if err := c.SubscribeBatch("paid", consumer.All, batch, consumer.WithPoolSize(2), consumer.WithBatchSize(10)); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustParse(t *testing.T, s string) *config.Document {
	t.Helper()
	doc, err := config.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestApplyChangesLiveSettingsAndReportsEachChange(t *testing.T) {
	process, _ := throttle.New(throttle.Limit{})
	c := newConsumer(t, process)
	doc := mustParse(t, `group: orders
processLimit: {rate: 3000}
groupLimit: {rate: 900, burst: 90, shared: true}
subscriptions:
  created: {poolSize: 12, rate: 250, burst: 5, orderly: false, maxRetries: 16, batchSize: 1}
  paid: {poolSize: 2, batchSize: 10}
`)
	changes, err := config.Apply(c, doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range changes {
		got = append(got, ch.String())
	}
	want := []string{
		"processLimit: unlimited -> 3000/s burst 300",
		"groupLimit: 1000/s burst 100 per instance -> 900/s burst 90 shared by all instances",
		"subscriptions.created.poolSize: 8 -> 12",
		"subscriptions.created.rate: 100/s burst 10 -> 250/s burst 5",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s := c.Settings()
	if process.Limit().Rate != 3000 || !s.GroupQuota || s.GroupLimit != (throttle.Limit{Rate: 900, Burst: 90}) ||
		s.Subscriptions[0].PoolSize != 12 || s.Subscriptions[0].Rate != (throttle.Limit{Rate: 250, Burst: 5}) {
		t.Fatalf("settings after Apply = %+v", s)
	}
	if again, err := config.Apply(c, doc); err != nil || len(again) != 0 {
		t.Fatalf("applying the same document again = %v, %v; want no changes", again, err)
	}
}

// A rejected document changes nothing, even the parts of it that are
// valid, and the error names the field.
func TestApplyRejectsDocumentsThatDoNotFitTheConsumerAndKeepsOldValues(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"other group", "group: payments\nsubscriptions:\n  created: {poolSize: 3}\n", []string{"group (line 1)", `"payments" is not the consumer's group "orders"`}},
		{"unknown subscription", "group: orders\nsubscriptions:\n  created: {poolSize: 3}\n  shipped: {rate: 10}\n", []string{"subscriptions.shipped (line 4)", "does not subscribe", "created, paid"}},
		{"orderly differs", "group: orders\nsubscriptions:\n  created: {poolSize: 3, orderly: true}\n", []string{"subscriptions.created.orderly (line 3)", "start-only", "runs with false"}},
		{"batch size differs", "group: orders\nsubscriptions:\n  paid:\n    poolSize: 3\n    batchSize: 20\n", []string{"subscriptions.paid.batchSize (line 5)", "start-only", "runs with 10"}},
		{"max retries differs", "group: orders\nsubscriptions:\n  created: {rate: 5, maxRetries: 3}\n", []string{"subscriptions.created.maxRetries", "start-only", "restart"}},
		{"process limit without a process limiter", "group: orders\nprocessLimit: {rate: 10}\nsubscriptions:\n  created: {poolSize: 3}\n", []string{"processLimit (line 2)", "no process limiter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConsumer(t, nil)
			before := c.Settings()
			doc := mustParse(t, tt.doc)
			_, err := config.Apply(c, doc)
			requireRejected(t, err, tt.want)
			if after := c.Settings(); !equalSettings(before, after) {
				t.Fatalf("a rejected document changed the consumer:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

func equalSettings(a, b consumer.Settings) bool {
	if a.Group != b.Group || a.GroupLimit != b.GroupLimit || a.GroupQuota != b.GroupQuota || len(a.Subscriptions) != len(b.Subscriptions) {
		return false
	}
	for i := range a.Subscriptions {
		if a.Subscriptions[i] != b.Subscriptions[i] {
			return false
		}
	}
	return true
}

func TestApplyValidatesDocumentsBuiltInCode(t *testing.T) {
	c := newConsumer(t, nil)
	bad := -4
	_, err := config.Apply(c, &config.Document{Group: "orders", Subscriptions: map[string]config.Subscription{"created": {PoolSize: &bad}}})
	requireRejected(t, err, []string{"subscriptions.created.poolSize: -4 is outside"})
	if _, err := config.Apply(c, nil); err == nil {
		t.Fatal("Apply(nil) accepted")
	}
}

// writeDoc writes a document to a file of its own and returns the path.
func writeDoc(t testing.TB, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fromFile builds an unstarted consumer of group with File(path) and
// subscribes topic with opts.
func fromFile(t *testing.T, group, path, topic string, opts []consumer.Option, sopts ...consumer.SubscribeOption) (*consumer.Consumer, error) {
	t.Helper()
	base := []consumer.Option{consumer.WithNameServer("127.0.0.1:1"), consumer.WithLogger(slog.New(slog.DiscardHandler)), config.File(path)}
	c, err := consumer.New(group, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c, c.Subscribe(topic, consumer.All, noop, sopts...)
}

func TestFileBuildsSubscriptionsWithTheDocumentsSettings(t *testing.T) {
	path := writeDoc(t, `group: orders
subscriptions:
  created: {poolSize: 5, rate: 50, burst: 2, orderly: true, maxRetries: 3}
`)
	c, err := fromFile(t, "orders", path, "created", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := consumer.SubscriptionSettings{Topic: "created", PoolSize: 5, Rate: throttle.Limit{Rate: 50, Burst: 2}, Orderly: true, BatchSize: 1, MaxRetries: 3}
	if s := c.Settings(); s.Subscriptions[0] != want {
		t.Fatalf("settings = %+v, want %+v", s.Subscriptions[0], want)
	}
	// The document applies to the consumer it built without a change.
	doc, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if changes, err := config.Apply(c, doc); err != nil || len(changes) != 0 {
		t.Fatalf("Apply to the consumer built from it = %v, %v", changes, err)
	}
}

// What wins between code and file: the file, for the keys it sets; the
// code, for the keys the file leaves out.
func TestFileWinsOverCodeForTheKeysItSets(t *testing.T) {
	path := writeDoc(t, "group: orders\nsubscriptions:\n  created: {poolSize: 9, maxRetries: 2}\n")
	c, err := fromFile(t, "orders", path, "created",
		[]consumer.Option{consumer.WithPoolSize(3)},
		consumer.WithPoolSize(4), consumer.WithMaxRetries(7), consumer.WithRate(throttle.Limit{Rate: 30}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings().Subscriptions[0]
	if s.PoolSize != 9 || s.MaxRetries != 2 {
		t.Fatalf("pool %d, retries %d; want the file's 9 and 2 over the code's 4 and 7", s.PoolSize, s.MaxRetries)
	}
	if s.Rate.Rate != 30 {
		t.Fatalf("rate %v; want the code's 30, which the file leaves out", s.Rate)
	}
}

func TestFileFailsNewForABadFileOrAnotherGroup(t *testing.T) {
	for name, tt := range map[string]struct {
		path string
		want []string
	}{
		"missing":       {filepath.Join(t.TempDir(), "absent.yaml"), []string{"absent.yaml", "no such file"}},
		"invalid":       {writeDoc(t, "group: orders\nsubscriptions:\n  created: {poolSize: 0}\n"), []string{"subscriptions.created.poolSize (line 3)"}},
		"another group": {writeDoc(t, "group: payments\n"), []string{"group (line 1)", `"payments" is not the consumer's group "orders"`}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := fromFile(t, "orders", tt.path, "created", nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("New = %v, want it to name %q", err, w)
				}
			}
		})
	}
	// A batch size for a one-message handler is a mistake in the file.
	_, err := fromFile(t, "orders", writeDoc(t, "group: orders\nsubscriptions:\n  created: {batchSize: 8}\n"), "created", nil)
	if !errors.Is(err, consumer.ErrInvalidOption) || !strings.Contains(err.Error(), "batchSize") {
		t.Fatalf("Subscribe = %v, want ErrInvalidOption naming batchSize", err)
	}
}

func TestAdaptivePoolKeyBuildsAnAdaptiveSubscriptionAndIsStartOnly(t *testing.T) {
	const yaml = `group: orders
subscriptions:
  created: {adaptivePool: {min: 3, max: 40, window: 500ms}}
`
	doc := mustParse(t, yaml)
	c, err := fromFile(t, "orders", writeDoc(t, yaml), "created", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Settings().Subscriptions[0].Adaptive
	if got == nil || *got != (consumer.Adaptive{Min: 3, Max: 40, Window: 500 * time.Millisecond}) {
		t.Fatalf("Settings().Adaptive = %+v", got)
	}
	if changes, err := config.Apply(c, doc); err != nil || len(changes) != 0 {
		t.Fatalf("Apply to the consumer built from it = %v, %v", changes, err)
	}
	other := mustParse(t, "group: orders\nsubscriptions:\n  created: {adaptivePool: {min: 3, max: 50, window: 500ms}}\n")
	_, err = config.Apply(c, other)
	requireRejected(t, err, []string{"subscriptions.created.adaptivePool", "start-only", "max: 40"})

	// A subscription without adaptive sizing cannot be made adaptive live.
	plain := newConsumer(t, nil)
	_, err = config.Apply(plain, mustParse(t, "group: orders\nsubscriptions:\n  created: {adaptivePool: {}}\n"))
	requireRejected(t, err, []string{"subscriptions.created.adaptivePool", "start-only", "off"})
}

// instanceMode joins a group of its own, as broadcast.Mode does.
type instanceMode struct{}

func (instanceMode) Setup(s *consumer.ModeSetup) error {
	s.Group += "-instance"
	return nil
}
func (instanceMode) BeforeStart(context.Context, consumer.ModeStart) error { return nil }
func (instanceMode) AfterStart(context.Context, consumer.ModeStart) error  { return nil }
func (instanceMode) AfterStop(context.Context)                             {}

// A consumer whose mode joins another group (a broadcast instance) is
// configured by the group given to consumer.New, which the document names.
func TestDocumentNamesTheGroupGivenToNew(t *testing.T) {
	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:1"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)), consumer.WithMode(instanceMode{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.Subscribe("created", consumer.All, noop); err != nil {
		t.Fatal(err)
	}
	doc, err := config.Parse([]byte("group: orders\nsubscriptions:\n  created: {poolSize: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Apply(c, doc); err != nil {
		t.Fatalf("Apply with the base group = %v; want it applied to the instance group %q", err, c.Group())
	}
	if got := c.Settings().Subscriptions[0].PoolSize; got != 3 {
		t.Fatalf("pool size %d, want 3", got)
	}
}
