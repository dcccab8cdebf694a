package broadcast

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/rmqkit/rmqkit/consumer"
)

// With a namespace, the collector considers only the instance groups of its
// namespace, and deletes the stale one with its namespaced retry topic.
func TestGCWithANamespaceConsidersOnlyItsNamespace(t *testing.T) {
	f := &gcFixture{adm: newFakeAdmin(), clock: newFakeClock()}
	cfg := defaultConfig()
	cfg.logger = slog.New(slog.DiscardHandler)
	cfg.now = f.clock.Now
	cfg.conn.Namespace = "prod"
	f.col = newCollector(f.adm, &cfg, "orders", cfg.brokerName("orders-self"))
	f.adm.addGroup("prod%orders-gone", true) // a stale instance of this namespace: collected
	f.adm.addGroup("prod%orders-self", true) // the collector's own instance
	f.adm.addGroup("orders-gone", true)      // the same base without the namespace
	f.adm.addGroup("test%orders-gone", true) // the same base in another namespace
	f.adm.addGroup("prod%orders-eu-p", true) // another base in this namespace
	f.adm.addGroup("prod%orders-legacy", false)
	f.pass(t)
	f.passes(t, 5, ttl/4)
	if got := f.adm.deleted(); !slices.Equal(got, []string{"prod%orders-gone"}) {
		t.Fatalf("deleted %v, want only prod%%orders-gone", got)
	}
	f.adm.mu.Lock()
	defer f.adm.mu.Unlock()
	if !slices.Equal(f.adm.deletedTopics, []string{"%RETRY%prod%orders-gone"}) {
		t.Fatalf("deleted topics %v, want the namespaced retry topic", f.adm.deletedTopics)
	}
}

// With a namespace, Start checks the connections of the namespaced group,
// and creates that group and its namespaced retry topic.
func TestStartUsesTheNamespacedNames(t *testing.T) {
	ctx := context.Background()
	adm := newFakeAdmin()
	adm.setConns("prod%orders-web_0", "10.0.0.9@rmqkit-web_0-other")
	bc, c := newTestConsumerIn(t, adm, "prod", WithIdentityWait(0))
	if err := bc.Subscribe("T", consumer.All, nop); err != nil {
		t.Fatal(err)
	}
	if err := bc.Start(ctx); !errors.Is(err, ErrIdentityInUse) {
		t.Fatalf("Start = %v, want ErrIdentityInUse: another client is connected under prod%%orders-web_0", err)
	}
	adm.setConns("prod%orders-web_0")
	adm.setConns("orders-web_0", "10.0.0.9@rmqkit-web_0-other") // outside the namespace
	if others, err := c.otherClients(ctx); err != nil || len(others) != 0 {
		t.Fatalf("other clients %v, %v; want none (the plain group is not this instance's)", others, err)
	}
	if err := c.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	c.ensureRetryTopic(ctx)
	adm.mu.Lock()
	defer adm.mu.Unlock()
	if !slices.Equal(adm.created, []string{"prod%orders-web_0"}) {
		t.Errorf("created groups %v, want prod%%orders-web_0", adm.created)
	}
	if _, ok := adm.routes["%RETRY%prod%orders-web_0"]; !ok {
		t.Errorf("routes %v: no namespaced retry topic", adm.routes)
	}
}
