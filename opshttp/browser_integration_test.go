//go:build integration

package opshttp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/opshttp"
	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	os.Exit(m.Run())
}

// ScreenshotPath is where TestBrowser leaves its screenshot (outside the repository).
const screenshotPath = "/tmp/rmqkit-opshttp.png"

// chromium returns Debian's Chromium. It is installed by `make tools`; a
// machine without it skips the test, except in CI, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (make tools installs it); CI=true requires the browser test")
	}
	t.Skip("chromium is not installed; run make tools")
	return ""
}

// TestBrowserShowsStatsAndAppliesAPageChange loads the page served for a
// consumer of the real broker in headless Chromium, checks that the figures
// it shows are the consumer's Stats, then raises the pool size and sets a
// rate with the page's form and checks that the consumer runs more handlers
// at once because of it.
func TestBrowserShowsStatsAndAppliesAPageChange(t *testing.T) {
	exe := chromium(t)
	cl := rmqtest.ClusterA(t)
	topic, group := cl.NewTopic(t, rmqtest.Queues(1)), cl.NewGroup(t)

	// Messages of kind "hold" keep their worker until release is closed;
	// "fail" ones fail and, with no retries, go to the dead-letter queue.
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	c, err := consumer.New(group,
		consumer.WithNameServer(cl.NameServer),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.All, func(ctx context.Context, m *consumer.Message) error {
		switch m.Property("kind") {
		case "hold":
			select {
			case <-release:
			case <-ctx.Done():
			}
		case "fail":
			return errors.New("test: failing on purpose")
		}
		return nil
	}, consumer.WithPoolSize(3), consumer.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		releaseOnce.Do(func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})

	var log logBuf
	h, err := opshttp.New(opshttp.WithConsumer(c),
		opshttp.WithLagInterval(0), // every load reads the lag afresh
		opshttp.WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
		opshttp.WithAuthorizer(func(r *http.Request) (string, error) {
			if who := r.Header.Get("X-Ops-User"); who != "" {
				return who, nil
			}
			return "", errors.New("no X-Ops-User")
		}))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/rmqkit/", http.StripPrefix("/rmqkit", h))
	srv := httptest.NewServer(mux) // loopback, random port
	defer srv.Close()

	p := cl.NewProducer(t)
	var msgs []rmqtest.Msg
	for i := range 10 {
		msgs = append(msgs, rmqtest.Msg{ID: fmt.Sprintf("ok-%d", i)})
	}
	for i := range 2 {
		msgs = append(msgs, rmqtest.Msg{ID: fmt.Sprintf("fail-%d", i), Props: map[string]string{"kind": "fail"}})
	}
	p.Send(topic, msgs...)
	stats := func() consumer.SubscriptionStats { return c.Stats()[0] }
	if !rmqtest.WaitUntil(60*time.Second, func() bool { s := stats(); return s.Succeeded == 10 && s.DeadLettered == 2 }) {
		t.Fatalf("consumption: %+v", stats())
	}
	// Five held messages, after the others on the one queue: three run,
	// two wait for a worker, and the group's lag settles at five.
	for i := range 5 {
		p.Send(topic, rmqtest.Msg{ID: fmt.Sprintf("hold-%d", i), Props: map[string]string{"kind": "hold"}})
	}
	lag := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, _ := c.Lag(ctx)
		return l[topic]
	}
	if !rmqtest.WaitUntil(60*time.Second, func() bool {
		s := stats()
		return s.Pool.Running == 3 && s.Queued == 2 && s.Received == 17 && lag() == 5
	}) {
		t.Fatalf("held messages: %+v, lag %d", stats(), lag())
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1500, 700))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	row := fmt.Sprintf(`section[data-group=%q] tr[data-topic=%q]`, group, topic)
	read := func(stat string) int64 {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row+` [data-stat=`+stat+`]`)))
		if err != nil {
			t.Fatalf("read %s: %v", stat, err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("%s shows %q: %v", stat, s, err)
		}
		return n
	}
	// Every request of the page, the form's POST included, names the
	// operator to the authorizer.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Ops-User": "browser-test"}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/rmqkit/"), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatal(err)
	}
	s := stats()
	for stat, want := range map[string]int64{
		"running": int64(s.Pool.Running), "poolSize": int64(s.Pool.Capacity), "received": int64(s.Received),
		"succeeded": int64(s.Succeeded), "queued": s.Queued, "failed": int64(s.Failed), "deadLettered": int64(s.DeadLettered), "lag": 5,
	} {
		if got := read(stat); got != want {
			t.Errorf("page shows %s %d, Stats say %d", stat, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The change, made on the page: pool size 6 and a rate of 100/s.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(row+` input[name=poolSize]`), "6"),
		chromedp.SendKeys(chromedp.CSS(row+` input[name=rate]`), "100"),
		chromedp.Click(chromedp.CSS(row+` button[type=submit]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The form's POST redirects back to the page, which shows the new size.
	shown := func(stat string) string {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row+` [data-stat=`+stat+`]`)))
		return strings.TrimSpace(s)
	}
	if !rmqtest.WaitUntil(30*time.Second, func() bool { return shown("poolSize") == "6" }) {
		t.Fatalf("the page did not come back with pool size 6: %q", shown("poolSize"))
	}
	// It takes effect: the two held messages that waited get workers.
	if !rmqtest.WaitUntil(30*time.Second, func() bool { return stats().Pool.Running == 5 }) {
		t.Fatalf("after the page change: %+v (settings %+v)", stats(), c.Settings().Subscriptions[0])
	}
	if set := c.Settings().Subscriptions[0]; set.PoolSize != 6 || set.Rate.Rate != 100 {
		t.Errorf("settings after the page change: %+v", set)
	}
	// The page, reloaded, shows the new state.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/rmqkit/"), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatal(err)
	}
	if got := read("poolSize"); got != 6 {
		t.Errorf("page shows pool size %d after the change, want 6", got)
	}
	if got := read("running"); got != 5 {
		t.Errorf("page shows %d running after the change, want 5", got)
	}
	if got := read("queued"); got != 0 {
		t.Errorf("page shows %d queued after the change, want 0", got)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", screenshotPath)
	for _, want := range []string{"who=browser-test", "field=subscriptions." + topic + ".poolSize old=3 new=6"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("change log lacks %q:\n%s", want, log.String())
		}
	}
}
