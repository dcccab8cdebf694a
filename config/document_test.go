package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rmqkit/rmqkit/config"
)

const good = `group: orders
processLimit: {rate: 0}
groupLimit: {rate: 500, burst: 50, shared: false}
subscriptions:
  orders-created:
    poolSize: 16
    rate: 200
    burst: 20
    batchSize: 1
    orderly: false
    maxRetries: 16
  orders-paid: {poolSize: 4}
`

func TestParseReadsEveryKey(t *testing.T) {
	doc, err := config.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	s := doc.Subscriptions["orders-created"]
	if doc.Group != "orders" || doc.ProcessLimit == nil || doc.ProcessLimit.Rate != 0 ||
		*doc.GroupLimit != (config.GroupLimit{Rate: 500, Burst: 50}) ||
		*s.PoolSize != 16 || *s.Rate != 200 || *s.Burst != 20 || *s.BatchSize != 1 || *s.Orderly || *s.MaxRetries != 16 {
		t.Fatalf("parsed %+v, orders-created %+v", doc, s)
	}
	if p := doc.Subscriptions["orders-paid"]; *p.PoolSize != 4 || p.Rate != nil || p.Burst != nil || p.Orderly != nil {
		t.Fatalf("keys left out must stay nil: %+v", p)
	}
}

// rejectCase is a document Parse must reject, with what the error must
// name.
type rejectCase struct {
	name string
	doc  string
	want []string // substrings of the error
}

func requireRejected(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted")
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("error %q does not wrap ErrInvalid", err)
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q is not a *FieldError", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

func TestParseRejectsBadDocumentsNamingFieldAndLine(t *testing.T) {
	tests := []rejectCase{
		{"syntax error", "group: orders\nsubscriptions:\n  t: {poolSize: 4\n", []string{"line"}},
		{"tab indentation", "group: orders\nsubscriptions:\n\tt: {}\n", []string{"line 3"}},
		{"unknown root key", "group: orders\nratelimit: 5\n", []string{"ratelimit (line 2)", "unknown key", "known keys: group, groupLimit"}},
		{"unknown subscription key", "group: g\nsubscriptions:\n  t:\n    poolSzie: 4\n", []string{"subscriptions.t.poolSzie (line 4)", "unknown key"}},
		{"unknown limit key", "group: g\ngroupLimit: {rate: 5, perInstance: true}\n", []string{"groupLimit.perInstance (line 2)"}},
		{"merge key", "group: g\nbase: &b {rate: 1}\n", []string{"base (line 2)"}},
		{"wrong type", "group: g\nsubscriptions:\n  t: {rate: fast}\n", []string{"subscriptions.t.rate (line 3)", `"fast" is not a number`}},
		{"quoted number", "group: g\nsubscriptions:\n  t: {rate: \"200\"}\n", []string{"subscriptions.t.rate (line 3)", "not a number"}},
		{"fraction for an integer", "group: g\nsubscriptions:\n  t:\n    poolSize: 2.5\n", []string{"subscriptions.t.poolSize (line 4)", "integer"}},
		{"list for a mapping", "group: g\nsubscriptions: [a, b]\n", []string{"subscriptions (line 2)", "mapping"}},
		{"duplicate key", "group: g\nsubscriptions:\n  t: {rate: 1}\n  t: {rate: 2}\n", []string{"subscriptions.t (line 4)", "duplicate key (first at line 3)"}},
		{"negative pool size", "group: g\nsubscriptions:\n  t:\n    poolSize: -1\n", []string{"subscriptions.t.poolSize (line 4)", "-1 is outside [1, 65536]"}},
		{"zero pool size", "group: g\nsubscriptions:\n  t: {poolSize: 0}\n", []string{"subscriptions.t.poolSize (line 3)"}},
		{"absurd pool size", "group: g\nsubscriptions:\n  t: {poolSize: 100000}\n", []string{"poolSize", "100000 is outside"}},
		{"negative rate", "group: g\nsubscriptions:\n  t: {rate: -5}\n", []string{"subscriptions.t.rate (line 3)", "outside [0, 1e+06]"}},
		{"absurd rate", "group: g\ngroupLimit: {rate: 5e9}\n", []string{"groupLimit.rate (line 2)"}},
		{"NaN rate", "group: g\nprocessLimit: {rate: .nan}\n", []string{"processLimit.rate (line 2)", "not a finite number"}},
		{"infinite rate", "group: g\nprocessLimit: {rate: .inf}\n", []string{"processLimit.rate", "not a finite number"}},
		{"negative burst", "group: g\ngroupLimit: {rate: 5, burst: -1}\n", []string{"groupLimit.burst (line 2)"}},
		{"burst without rate", "group: g\nsubscriptions:\n  t:\n    burst: 5\n", []string{"subscriptions.t.burst (line 4)", "without rate"}},
		{"negative max retries", "group: g\nsubscriptions:\n  t: {maxRetries: -1}\n", []string{"subscriptions.t.maxRetries"}},
		{"absurd max retries", "group: g\nsubscriptions:\n  t: {maxRetries: 99}\n", []string{"maxRetries", "[0, 32]"}},
		{"adaptive pool with a pool size", "group: g\nsubscriptions:\n  t:\n    poolSize: 4\n    adaptivePool: {max: 64}\n", []string{"subscriptions.t.poolSize (line 4)", "pins an adaptive pool"}},
		{"adaptive max below min", "group: g\nsubscriptions:\n  t:\n    adaptivePool: {min: 10, max: 5}\n", []string{"subscriptions.t.adaptivePool (line 4)", "max 5 is below min 10"}},
		{"adaptive window not a duration", "group: g\nsubscriptions:\n  t:\n    adaptivePool: {window: 5}\n", []string{"subscriptions.t.adaptivePool.window", "not a duration"}},
		{"adaptive window too short", "group: g\nsubscriptions:\n  t:\n    adaptivePool: {window: 10ms}\n", []string{"subscriptions.t.adaptivePool.window", "below 100ms"}},
		{"adaptive unknown key", "group: g\nsubscriptions:\n  t:\n    adaptivePool: {target: 5}\n", []string{"subscriptions.t.adaptivePool.target (line 4)", "unknown key"}},
		{"zero batch size", "group: g\nsubscriptions:\n  t: {batchSize: 0}\n", []string{"subscriptions.t.batchSize"}},
		{"no group", "subscriptions:\n  t: {poolSize: 2}\n", []string{"group", "required"}},
		{"empty document", "", []string{"empty document"}},
		{"comment only", "# nothing\n", []string{"empty document"}},
		{"not a mapping", "- group: g\n", []string{"must be a mapping"}},
		{"two documents", "group: g\n---\ngroup: h\n", []string{"more than one YAML document"}},
		{"too large", "group: g\n#" + strings.Repeat("x", config.MaxDocumentSize) + "\n", []string{"bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := config.Parse([]byte(tt.doc))
			if doc != nil {
				t.Errorf("Parse returned a document with the error")
			}
			requireRejected(t, err, tt.want)
		})
	}
}

func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	_, err := config.Parse([]byte("group: g\nsubscriptions:\n  a: {poolSize: 0}\n  b: {rate: -1, maxRetries: 50}\n"))
	requireRejected(t, err, []string{"subscriptions.a.poolSize (line 3)", "subscriptions.b.rate (line 4)", "subscriptions.b.maxRetries (line 4)"})
}

func TestNullValuesAreLeftOut(t *testing.T) {
	doc, err := config.Parse([]byte("group: g\nprocessLimit:\nsubscriptions:\n  t:\n    rate: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.ProcessLimit != nil || doc.Subscriptions["t"].Rate != nil {
		t.Fatalf("null values must be left out: %+v", doc)
	}
}
