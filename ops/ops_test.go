// Tests of the Prometheus rules and the Grafana dashboard in this folder,
// with Debian's promtool (make tools installs it). That every metric they
// use is one rmqotel exports is checked against a real scrape, in
// examples/observability (TestOpsFilesUseExportedMetrics).
package ops_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// promtool returns the path of promtool. Without it the tests skip, except
// with CI=true, where they fail.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is not installed (make tools installs Debian's prometheus); CI=true requires these tests")
	}
	t.Skip("promtool is not installed; run make tools")
	return ""
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRulesPassPromtool checks the rules and runs their unit tests:
// every alert fires on the series that reproduce it, at the time given,
// with its labels and annotations, and not on the healthy ones.
func TestAlertRulesPassPromtool(t *testing.T) {
	pt := promtool(t)
	out := run(t, "prometheus", pt, "check", "rules", "rmqkit-alerts.yml")
	if !strings.Contains(out, "SUCCESS: 6 rules found") {
		t.Errorf("promtool check rules: %s", out)
	}
	run(t, "prometheus", pt, "test", "rules", "rmqkit-alerts_test.yml")
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID         int    `json:"id"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboardQueriesArePromQL parses every query of the dashboard with
// promtool (as recording rules, the dashboard's variables filled in) and
// checks the panels' structure.
func TestDashboardQueriesArePromQL(t *testing.T) {
	pt := promtool(t)
	data, err := os.ReadFile(filepath.Join("grafana", "rmqkit-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without uid or panels")
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$group", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	ids := map[int]bool{}
	n := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, tg := range p.Targets {
			n++
			b, _ := json.Marshal(vars.Replace(tg.Expr)) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d_%s\n        expr: %s\n", p.ID, tg.RefID, b)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, ".", pt, "check", "rules", path)
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool check of the dashboard's %d queries: %s", n, out)
	}
}
