package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rmqconfig "github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
)

// NewSubscription checks its arguments and the consumer options before
// anything connects.
func TestNewSubscriptionValidates(t *testing.T) {
	ok := Cluster{NameServers: []string{"127.0.0.1:1"}}
	h := func(context.Context, *consumer.Message) error { return nil }
	type tc struct {
		name     string
		old, new Cluster
		group    string
		topic    string
		h        consumer.Handler
		opts     []Option
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		s, err := NewSubscription(c.old, c.new, c.group, c.topic, consumer.All, c.h, c.opts...)
		if err == nil {
			_ = s.Stop(context.Background())
			t.Fatal("NewSubscription succeeded")
		}
		if !errors.Is(err, ErrInvalidOption) && !errors.Is(err, consumer.ErrInvalidOption) {
			t.Errorf("error %v wraps neither ErrInvalidOption", err)
		}
	}
	for _, c := range []tc{
		{"no old name server", Cluster{}, ok, "G", "T", h, nil},
		{"empty new address", ok, Cluster{NameServers: []string{" "}}, "G", "T", h, nil},
		{"half credentials", ok, Cluster{NameServers: []string{"x:1"}, SecretKey: "s"}, "G", "T", h, nil},
		{"namespace with separator", ok, Cluster{NameServers: []string{"x:1"}, Namespace: "a%b"}, "G", "T", h, nil},
		{"nil handler", ok, ok, "G", "T", nil, nil},
		{"bad group", ok, ok, "bad group!", "T", h, nil},
		{"bad topic", ok, ok, "G", "", h, nil},
		{"negative settle", ok, ok, "G", "T", h, []Option{WithSettle(-time.Second)}},
		{"tiny lag interval", ok, ok, "G", "T", h, []Option{WithLagInterval(time.Millisecond)}},
		{"pool size", ok, ok, "G", "T", h, []Option{WithPoolSize(0)}},
		{"no retry delays", ok, ok, "G", "T", h, []Option{WithRetryDelays()}},
		{"bad phase", ok, ok, "G", "T", h, []Option{WithPhase(Phase(9))}},
		{"bad consumer option", ok, ok, "G", "T", h, []Option{WithConsumerOptions(consumer.WithMaxRetries(99))}},
		{"batch size", ok, ok, "G", "T", h, []Option{WithSubscribeOptions(consumer.WithBatchSize(8))}},
	} {
		t.Run(c.name, func(t *testing.T) { run(t, c) })
	}
}

func TestNewSubscriptionWithValidArgumentsConnectsToNothing(t *testing.T) {
	ok := Cluster{NameServers: []string{"127.0.0.1:1"}}
	s, err := NewSubscription(ok, ok, "G", "T", consumer.Tags("a", "b"),
		func(context.Context, *consumer.Message) error { return nil }, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Phase() != OldOnly || s.Group() != "G" || s.Topic() != "T" {
		t.Errorf("phase %v group %q topic %q", s.Phase(), s.Group(), s.Topic())
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// With a namespace, the drain readings ask the broker for the namespaced
// group and topic, and for the retry topic the client and the broker use:
// "%RETRY%" before the namespaced group.
func TestBrokerNamesCarryTheNamespace(t *testing.T) {
	plain := brokerNames(Cluster{}, "G", "T")
	if plain != (names{group: "G", topic: "T", retry: "%RETRY%G"}) {
		t.Errorf("no namespace: %+v", plain)
	}
	ns := brokerNames(Cluster{Namespace: "ns"}, "G", "T")
	if ns != (names{group: "ns%G", topic: "ns%T", retry: "%RETRY%ns%G"}) {
		t.Errorf("namespace ns: %+v", ns)
	}
}

// A migration's consumers share its pool (WithPool, WithPoolSize): a
// configuration file that sizes the topic's pool has no meaning for them
// and is refused by name, while its other keys apply (TestOneFile... on the
// real brokers).
func TestAConfigurationFilePoolSizeConflictsWithTheMigrationsPool(t *testing.T) {
	ok := Cluster{NameServers: []string{"127.0.0.1:1"}}
	h := func(context.Context, *consumer.Message) error { return nil }
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	if err := os.WriteFile(path, []byte("group: G\nsubscriptions:\n  T: {poolSize: 8}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewSubscription(ok, ok, "G", "T", consumer.All, h, WithLogger(quietLogger()),
		WithConsumerOptions(rmqconfig.File(path)))
	if !errors.Is(err, consumer.ErrConflictingOptions) || !strings.Contains(err.Error(), "WithSharedPool and WithPoolSize") {
		t.Fatalf("NewSubscription = %v, want ErrConflictingOptions naming the pool options", err)
	}
}
