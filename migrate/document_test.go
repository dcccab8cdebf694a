package migrate

import (
	"errors"
	"strings"
	"testing"

	rmqconfig "github.com/rmqkit/rmqkit/config"
)

func TestParseAcceptsValidDocuments(t *testing.T) {
	type tc struct {
		in   string
		want string // Document.String()
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		doc, err := Parse([]byte(c.in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if got := doc.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	for _, c := range []tc{
		{"{phase: dual, weight: 50}", "phase: dual, weight: 50"},
		{"phase: old-only\nweight: 0\n", "phase: old-only, weight: 0"},
		{"phase: new\nweight: 100\nforce: true\n", "phase: new-only, weight: 100, force: true"},
		{"weight: 25 # phase left as is\n", "phase: -, weight: 25"},
		{"phase: Dual", "phase: dual, weight: -"},
		{"phase: dual\nforce: false", "phase: dual, weight: -"},
		{"---\nweight: 7\n", "phase: -, weight: 7"},
	} {
		t.Run(c.in, func(t *testing.T) { run(t, c) })
	}
}

// Invalid documents are rejected whole, with an error that names the field.
func TestParseRejectsInvalidDocuments(t *testing.T) {
	type tc struct {
		name, in string
		field    string // the FieldError's Field ("" for the document)
		msg      string // part of the message
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		_, err := Parse([]byte(c.in))
		if !errors.Is(err, rmqconfig.ErrInvalid) {
			t.Fatalf("error = %v, want config.ErrInvalid", err)
		}
		var fe *rmqconfig.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is not a *FieldError", err)
		}
		if fe.Field != c.field || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("error = %q (field %q), want field %q and %q", err, fe.Field, c.field, c.msg)
		}
	}
	for _, c := range []tc{
		{"unknown key", "phase: dual\nwieght: 50", "wieght", "unknown key"},
		{"bad phase", "phase: both", "phase", `"both" is not a phase name`},
		{"phase number", "phase: 2", "phase", "not a phase name"},
		{"weight too big", "weight: 101", "weight", "101 is outside [0, 100]"},
		{"weight negative", "weight: -5", "weight", "-5 is outside [0, 100]"},
		{"weight string", `weight: "50"`, "weight", "is not an integer"},
		{"weight float", "weight: 50.5", "weight", "is not an integer"},
		{"weight empty", "weight:", "weight", "an empty value is not an integer"},
		{"weight list", "weight: [50]", "weight", "a list is not an integer"},
		{"force not bool", "phase: new\nforce: yes please", "force", "not true or false"},
		{"force alone", "force: true", "force", "force without phase"},
		{"duplicate", "weight: 10\nweight: 20", "weight", "duplicate key (first at line 1)"},
		{"alias", "phase: &x dual\nweight: *x", "phase", "anchors and aliases are not supported"},
		{"list root", "- phase: dual", "", "must be a mapping"},
		{"scalar root", "dual", "", "must be a mapping"},
		{"empty", "", "", "empty document"},
		{"comment only", "# nothing\n", "", "empty document"},
		{"two documents", "weight: 1\n---\nweight: 2\n", "", "more than one YAML document"},
		{"syntax", "phase: [dual", "", "did not find expected"},
		{"tab", "phase:\tdual\n\tweight: 5", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) { run(t, c) })
	}
}

// Several problems are reported together, each with its line.
func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("phase: sideways\nweight: 300\nextra: 1\n"))
	for _, want := range []string{"phase (line 1)", "weight (line 2)", "extra (line 3)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

// One file drives a consumer and its migration: Parse reads the migration
// section of a configuration file, which config validates whole.
func TestParseReadsTheMigrationSectionOfAConfigurationFile(t *testing.T) {
	const file = `group: billing
subscriptions:
  invoices: {poolSize: 16}
migration: {phase: new, weight: 80, force: true}
`
	doc, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.String(); got != "phase: new-only, weight: 80, force: true" {
		t.Fatalf("Parse = %s", got)
	}
	cd, err := rmqconfig.Parse([]byte(file))
	if err != nil || cd.Subscriptions["invoices"].PoolSize == nil || *cd.Subscriptions["invoices"].PoolSize != 16 {
		t.Fatalf("config.Parse of the same file = %+v, %v", cd, err)
	}
	// A file without a migration section leaves phase and weight alone.
	if doc, err := Parse([]byte("group: billing\n")); err != nil || doc.Phase != nil || doc.Weight != nil {
		t.Fatalf("Parse without a migration section = %v, %v", doc, err)
	}
	for _, c := range []struct{ in, field, msg string }{
		{"group: billing\nmigration: {phase: both}\n", "migration.phase", `"both" is not a phase name`},
		{"group: billing\nmigration: {weight: 101}\n", "migration.weight", "101 is outside [0, 100]"},
		{"group: billing\nmigration: {force: true}\n", "migration.force", "force without phase"},
		{"group: billing\nmigration: {wieght: 5}\n", "migration.wieght", "unknown key"},
		{"group: billing\nsubscriptions:\n  invoices: {poolSize: 0}\nmigration: {phase: dual}\n", "subscriptions.invoices.poolSize", "outside"},
	} {
		_, err := Parse([]byte(c.in))
		var fe *rmqconfig.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Parse(%q) = %v, want field %s naming %q", c.in, err, c.field, c.msg)
		}
	}
}

// config accepts exactly the phase names ParsePhase reads.
func TestConfigAndParsePhaseAgreeOnPhaseNames(t *testing.T) {
	for _, name := range []string{"old-only", "old", "dual", "new-only", "new", "Dual", "sideways", ""} {
		_, perr := ParsePhase(name)
		_, cerr := rmqconfig.Parse([]byte("group: g\nmigration: {phase: \"" + name + "\"}\n"))
		if (perr == nil) != (cerr == nil) {
			t.Errorf("phase %q: ParsePhase error %v, config.Parse error %v", name, perr, cerr)
		}
	}
}
