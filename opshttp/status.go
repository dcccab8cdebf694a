package opshttp

import (
	"context"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/migrate"
)

// Status is the status document served at /status.json. Settings and
// stats are the consumer package's own structs as encoding/json writes them
// (field names as in Go, durations in nanoseconds), so that every field
// they gain shows up here too.
type Status struct {
	Time time.Time `json:"time"`
	// ChangesEnabled says the handler accepts changes (WithAuthorizer).
	ChangesEnabled bool             `json:"changesEnabled"`
	Consumers      []ConsumerStatus `json:"consumers"`
	// Migrations holds one entry per WithMigration, in the order given.
	Migrations []MigrationStatus `json:"migrations,omitempty"`
}

// ConsumerStatus is one consumer: its group settings and its
// subscriptions.
type ConsumerStatus struct {
	Group string `json:"group"`
	// Broadcast is the instance of a consumer in broadcast mode, nil for
	// others.
	Broadcast *BroadcastStatus `json:"broadcast,omitempty"`
	// Settings holds the group limits (GroupLimit, GroupQuota, Instances,
	// InstanceLimit); its Subscriptions are moved into Subscriptions.
	Settings consumer.Settings `json:"settings"`
	// Lag is the group's lag by topic, retry topic included (see
	// consumer.Consumer.Lag); nil when the consumer cannot report lag.
	Lag map[string]int64 `json:"lag,omitempty"`
	// LagError is why (some) lag figures are missing.
	LagError string `json:"lagError,omitempty"`
	// Config is the counters of the consumer's config.Watcher (WithWatcher).
	Config        *config.Stats        `json:"config,omitempty"`
	Subscriptions []SubscriptionStatus `json:"subscriptions"`
}

// BroadcastStatus identifies the instance of a consumer in broadcast mode.
type BroadcastStatus struct {
	BaseGroup string `json:"baseGroup"`
	Identity  string `json:"identity"`
}

// SubscriptionStatus is one subscription's settings and counters.
type SubscriptionStatus struct {
	Topic    string                        `json:"topic"`
	Settings consumer.SubscriptionSettings `json:"settings"`
	Stats    consumer.SubscriptionStats    `json:"stats"`
	// Lag is the topic's entry of ConsumerStatus.Lag, nil when unknown.
	Lag *int64 `json:"lag,omitempty"`
}

// MigrationStatus is one topic migration (package migrate).
type MigrationStatus struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	// Phase is the current phase and Target the one a switch in progress
	// goes to ("old-only", "dual", "new-only").
	Phase  string     `json:"phase"`
	Target string     `json:"target"`
	Old    SideStatus `json:"old"`
	New    SideStatus `json:"new"`
}

// SideStatus is one cluster's side of a migration (migrate.SideStats).
type SideStatus struct {
	Reading        bool      `json:"reading"`
	Consumed       uint64    `json:"consumed"`
	Failed         uint64    `json:"failed"`
	PendingRetries int       `json:"pendingRetries"`
	Lag            int64     `json:"lag"`
	RetryLag       int64     `json:"retryLag"`
	LagAt          time.Time `json:"lagAt"`
	LagError       string    `json:"lagError,omitempty"`
	QuietSince     time.Time `json:"quietSince"`
	Drained        bool      `json:"drained"`
}

// Status builds the status document now. Lag readings are reused for
// WithLagInterval and bounded by WithLagTimeout and ctx.
func (h *Handler) Status(ctx context.Context) Status {
	st := Status{Time: h.o.now(), ChangesEnabled: h.o.authorize != nil}
	for _, e := range h.o.entries {
		st.Consumers = append(st.Consumers, h.consumerStatus(ctx, e))
	}
	for _, m := range h.o.migrations {
		s := m.Stats()
		st.Migrations = append(st.Migrations, MigrationStatus{
			Group: m.Group(), Topic: m.Topic(),
			Phase: s.Phase.String(), Target: s.Target.String(),
			Old: side(s.Old), New: side(s.New),
		})
	}
	return st
}

func (h *Handler) consumerStatus(ctx context.Context, e *entry) ConsumerStatus {
	set := e.c.Settings()
	cs := ConsumerStatus{Group: e.c.Group(), Settings: set}
	cs.Settings.Subscriptions = nil
	if b, ok := instanceOf(e.c); ok {
		cs.Broadcast = &BroadcastStatus{BaseGroup: b.BaseGroup(), Identity: b.Identity()}
	}
	if e.watcher != nil {
		s := e.watcher.Stats()
		cs.Config = &s
	}
	if l, ok := e.c.(lagger); ok {
		cs.Lag, cs.LagError = h.lag(ctx, e, l)
	}
	stats := make(map[string]consumer.SubscriptionStats)
	for _, s := range e.c.Stats() {
		stats[s.Topic] = s
	}
	for _, s := range set.Subscriptions {
		ss := SubscriptionStatus{Topic: s.Topic, Settings: s, Stats: stats[s.Topic]}
		if n, ok := cs.Lag[s.Topic]; ok {
			ss.Lag = &n
		}
		cs.Subscriptions = append(cs.Subscriptions, ss)
	}
	return cs
}

// instanceOf finds the broadcast identity of c: its mode's (broadcast.Mode
// attaches a *broadcast.Instance), or c's own.
func instanceOf(c Consumer) (instance, bool) {
	if m, ok := c.(moded); ok {
		if i, ok := m.Mode().(instance); ok {
			return i, true
		}
	}
	i, ok := c.(instance)
	return i, ok
}

// lag returns the consumer's lag, from the cache when it is recent enough.
func (h *Handler) lag(ctx context.Context, e *entry, l lagger) (map[string]int64, string) {
	h.lagMu.Lock()
	defer h.lagMu.Unlock() // one reading at a time: a slow broker is asked once, not once per viewer
	if r, ok := h.lagCache[e]; ok && h.o.now().Sub(r.at) < h.o.lagEvery {
		return r.lag, r.err
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.lagTimeout)
	defer cancel()
	lag, err := l.Lag(ctx)
	r := lagReading{at: h.o.now(), lag: lag}
	if err != nil {
		r.err = err.Error()
	}
	h.lagCache[e] = r
	return r.lag, r.err
}

type lagReading struct {
	at  time.Time
	lag map[string]int64
	err string
}

func side(s migrate.SideStats) SideStatus {
	out := SideStatus{
		Reading: s.Reading, Consumed: s.Consumed, Failed: s.Failed, PendingRetries: s.PendingRetries,
		Lag: s.Lag, RetryLag: s.RetryLag, LagAt: s.LagAt, QuietSince: s.QuietSince, Drained: s.Drained,
	}
	if s.LagErr != nil {
		out.LagError = s.LagErr.Error()
	}
	return out
}
