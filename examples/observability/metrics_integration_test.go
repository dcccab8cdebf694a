//go:build integration

package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// The files of ops/ whose metric and label names must be real.
var opsFiles = []string{
	"ops/prometheus/rmqkit-alerts.yml",
	"ops/prometheus/rmqkit-alerts_test.yml",
	"ops/grafana/rmqkit-dashboard.json",
}

var (
	// rmqotel's names, as the Prometheus exporter writes them.
	nameRE = regexp.MustCompile(`\b(?:rmqkit|messaging)_[a-z0-9_]+\b`)
	// A name followed by a selector or a range is a metric, never a label.
	metricPosRE = regexp.MustCompile(`\b((?:rmqkit|messaging)_[a-z0-9_]+)\s*[{\[]`)
	labelRE     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// TestOpsFilesUseExportedMetrics runs this program against the real broker,
// scrapes its Prometheus endpoint once every instrument has reported, and
// checks that every rmqkit_ and messaging_ name the alert rules, their
// tests and the dashboard use is a metric or a label of that scrape, and
// that names used as metrics are metrics.
func TestOpsFilesUseExportedMetrics(t *testing.T) {
	rmqtest.ClusterA(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "observability")
	build := exec.Command("go", "build", "-o", exe, "./examples/observability")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "-duration", "3m", "-metrics-addr", "127.0.0.1:0")
	cmd.Stdout = io.Discard // spans
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "url="); ok && strings.Contains(sc.Text(), "serving metrics") {
				urls <- strings.Trim(url, `"`)
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(60 * time.Second):
		t.Fatal("the program never said where it serves metrics")
	}

	// Every instrument reports once the group has committed an offset (lag)
	// and a handler has failed (rmqkit_outcome="failure").
	var scrape string
	ok := rmqtest.WaitUntil(120*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		scrape = string(b)
		return strings.Contains(scrape, "\nrmqkit_consumer_lag{") && strings.Contains(scrape, `rmqkit_outcome="failure"`) &&
			strings.Contains(scrape, "\nrmqkit_throttle_wait_duration_seconds_count{")
	})
	if !ok {
		t.Fatalf("the scrape never showed every instrument:\n%s", scrape)
	}
	metrics, labels := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		metrics[name] = true
		for _, m := range labelRE.FindAllStringSubmatch(rest, -1) {
			labels[m[1]] = true
		}
	}

	used := map[string]bool{}
	for _, f := range opsFiles {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, n := range nameRE.FindAllString(text, -1) {
			if !metrics[n] && !labels[n] {
				t.Errorf("%s: %s is neither a metric nor a label rmqotel exports", f, n)
			}
		}
		for _, m := range metricPosRE.FindAllStringSubmatch(text, -1) {
			if !metrics[m[1]] {
				t.Errorf("%s: %s is used as a metric but is not one", f, m[1])
			}
			used[m[1]] = true
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	// The ops files cover each instrument family the issue names.
	for _, want := range []string{
		"rmqkit_consumer_lag", "rmqkit_consumer_dead_lettered_total", "messaging_client_consumed_messages_total",
		"rmqkit_pool_running", "rmqkit_pool_capacity", "rmqkit_throttle_wait_duration_seconds_count",
	} {
		if !used[want] {
			t.Errorf("the ops files do not use %s", want)
		}
	}
	t.Logf("metrics the ops files use: %s", strings.Join(names, " "))
}
