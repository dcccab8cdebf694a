package config_test

import (
	"testing"

	"github.com/rmqkit/rmqkit/config"
)

// keyOrdered: true subscribes key-ordered through File, is start-only
// for Apply, and excludes orderly and batchSize.
func TestKeyOrderedKeyBuildsAKeyOrderedSubscriptionAndIsStartOnly(t *testing.T) {
	const yaml = "group: orders\nsubscriptions:\n  created: {keyOrdered: true, poolSize: 6}\n"
	doc := mustParse(t, yaml)
	c, err := fromFile(t, "orders", writeDoc(t, yaml), "created", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Settings().Subscriptions[0]; !s.KeyOrdered || s.Orderly || s.PoolSize != 6 {
		t.Fatalf("settings %+v, want key-ordered (not orderly), pool 6", s)
	}
	if _, err := config.Apply(c, doc); err != nil {
		t.Fatalf("Apply of the document the consumer was built from: %v", err)
	}
	_, err = config.Apply(newConsumer(t, nil), mustParse(t, "group: orders\nsubscriptions:\n  created: {keyOrdered: true}\n"))
	requireRejected(t, err, []string{"subscriptions.created.keyOrdered (line 3)", "start-only", "runs with false"})

	for _, tt := range []rejectCase{
		{"with orderly", "group: g\nsubscriptions:\n  t: {keyOrdered: true, orderly: true}\n", []string{"subscriptions.t.keyOrdered (line 3)", "not both"}},
		{"with batch size", "group: g\nsubscriptions:\n  t: {keyOrdered: true, batchSize: 4}\n", []string{"subscriptions.t.keyOrdered (line 3)", "one at a time"}},
		{"not a bool", "group: g\nsubscriptions:\n  t: {keyOrdered: sharding}\n", []string{"subscriptions.t.keyOrdered (line 3)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc))
			requireRejected(t, err, tt.want)
		})
	}
}
