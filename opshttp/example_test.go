package opshttp_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/opshttp"
)

// A service mounts the page on its admin port. Changes are allowed to
// callers with the operators' token, and go through the consumer's
// configuration watcher: the next edit of the file overrides them.
func Example() {
	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:9876"))
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Subscribe("orders-created", consumer.All, func(ctx context.Context, m *consumer.Message) error { return nil })
	w, err := config.Watch("/etc/orders/rmqkit.yaml", c)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	h, err := opshttp.New(
		opshttp.WithConsumer(c, opshttp.WithWatcher(w)),
		opshttp.WithAuthorizer(func(r *http.Request) (string, error) {
			if r.Header.Get("X-Ops-Token") != "s3cret" { // use your SSO here
				return "", errors.New("no operator token")
			}
			return r.Header.Get("X-Ops-User"), nil
		}),
		opshttp.WithRefresh(5*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	admin := http.NewServeMux()
	admin.Handle("/rmqkit/", http.StripPrefix("/rmqkit", h))
	log.Fatal(http.ListenAndServe("127.0.0.1:9090", admin))
}
