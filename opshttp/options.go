package opshttp

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/migrate"
	"github.com/rmqkit/rmqkit/throttle"
)

// Consumer is what the handler shows: *consumer.Consumer satisfies it,
// broadcast mode included. The handler also uses these methods when the
// value has them:
//
//	Lag(ctx) (map[string]int64, error)      // the group's lag
//	Mode() consumer.Mode                    // a broadcast mode's BaseGroup() and Identity()
//	SetPoolSize(topic, n) error; SetRate(topic, l) error   // changes of a value that is not a *consumer.Consumer
type Consumer interface {
	Group() string
	Settings() consumer.Settings
	Stats() []consumer.SubscriptionStats
}

// Migration is a topic migration the page shows; *migrate.Subscription
// satisfies it.
type Migration interface {
	Group() string
	Topic() string
	Stats() migrate.Stats
}

// Authorizer decides whether r may change settings: it returns who asks,
// for the log, or an error to refuse (403). It runs for every change; an
// empty who is a refusal too, so that every change names its author.
type Authorizer func(r *http.Request) (who string, err error)

type (
	lagger interface {
		Lag(ctx context.Context) (map[string]int64, error)
	}
	instance interface {
		BaseGroup() string
		Identity() string
	}
	moded interface {
		Mode() consumer.Mode
	}
	tuner interface {
		SetPoolSize(topic string, n int) error
		SetRate(topic string, l throttle.Limit) error
	}
)

// Option configures a Handler in New.
type Option func(*options)

// ConsumerOption configures one consumer of WithConsumer.
type ConsumerOption func(*entry)

type options struct {
	entries    []*entry
	migrations []Migration
	authorize  Authorizer
	logger     *slog.Logger
	refresh    time.Duration
	lagTimeout time.Duration
	lagEvery   time.Duration
	now        func() time.Time
	errs       []string
}

// entry is one consumer shown.
type entry struct {
	c       Consumer
	watcher *config.Watcher
}

// WithConsumer shows c on the page, in the order given. Groups must be
// distinct; nil is an error.
func WithConsumer(c Consumer, opts ...ConsumerOption) Option {
	return func(o *options) {
		if c == nil {
			o.errs = append(o.errs, "WithConsumer: nil consumer")
			return
		}
		e := &entry{c: c}
		for _, opt := range opts {
			if opt != nil {
				opt(e)
			}
		}
		o.entries = append(o.entries, e)
	}
}

// WithWatcher names the config.Watcher that drives the consumer. Changes
// made on the page then go through w.Apply: validated against the
// consumer, logged and counted with the watcher's other documents, and
// overridden by the next change of w's source (see the package
// documentation). Without it, changes go through config.Apply; pass it
// whenever a Watcher drives the consumer, so that the two never apply at
// once. The page also shows w's counters.
func WithWatcher(w *config.Watcher) ConsumerOption { return func(e *entry) { e.watcher = w } }

// WithMigration shows m's phase, drain state and per-cluster lag. nil is
// an error.
func WithMigration(m Migration) Option {
	return func(o *options) {
		if m == nil {
			o.errs = append(o.errs, "WithMigration: nil migration")
			return
		}
		o.migrations = append(o.migrations, m)
	}
}

// WithAuthorizer turns changes on: every POST is first given to a, which
// names who asks or refuses. The default, nil, leaves the page read-only.
func WithAuthorizer(a Authorizer) Option { return func(o *options) { o.authorize = a } }

// WithLogger sets the logger of changes and refusals. The default is
// slog.Default(); nil is ignored.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithRefresh sets how often the page reloads itself. The default is 5
// seconds; 0 turns the reload off; otherwise it must be at least one
// second.
func WithRefresh(d time.Duration) Option { return func(o *options) { o.refresh = d } }

// WithLagTimeout bounds each reading of a consumer's lag from the brokers.
// The default is 2 seconds; it must be positive. A reading that fails or
// times out shows its error instead of figures.
func WithLagTimeout(d time.Duration) Option { return func(o *options) { o.lagTimeout = d } }

// WithLagInterval sets how long a lag reading is reused, so that many open
// pages do not multiply the requests to the brokers. The default is 2
// seconds; 0 reads on every request.
func WithLagInterval(d time.Duration) Option { return func(o *options) { o.lagEvery = d } }
