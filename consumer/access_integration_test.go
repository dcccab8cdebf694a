//go:build integration

package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// On a broker with authentication, correct credentials consume, wrong ones
// fail at Start naming the cause, two consumers with different credentials
// in one process do not share them, and the secret never shows.
func TestCredentialsAreCheckedAtStartAndNeverLeak(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterAuth(t)
	topic := cl.NewTopic(t)
	ids := cl.NewProducer(t).Produce(topic, "auth", 200)
	const wrongSecret = "WRONG-SECRET-do-not-log-0042"
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Both in one process: the good one must not lend its credentials.
	good := newConsumer(t, cl, cl.NewGroup(t), consumer.WithLogger(logger),
		consumer.WithCredentials(cl.AccessKey, cl.SecretKey))
	bad := newConsumer(t, cl, cl.NewGroup(t), consumer.WithLogger(logger),
		consumer.WithCredentials(cl.AccessKey, wrongSecret))
	got := rmqtest.NewCollector()
	if err := good.Subscribe(topic, consumer.All, collect(got)); err != nil {
		t.Fatal(err)
	}
	if err := bad.Subscribe(topic, consumer.All, collect(got)); err != nil {
		t.Fatal(err)
	}
	start(t, good)
	err := bad.Start(context.Background())
	if !errors.Is(err, consumer.ErrAccessDenied) {
		t.Fatalf("Start with a wrong secret = %v, want ErrAccessDenied", err)
	}
	t.Logf("wrong secret: %v", err)
	for _, want := range []string{cl.AccessKey, "broker-auth"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	got.RequireAll(t, ids, 60*time.Second)

	noCreds := newConsumer(t, cl, cl.NewGroup(t), consumer.WithLogger(logger))
	none := rmqtest.NewCollector()
	if err := noCreds.Subscribe(topic, consumer.All, collect(none)); err != nil {
		t.Fatal(err)
	}
	// Without credentials there is nothing to check at Start; the broker
	// refuses the client's pulls, so nothing is received.
	start(t, noCreds)
	time.Sleep(3 * time.Second)
	if n := none.Total(); n != 0 {
		t.Fatalf("a consumer without credentials received %d messages", n)
	}

	for _, secret := range []string{cl.SecretKey, wrongSecret} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Fatalf("secret %q appears in an error or the logs", secret)
		}
	}
}
