package yamlstrict_test

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rmqkit/rmqkit/internal/yamlstrict"
)

func TestRoot(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		max     int
		want    yaml.Kind // of the root, when there is no error
		wantErr string    // part of the message; "": no error
	}{
		{name: "a mapping", data: "a: 1\nb: 2\n", want: yaml.MappingNode},
		{name: "a scalar is returned for the caller to refuse", data: "42\n", want: yaml.ScalarNode},
		{name: "an unknown anchor", data: "*x\n", wantErr: "unknown anchor"},
		{name: "nothing", data: "", wantErr: "empty document"},
		{name: "only a comment", data: "# nothing\n", wantErr: "empty document"},
		{name: "two documents", data: "a: 1\n---\nb: 2\n", wantErr: "more than one YAML document"},
		{name: "a syntax error names its line", data: "a: 1\nb: c: d\n", wantErr: "line 2"},
		{name: "a document larger than the limit", data: "a: 1\n", max: 3, wantErr: "document is 5 bytes, more than 3"},
		{name: "a document at the limit", data: "a: 1\n", max: 5, want: yaml.MappingNode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 1 << 10
			}
			root, err := yamlstrict.Root([]byte(tc.data), max)
			checkErr(t, err, tc.wantErr)
			if err == nil && root.Kind != tc.want {
				t.Fatalf("root kind %v, want %v", root.Kind, tc.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	type doc struct {
		Name  string `yaml:"name"`
		Count int    `yaml:"count"`
	}
	tests := []struct {
		name    string
		data    string
		want    doc
		wantErr string
	}{
		{name: "known fields", data: "name: a\ncount: 2\n", want: doc{Name: "a", Count: 2}},
		{name: "an unknown key names its line", data: "name: a\ncuont: 2\n", wantErr: "line 2: field cuont not found"},
		{name: "a wrong type names its line", data: "count: many\n", wantErr: "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got doc
			err := yamlstrict.Decode([]byte(tc.data), &got)
			checkErr(t, err, tc.wantErr)
			if err == nil && got != tc.want {
				t.Fatalf("decoded %+v, want %+v", got, tc.want)
			}
		})
	}
}

// checkErr checks that err is nil when want is empty, and otherwise an
// *Error whose message, without the "yaml: " prefix, contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	}
	var ye *yamlstrict.Error
	if !errors.As(err, &ye) {
		t.Fatalf("error %v (%T), want a *yamlstrict.Error", err, err)
	}
	if !strings.Contains(ye.Msg, want) || strings.HasPrefix(ye.Msg, "yaml: ") {
		t.Fatalf("message %q, want it to contain %q without the yaml: prefix", ye.Msg, want)
	}
}
