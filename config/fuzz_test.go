package config_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/throttle"
)

// FuzzParse feeds arbitrary bytes to the parser, the validator and Apply:
// none may panic, an invalid document returns an error wrapping ErrInvalid
// and no document, and a document Parse accepts passes Validate. The seed
// corpus is testdata/fuzz/FuzzParse; plain go test runs it.
func FuzzParse(f *testing.F) {
	process, _ := throttle.New(throttle.Limit{})
	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:1"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)), consumer.WithProcessLimiter(process))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Stop(context.Background()) })
	for _, topic := range []string{"orders-created", "t", "a"} {
		if err := c.Subscribe(topic, consumer.All, noop, consumer.WithPoolSize(1)); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := config.Parse(data)
		if err != nil {
			if doc != nil {
				t.Fatal("Parse returned a document and an error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Parse error %q does not wrap ErrInvalid", err)
			}
			return
		}
		if err := doc.Validate(); err != nil {
			t.Fatalf("Parse accepted a document that fails Validate: %v", err)
		}
		if _, err := config.Apply(c, doc); err != nil && !errors.Is(err, config.ErrInvalid) {
			t.Fatalf("Apply error %q does not wrap ErrInvalid", err)
		}
	})
}
