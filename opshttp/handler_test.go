package opshttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/filewatch/filewatchtest"
	"github.com/rmqkit/rmqkit/migrate"
	"github.com/rmqkit/rmqkit/opshttp"
	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/throttle"
)

// newConsumer returns an unstarted consumer of group subscribing to the
// topics with the given pool sizes. Its name server refuses connections,
// so that nothing waits on a broker.
func newConsumer(t *testing.T, group string, pools map[string]int) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(group, consumer.WithNameServer("127.0.0.1:1"), consumer.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	for topic, n := range pools {
		err := c.Subscribe(topic, consumer.All, func(context.Context, *consumer.Message) error { return nil }, consumer.WithPoolSize(n))
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func poolSize(t *testing.T, c opshttp.Consumer, topic string) int {
	t.Helper()
	for _, s := range c.Settings().Subscriptions {
		if s.Topic == topic {
			return s.PoolSize
		}
	}
	t.Fatalf("no subscription %s", topic)
	return 0
}

// fake is a Consumer other than *consumer.Consumer, with fixed figures,
// lag and a broadcast identity of its own.
type fake struct {
	mu    sync.Mutex
	set   consumer.Settings
	stats []consumer.SubscriptionStats
	lag   map[string]int64
	lags  int // Lag calls
}

func (f *fake) Group() string                       { return f.set.Group }
func (f *fake) Settings() consumer.Settings         { f.mu.Lock(); defer f.mu.Unlock(); return f.set }
func (f *fake) Stats() []consumer.SubscriptionStats { return f.stats }
func (f *fake) BaseGroup() string                   { return "inval" }
func (f *fake) Identity() string                    { return "pod_3" }
func (f *fake) Lag(context.Context) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lags++
	return f.lag, nil
}
func (f *fake) SetPoolSize(topic string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < 1 {
		return consumer.ErrInvalidOption
	}
	f.set.Subscriptions[0].PoolSize = n
	return nil
}
func (f *fake) SetRate(topic string, l throttle.Limit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set.Subscriptions[0].Rate = l
	return nil
}

func newFake() *fake {
	return &fake{
		set: consumer.Settings{Group: "inval-pod_3", GroupLimit: throttle.Limit{Rate: 500, Burst: 50},
			Subscriptions: []consumer.SubscriptionSettings{{Topic: "config-changes", PoolSize: 8, Rate: throttle.Limit{Rate: 100, Burst: 10}, BatchSize: 1, MaxRetries: 5}}},
		stats: []consumer.SubscriptionStats{{
			Topic:    "config-changes",
			Pool:     pool.Stats{Name: "config-changes", Capacity: 8, Running: 3, Waiting: 2, Completed: 41},
			Throttle: throttle.Stats{Limit: throttle.Limit{Rate: 100, Burst: 10}, Waits: 7, WaitTime: 1500 * time.Millisecond, Waiting: 1},
			Received: 45, Succeeded: 41, Failed: 4, DeadLettered: 1, Queued: 2,
		}},
		lag: map[string]int64{"config-changes": 12, "%RETRY%inval-pod_3": 2},
	}
}

type fakeMigration struct{}

func (fakeMigration) Group() string { return "orders" }
func (fakeMigration) Topic() string { return "orders-created" }
func (fakeMigration) Stats() migrate.Stats {
	return migrate.Stats{Phase: migrate.Dual, Target: migrate.NewOnly,
		Old: migrate.SideStats{Reading: true, Consumed: 10, Lag: 5, LagErr: errors.New("broker down")},
		New: migrate.SideStats{Reading: true, Consumed: 20, Drained: true}}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func post(t *testing.T, h http.Handler, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/set", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func allow(who string) opshttp.Authorizer {
	return func(*http.Request) (string, error) { return who, nil }
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestStatusDocumentHoldsSettingsStatsLagIdentityAndMigration(t *testing.T) {
	f := newFake()
	h, err := opshttp.New(opshttp.WithConsumer(f), opshttp.WithMigration(fakeMigration{}))
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h, "/status.json")
	if code != http.StatusOK {
		t.Fatalf("status.json: %d %s", code, body)
	}
	var st opshttp.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.ChangesEnabled || len(st.Consumers) != 1 || len(st.Migrations) != 1 {
		t.Fatalf("document: %+v", st)
	}
	c := st.Consumers[0]
	if c.Group != "inval-pod_3" || c.Broadcast == nil || c.Broadcast.Identity != "pod_3" || c.Broadcast.BaseGroup != "inval" {
		t.Errorf("identity: %+v %+v", c.Group, c.Broadcast)
	}
	if c.Settings.GroupLimit.Rate != 500 || c.Lag["%RETRY%inval-pod_3"] != 2 {
		t.Errorf("group: %+v lag %v", c.Settings, c.Lag)
	}
	s := c.Subscriptions[0]
	if s.Settings.PoolSize != 8 || s.Stats.Pool.Running != 3 || s.Stats.Succeeded != 41 || s.Stats.DeadLettered != 1 ||
		s.Stats.Throttle.WaitTime != 1500*time.Millisecond || s.Lag == nil || *s.Lag != 12 {
		t.Errorf("subscription: %+v lag %v", s, s.Lag)
	}
	m := st.Migrations[0]
	if m.Phase != "dual" || m.Target != "new-only" || m.Old.LagError != "broker down" || !m.New.Drained || m.Old.Lag != 5 {
		t.Errorf("migration: %+v", m)
	}
}

func TestPageShowsTheStatsAndNoFormsWhenReadOnly(t *testing.T) {
	h, err := opshttp.New(opshttp.WithConsumer(newFake()), opshttp.WithMigration(fakeMigration{}))
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("page: %d", code)
	}
	for _, want := range []string{
		`<span data-stat="running">3</span> / <span data-stat="poolSize">8</span>`,
		`<td data-stat="succeeded">41</td>`, `<td data-stat="queued">2</td>`, `<td data-stat="failed">4</td>`, `<td data-stat="deadLettered">1</td>`,
		`<td data-stat="lag">12</td>`, `<td data-stat="throttleWait">1.5s</td>`, `<td data-stat="rate">100/s burst 10</td>`,
		`lag %RETRY%inval-pod_3 2`, `data-field="identity">pod_3<`, "dual &rarr; new-only", "broker down",
		"read-only",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<form") {
		t.Error("a read-only page has a form")
	}
}

func TestLagIsReadOncePerInterval(t *testing.T) {
	f := newFake()
	h, err := opshttp.New(opshttp.WithConsumer(f), opshttp.WithLagInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		get(t, h, "/status.json")
	}
	if f.lags != 1 {
		t.Errorf("Lag called %d times for 3 requests within the interval, want 1", f.lags)
	}
}

func TestChangesAreRefusedWithoutAuthorizer(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4})
	h, err := opshttp.New(opshttp.WithConsumer(c))
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, h, url.Values{"group": {"g"}, "topic": {"t"}, "poolSize": {"9"}}, nil)
	if rec.Code != http.StatusForbidden || poolSize(t, c, "t") != 4 {
		t.Fatalf("without authorizer: %d, pool %d; want 403 and 4", rec.Code, poolSize(t, c, "t"))
	}
}

func TestChangesAreRefusedWhenTheAuthorizerSaysNo(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4})
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithLogger(slog.New(slog.DiscardHandler)),
		opshttp.WithAuthorizer(func(*http.Request) (string, error) { return "", errors.New("no token") }))
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, h, url.Values{"group": {"g"}, "topic": {"t"}, "poolSize": {"9"}}, nil)
	if rec.Code != http.StatusForbidden || poolSize(t, c, "t") != 4 {
		t.Fatalf("refused: %d, pool %d; want 403 and 4", rec.Code, poolSize(t, c, "t"))
	}
}

func TestChangesAreRefusedWhenTheAuthorizerNamesNoOne(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4})
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithLogger(slog.New(slog.DiscardHandler)), opshttp.WithAuthorizer(allow("")))
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, h, url.Values{"group": {"g"}, "topic": {"t"}, "poolSize": {"9"}}, nil)
	if rec.Code != http.StatusForbidden || poolSize(t, c, "t") != 4 {
		t.Fatalf("anonymous: %d, pool %d; want 403 and 4", rec.Code, poolSize(t, c, "t"))
	}
}

func TestCrossSitePostsAreRefused(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4})
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithAuthorizer(allow("alice")))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"group": {"g"}, "topic": {"t"}, "poolSize": {"9"}}
	for _, hdr := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}} {
		if rec := post(t, h, form, hdr); rec.Code != http.StatusForbidden || poolSize(t, c, "t") != 4 {
			t.Errorf("%v: %d, pool %d; want 403 and 4", hdr, rec.Code, poolSize(t, c, "t"))
		}
	}
	if rec := post(t, h, form, map[string]string{"Origin": "http://example.com"}); rec.Code != http.StatusSeeOther || poolSize(t, c, "t") != 9 {
		t.Errorf("same origin: %d, pool %d; want 303 and 9", rec.Code, poolSize(t, c, "t"))
	}
}

func TestChangeIsAppliedAndLoggedWithWho(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4, "u": 2})
	var log logBuf
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithAuthorizer(allow("alice")),
		opshttp.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, h, url.Values{"group": {"g"}, "topic": {"t"}, "poolSize": {"9"}, "rate": {"50"}, "burst": {"5"}}, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "./" {
		t.Fatalf("change: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	set := c.Settings().Subscriptions[0]
	if set.PoolSize != 9 || set.Rate != (throttle.Limit{Rate: 50, Burst: 5}) || poolSize(t, c, "u") != 2 {
		t.Errorf("settings after the change: %+v, u %d", set, poolSize(t, c, "u"))
	}
	for _, want := range []string{"who=alice", "field=subscriptions.t.poolSize old=4 new=9", `field=subscriptions.t.rate old=unlimited new="50/s burst 5"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	// The page, with changes on, has a form per subscription.
	if _, body := get(t, h, "/"); strings.Count(body, "<form") != 2 {
		t.Errorf("page with changes on has %d forms, want 2", strings.Count(body, "<form"))
	}
}

func TestChangeGoesThroughConfigValidation(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4})
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithAuthorizer(allow("alice")), opshttp.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		form url.Values
		code int
		want string
	}{
		{"pool size zero", url.Values{"topic": {"t"}, "poolSize": {"0"}}, 400, "subscriptions.t.poolSize"},
		{"pool size too large", url.Values{"topic": {"t"}, "poolSize": {"100000"}}, 400, "subscriptions.t.poolSize"},
		{"negative rate", url.Values{"topic": {"t"}, "rate": {"-1"}}, 400, "subscriptions.t.rate"},
		{"burst without rate", url.Values{"topic": {"t"}, "burst": {"3"}}, 400, "subscriptions.t.burst"},
		{"unknown topic", url.Values{"topic": {"nope"}, "poolSize": {"3"}}, 400, "nope"},
		{"unknown group", url.Values{"group": {"other"}, "topic": {"t"}, "poolSize": {"3"}}, 404, "unknown group"},
		{"not a number", url.Values{"topic": {"t"}, "poolSize": {"many"}}, 400, "not an integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.form.Get("group") == "" {
				tc.form.Set("group", "g")
			}
			rec := post(t, h, tc.form, map[string]string{"Accept": "application/json"})
			var res struct{ Error string }
			_ = json.Unmarshal(rec.Body.Bytes(), &res)
			if rec.Code != tc.code || !strings.Contains(res.Error, tc.want) {
				t.Errorf("%d %q; want %d and an error naming %q", rec.Code, res.Error, tc.code, tc.want)
			}
			if set := c.Settings().Subscriptions[0]; set.PoolSize != 4 || !set.Rate.Unlimited() {
				t.Errorf("a rejected change changed the settings: %+v", set)
			}
		})
	}
}

func TestChangeOfAnotherConsumerTypeUsesItsSetters(t *testing.T) {
	f := newFake()
	h, err := opshttp.New(opshttp.WithConsumer(f), opshttp.WithAuthorizer(allow("bob")), opshttp.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	n, r := 12, 0.0
	if _, err := h.Apply("bob", opshttp.Change{Group: "inval-pod_3", Topic: "config-changes", PoolSize: &n, Rate: &r}); err != nil {
		t.Fatal(err)
	}
	if s := f.Settings().Subscriptions[0]; s.PoolSize != 12 || !s.Rate.Unlimited() {
		t.Errorf("after the change: %+v", s)
	}
	bad := 0
	if _, err := h.Apply("bob", opshttp.Change{Group: "inval-pod_3", Topic: "config-changes", PoolSize: &bad}); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("pool size 0: %v, want config.ErrInvalid", err)
	}
	if _, err := h.Apply("bob", opshttp.Change{Group: "inval-pod_3", Topic: "other", PoolSize: &n}); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("unknown topic: %v, want config.ErrInvalid", err)
	}
}

// The latest change wins: a page change holds until the file changes; the
// file then re-applies its whole document, and the keys it manages override
// the page, while keys it leaves out keep the page's values.
func TestLatestChangeWinsAndTheNextFileChangeReappliesTheFile(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4, "u": 2})
	path := filepath.Join(t.TempDir(), "rmqkit.yaml")
	filewatchtest.Write(t, path, "group: g\nsubscriptions:\n  t: {poolSize: 5}\n")
	w, err := config.Watch(path, c, config.WithLogger(slog.New(slog.DiscardHandler)), config.WithDebounce(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	h, err := opshttp.New(opshttp.WithConsumer(c, opshttp.WithWatcher(w)), opshttp.WithAuthorizer(allow("alice")), opshttp.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	change := func(topic, n string) {
		t.Helper()
		if rec := post(t, h, url.Values{"group": {"g"}, "topic": {topic}, "poolSize": {n}}, nil); rec.Code != http.StatusSeeOther {
			t.Fatalf("change %s=%s: %d %s", topic, n, rec.Code, rec.Body)
		}
	}
	if poolSize(t, c, "t") != 5 {
		t.Fatalf("file not applied: %d", poolSize(t, c, "t"))
	}
	change("t", "9")
	change("u", "7")
	if poolSize(t, c, "t") != 9 || poolSize(t, c, "u") != 7 {
		t.Fatalf("page changes not in force: t %d u %d", poolSize(t, c, "t"), poolSize(t, c, "u"))
	}
	applied := w.Stats().Applied
	// The file changes, in a key other than t's pool size: the whole
	// document is applied again, so t goes back to 5; u, which the file
	// does not manage, keeps the page's 7.
	filewatchtest.Write(t, path, "group: g\nsubscriptions:\n  t: {poolSize: 5, rate: 100}\n")
	filewatchtest.Eventually(t, "the file re-applied", func() bool { return w.Stats().Applied > applied+0 && poolSize(t, c, "t") == 5 })
	if poolSize(t, c, "u") != 7 {
		t.Errorf("u, not managed by the file, is %d after the file changed; want the page's 7", poolSize(t, c, "u"))
	}
	// And the page again wins over the file until its next change.
	change("t", "3")
	if poolSize(t, c, "t") != 3 {
		t.Errorf("page change after the file: %d, want 3", poolSize(t, c, "t"))
	}
	// A rejected file leaves the page's value in force.
	filewatchtest.Write(t, path, "group: g\nsubscriptions:\n  t: {poolSize: 0}\n")
	filewatchtest.Eventually(t, "the bad file rejected", func() bool { return w.Stats().Rejected == 1 })
	if poolSize(t, c, "t") != 3 {
		t.Errorf("after a rejected file: %d, want the page's 3", poolSize(t, c, "t"))
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 1})
	for name, opts := range map[string][]opshttp.Option{
		"nil consumer":      {opshttp.WithConsumer(nil)},
		"nil migration":     {opshttp.WithMigration(nil)},
		"group twice":       {opshttp.WithConsumer(c), opshttp.WithConsumer(c)},
		"refresh too short": {opshttp.WithRefresh(time.Millisecond)},
		"lag timeout zero":  {opshttp.WithLagTimeout(0)},
		"negative interval": {opshttp.WithLagInterval(-time.Second)},
	} {
		if _, err := opshttp.New(opts...); !errors.Is(err, opshttp.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}

func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	h, err := opshttp.New(opshttp.WithConsumer(newFake()), opshttp.WithAuthorizer(allow("a")))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, bad := range []string{"http://", "https://", "<link", "src="} {
		if bytes.Contains(body, []byte(bad)) {
			t.Errorf("page contains %q", bad)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestMountedUnderAPrefixTheRedirectStaysThere(t *testing.T) {
	c := newConsumer(t, "g", map[string]int{"t": 4})
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithAuthorizer(allow("alice")), opshttp.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/rmqkit/", http.StripPrefix("/rmqkit", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(srv.URL+"/rmqkit/set", url.Values{"group": {"g"}, "topic": {"t"}, "poolSize": {"6"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || loc.Path != "/rmqkit/" {
		t.Errorf("redirect %d to %v (%v), want 303 to /rmqkit/", resp.StatusCode, loc, err)
	}
	if poolSize(t, c, "t") != 6 {
		t.Errorf("pool %d, want 6", poolSize(t, c, "t"))
	}
}

// A consumer in broadcast mode shows its instance, and a change names the
// base group, as its configuration file does.
func TestBroadcastModeShowsTheInstanceAndTakesChanges(t *testing.T) {
	c, err := consumer.New("inval", consumer.WithNameServer("127.0.0.1:1"), consumer.WithLogger(slog.New(slog.DiscardHandler)),
		broadcast.Mode(broadcast.WithIdentity("pod-7"), broadcast.WithStateDir(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.Subscribe("config-changes", consumer.All, func(context.Context, *consumer.Message) error { return nil }, consumer.WithPoolSize(2)); err != nil {
		t.Fatal(err)
	}
	h, err := opshttp.New(opshttp.WithConsumer(c), opshttp.WithAuthorizer(allow("carol")), opshttp.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	st := h.Status(context.Background())
	if b := st.Consumers[0].Broadcast; b == nil || b.BaseGroup != "inval" || b.Identity != "pod_7" || st.Consumers[0].Group != "inval-pod_7" {
		t.Fatalf("broadcast instance: %+v in group %s", b, st.Consumers[0].Group)
	}
	rec := post(t, h, url.Values{"group": {"inval-pod_7"}, "topic": {"config-changes"}, "poolSize": {"5"}}, map[string]string{"Accept": "application/json"})
	if rec.Code != http.StatusOK || poolSize(t, c, "config-changes") != 5 {
		t.Fatalf("change: %d %s, pool %d", rec.Code, rec.Body, poolSize(t, c, "config-changes"))
	}
}
