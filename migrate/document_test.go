package migrate

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDocumentAcceptsValidDocuments(t *testing.T) {
	type tc struct {
		in   string
		want string // Document.String()
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		doc, err := ParseDocument([]byte(c.in))
		if err != nil {
			t.Fatalf("ParseDocument(%q): %v", c.in, err)
		}
		if got := doc.String(); got != c.want {
			t.Errorf("ParseDocument(%q) = %s, want %s", c.in, got, c.want)
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
func TestParseDocumentRejectsInvalidDocuments(t *testing.T) {
	type tc struct {
		name, in string
		field    string // the FieldError's Field ("" for the document)
		msg      string // part of the message
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		_, err := ParseDocument([]byte(c.in))
		if !errors.Is(err, ErrInvalidDocument) {
			t.Fatalf("error = %v, want ErrInvalidDocument", err)
		}
		var fe *FieldError
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
func TestParseDocumentReportsEveryProblem(t *testing.T) {
	_, err := ParseDocument([]byte("phase: sideways\nweight: 300\nextra: 1\n"))
	for _, want := range []string{"phase (line 1)", "weight (line 2)", "extra (line 3)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}
