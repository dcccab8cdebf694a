//go:build integration

package exampleutil_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// Every example program runs against the real clusters and exits cleanly,
// so that the programs the docs point to cannot rot unnoticed.
func TestExamplesRunAgainstTheRealBroker(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		clusterB bool
		want     string // in the output
	}{
		{"quickstart", []string{"-n", "5"}, false, "succeeded=5"},
		{"isolation", []string{"-duration", "12s"}, false, "resizing the slow pool"}, // resizes at 5 s
		{"adaptive", []string{"-duration", "8s"}, false, "pool"},
		{"throttle", []string{"-duration", "6", "-config", filepath.Join(root, "examples", "throttle", "rmqkit.yaml")}, false, ""},
		{"observability", []string{"-duration", "6s", "-metrics-addr", "127.0.0.1:19464"}, false, ""},
		{"broadcast", []string{"-duration", "6s", "-identity", "example_" + strconv.FormatInt(time.Now().UnixNano(), 36)}, false, ""},
		{"migrate", []string{"-duration", "30s"}, true, ""},
		// One broadcast subscription with live config, rmqotel, a group rate and Lag.
		{"composed", []string{"-duration", "8s", "-identity", "example_" + strconv.FormatInt(time.Now().UnixNano(), 36)}, false, "spans="},
		{"keyordered", []string{"-orders", "100"}, false, "out-of-order=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rmqtest.ClusterA(t)
			if tt.clusterB {
				rmqtest.ClusterB(t)
			}
			exe := filepath.Join(bin, tt.name)
			build := exec.Command("go", "build", "-o", exe, "./examples/"+tt.name) // go.work covers the examples module
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, tt.args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tt.name, strings.Join(tt.args, " "), err, tail(out))
			}
			if tt.want != "" && !strings.Contains(string(out), tt.want) {
				t.Fatalf("%s printed no %q:\n%s", tt.name, tt.want, tail(out))
			}
		})
	}
}

func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
