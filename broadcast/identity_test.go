package broadcast

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func fixedHost(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

// testConfig returns a config with fakes for the environment and host name
// and a fresh state directory.
func testConfig(t *testing.T, vars map[string]string, opts ...Option) *config {
	t.Helper()
	cfg := defaultConfig()
	cfg.stateDir = t.TempDir()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.getenv = env(vars)
	cfg.hostname = fixedHost("build-host.example.com")
	cfg.setDefaults()
	return &cfg
}

func TestIdentityPrecedence(t *testing.T) {
	type tc struct {
		name       string
		opts       []Option
		env        map[string]string
		stateFile  string // content of an existing state file; "" for none
		wantID     string // raw identity; "" means "read from the state file"
		wantSource string
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		cfg := testConfig(t, c.env, c.opts...)
		if c.stateFile != "" {
			if err := os.WriteFile(filepath.Join(cfg.stateDir, identityFile), []byte(c.stateFile), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		id, source, err := resolveIdentity(cfg)
		if err != nil {
			t.Fatalf("resolveIdentity: %v", err)
		}
		if source != c.wantSource {
			t.Errorf("source = %q, want %q", source, c.wantSource)
		}
		want := c.wantID
		if want == "" {
			b, err := os.ReadFile(filepath.Join(cfg.stateDir, identityFile))
			if err != nil {
				t.Fatalf("state file: %v", err)
			}
			want = strings.TrimSpace(string(b))
		}
		if id != want {
			t.Errorf("identity = %q, want %q", id, want)
		}
	}
	all := map[string]string{"POD_NAME": "web-0", "HOSTNAME": "host-a"}
	for _, c := range []tc{
		{name: "option beats environment and state file", opts: []Option{WithIdentity("explicit")}, env: all, stateFile: "persisted\n", wantID: "explicit", wantSource: sourceOption},
		{name: "POD_NAME beats HOSTNAME", env: all, stateFile: "persisted\n", wantID: "web-0", wantSource: sourcePodName},
		{name: "HOSTNAME when no POD_NAME", env: map[string]string{"HOSTNAME": "host-a"}, stateFile: "persisted\n", wantID: "host-a", wantSource: sourceHostname},
		{name: "blank variables are skipped", env: map[string]string{"POD_NAME": "  ", "HOSTNAME": "host-a"}, wantID: "host-a", wantSource: sourceHostname},
		{name: "existing state file when no environment", env: nil, stateFile: "persisted\n", wantID: "persisted", wantSource: sourceStateFile},
		{name: "new state file when nothing else", env: nil, wantSource: sourceStateFile},
	} {
		t.Run(c.name, func(t *testing.T) { run(t, c) })
	}
}

func TestEmptyExplicitIdentityIsAnError(t *testing.T) {
	cfg := testConfig(t, map[string]string{"POD_NAME": "web-0"}, WithIdentity(" "))
	_, _, err := resolveIdentity(cfg)
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("err = %v, want ErrInvalidOption", err)
	}
}

func TestStateFilePersistsAcrossCalls(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet", "there")
	first, err := stateIdentity(dir, fixedHost("laptop.local"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, "laptop_local_") || len(first) != len("laptop_local_")+8 {
		t.Errorf("new identity = %q, want laptop_local_ and 8 hex digits", first)
	}
	for range 3 {
		again, err := stateIdentity(dir, fixedHost("other-host"))
		if err != nil {
			t.Fatal(err)
		}
		if again != first {
			t.Fatalf("second call = %q, first = %q: the identity must persist", again, first)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != identityFile {
		t.Errorf("state directory holds %v, want only %q (no temporary files left)", entries, identityFile)
	}
	info, _ := os.Stat(dir)
	if info.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode = %v, want 0700", info.Mode().Perm())
	}
}

func TestConcurrentFirstStartsAgreeOnOneIdentity(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = stateIdentity(dir, fixedHost("h"))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("calls disagree: %q and %q", ids[0], ids[i])
		}
	}
}

func TestEmptyStateFileIsReported(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, identityFile), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, nil, WithStateDir(dir))
	_, _, err := resolveIdentity(cfg)
	if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("err = %v, want ErrNoIdentity saying the file is empty", err)
	}
}

func TestUnwritableStateDirIsReported(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, nil, WithStateDir(filepath.Join(file, "sub")))
	if _, _, err := resolveIdentity(cfg); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("err = %v, want ErrNoIdentity", err)
	}
}

func TestIdentityIsSanitised(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"web-0", "web_0"},
		{"orders-7d9f8-x2x4k", "orders_7d9f8_x2x4k"},
		{"node1.cluster.local", "node1_cluster_local"},
		{"a b%c|d", "a_b_c_d"},
		{"Ünï", "_n_"},
		{"ok_ID_09", "ok_ID_09"},
	} {
		id, group, err := derive("base", c.in, 0)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if id != c.want || group != "base-"+c.want {
			t.Errorf("%q: identity %q group %q, want %q and base-%s", c.in, id, group, c.want, c.want)
		}
	}
}

func TestLongIdentitiesAreCutButStayDistinct(t *testing.T) {
	a := strings.Repeat("x", 100) + "-a"
	b := strings.Repeat("x", 100) + "-b"
	ia, ga, err := derive("base", a, 0)
	if err != nil {
		t.Fatal(err)
	}
	ib, _, _ := derive("base", b, 0)
	if len(ia) != maxIdentityLen || ia == ib {
		t.Fatalf("identities %q and %q: want %d characters each and distinct", ia, ib, maxIdentityLen)
	}
	if !identityRE.MatchString(ia) || strings.Count(ga, "-") != 1 {
		t.Fatalf("group %q: the identity must contain no '-'", ga)
	}
	// A long base group leaves less room, never more than the broker's limit.
	base := strings.Repeat("b", 230)
	id, g, err := derive(base, a, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(g)+3 > maxGroupLen || len(id) != maxGroupLen-3-231 {
		t.Fatalf("group of %d characters (+3 namespace), identity %d", len(g), len(id))
	}
}

func TestDerivedGroupNaming(t *testing.T) {
	for _, c := range []struct {
		base, identity, want string
		invalid              bool
	}{
		{base: "orders", identity: "web-0", want: "orders-web_0"},
		{base: "orders-eu", identity: "pod1", want: "orders-eu-pod1"},
		{base: "CID_x|y", identity: "i", want: "CID_x|y-i"},
		{base: "", identity: "i", invalid: true},
		{base: "bad group", identity: "i", invalid: true},
		{base: "orders", identity: "  ", invalid: true},
		{base: strings.Repeat("g", 240), identity: "i", invalid: true},
	} {
		got, err := GroupName(c.base, c.identity)
		if c.invalid {
			if !errors.Is(err, ErrInvalidOption) {
				t.Errorf("GroupName(%q, %q) = %q, %v; want ErrInvalidOption", c.base, c.identity, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("GroupName(%q, %q) = %q, %v; want %q", c.base, c.identity, got, err, c.want)
		}
	}
}
