package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
)

// Garbage collection deletes the consumer groups of instances that are gone
// for good (a Deployment's pods get new names on every rollout), so that the
// broker does not keep their offsets, retry topics and subscription entries
// forever.
//
// A group is a candidate when its name is the base group, '-', and an
// identity (no further '-'), and its configuration carries the mark Start
// puts on the groups it creates (consumeBroadcastEnable=false: a derived
// group is never consumed in broadcasting mode). Ordinary groups that merely
// share the prefix are never candidates.
//
// "Gone since" cannot be read from the broker: it keeps no time of a group's
// last connection, and the store time of the last consumed message
// (ConsumeStats' lastTimestamp) is as old for an instance that is idle but
// alive. So the collector watches: it records when it first saw a candidate
// with no connected client, and deletes the group once it has seen it
// offline, check after check, for at least the TTL. The run restarts when a
// client is connected, when the group's committed offsets moved (it consumed
// while the collector was not looking), or when two checks are more than
// half the TTL apart. A group with a connected client is never deleted, and
// connections are checked once more right before a deletion. A client the
// broker still lists although its connection is closed (see stale) does
// not count as connected. The memory is
// the collector's own: a collector that restarts starts watching afresh,
// which only delays deletions. Every live instance with
// WithGarbageCollection runs a collector, so they do not all have to live
// for the TTL.

// minTTL is the smallest TTL accepted. Meaningful TTLs are hours or days: an
// instance down for longer loses what was produced meanwhile.
const minTTL = time.Second

// GCReport is the outcome of one garbage collection pass.
type GCReport struct {
	// Live are the instance groups with a connected client.
	Live []string
	// Offline are the instance groups without a client that have not been
	// seen offline for the TTL yet.
	Offline []OfflineGroup
	// Deleted are the instance groups deleted by this pass.
	Deleted []string
}

// OfflineGroup is an instance group seen without a connected client.
type OfflineGroup struct {
	Group string
	// Since is when this collector first saw it offline, in the current run
	// of checks.
	Since time.Time
}

// offlineRun is what a collector remembers of one offline group.
type offlineRun struct {
	since    time.Time // first check of the run
	last     time.Time // latest check
	progress int64     // sum of the group's committed offsets at the first check
	checks   int
}

// observe adds an offline check at now to the run, restarting it when the
// checks are too far apart or the group consumed in between.
func (r *offlineRun) observe(now time.Time, progress int64, maxGap time.Duration) {
	if r.checks == 0 || now.Sub(r.last) > maxGap || progress != r.progress {
		*r = offlineRun{since: now, last: now, progress: progress, checks: 1}
		return
	}
	r.last = now
	r.checks++
}

// expired reports whether the run shows the group offline for ttl.
func (r *offlineRun) expired(now time.Time, ttl time.Duration) bool {
	return r.checks >= 2 && now.Sub(r.since) >= ttl
}

// collector runs garbage collection passes for one base group.
type collector struct {
	adm    gcAdmin
	prefix string // broker-side base group and '-'
	self   string // broker-side group of the instance running it, or ""
	now    func() time.Time
	logger *slog.Logger

	mu    sync.Mutex // one pass at a time; guards runs
	runs  map[string]*offlineRun
	group string // base group, for logs
}

func newCollector(adm gcAdmin, cfg *config, base, self string) *collector {
	return &collector{
		adm:    adm,
		prefix: cfg.brokerName(base) + "-",
		self:   self,
		now:    cfg.now,
		logger: cfg.logger,
		runs:   make(map[string]*offlineRun),
		group:  base,
	}
}

// candidate reports whether g is an instance group of the collector's base.
func (c *collector) candidate(g admin.GroupConfig) bool {
	id, ok := strings.CutPrefix(g.Name, c.prefix)
	return ok && identityRE.MatchString(id) && !g.ConsumeBroadcastEnable && g.Name != c.self
}

// collect runs one pass. It returns what it saw and did, and the errors of
// groups it could not check or delete (those are left alone).
func (c *collector) collect(ctx context.Context, ttl time.Duration) (GCReport, error) {
	if ttl < minTTL {
		return GCReport{}, fmt.Errorf("%w: garbage collection ttl %v is under %v", ErrInvalidOption, ttl, minTTL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var rep GCReport
	groups, err := c.adm.SubscriptionGroupConfigs(ctx)
	if err != nil {
		return rep, err
	}
	now := c.now()
	maxGap := ttl / 2
	seen := make(map[string]bool)
	var errs []error
	for _, g := range groups {
		if !c.candidate(g) {
			continue
		}
		name := g.Name
		seen[name] = true
		live, err := c.live(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if live {
			delete(c.runs, name)
			rep.Live = append(rep.Live, name)
			continue
		}
		progress, err := c.progress(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r := c.runs[name]
		if r == nil {
			r = &offlineRun{}
			c.runs[name] = r
		}
		r.observe(now, progress, maxGap)
		if !r.expired(now, ttl) {
			rep.Offline = append(rep.Offline, OfflineGroup{Group: name, Since: r.since})
			continue
		}
		deleted, err := c.delete(ctx, name, r)
		if err != nil {
			errs = append(errs, err)
		}
		if deleted {
			delete(c.runs, name)
			rep.Deleted = append(rep.Deleted, name)
		}
	}
	for name := range c.runs {
		if !seen[name] {
			delete(c.runs, name) // deleted by someone else, or no longer marked
		}
	}
	slices.Sort(rep.Live)
	slices.Sort(rep.Deleted)
	slices.SortFunc(rep.Offline, func(a, b OfflineGroup) int { return strings.Compare(a.Group, b.Group) })
	return rep, errors.Join(errs...)
}

// live reports whether group has a connected client; one the broker still
// lists but that is certainly gone (see stale) does not count.
func (c *collector) live(ctx context.Context, group string) (bool, error) {
	conns, err := c.adm.ConsumerConnections(ctx, group)
	if err != nil {
		return false, err
	}
	for _, cn := range conns {
		if !stale(ctx, c.adm, group, cn) {
			return true, nil
		}
	}
	return false, nil
}

// progress sums the group's committed offsets, to notice that it consumed
// between two checks.
func (c *collector) progress(ctx context.Context, group string) (int64, error) {
	st, err := c.adm.ConsumeStats(ctx, group, "")
	if errors.Is(err, admin.ErrNotFound) {
		return 0, nil // no offsets at all
	}
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, q := range st.Queues {
		sum += q.ConsumerOffset
	}
	return sum, nil
}

// delete deletes an expired group, after a last look at its connections,
// with its offsets and its retry topic. Its dead-letter topic is kept: it
// may hold messages someone still wants to look at.
func (c *collector) delete(ctx context.Context, group string, r *offlineRun) (bool, error) {
	if live, err := c.live(ctx, group); err != nil || live {
		if live {
			delete(c.runs, group)
		}
		return false, err
	}
	if err := c.adm.DeleteSubscriptionGroup(ctx, group); err != nil {
		return false, err
	}
	c.logger.Info("rmqkit broadcast: deleted the group of an instance gone for longer than the TTL",
		"base_group", c.group, "group", group, "offline_since", r.since)
	if err := c.adm.DeleteTopic(ctx, retryTopicPrefix+group); err != nil {
		return true, fmt.Errorf("group %q deleted, but not its retry topic: %w", group, err)
	}
	return true, nil
}

const retryTopicPrefix = "%RETRY%"

// run collects every period until ctx ends, logging what it deletes and
// what fails.
func (c *collector) run(ctx context.Context, ttl, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.collect(ctx, ttl); err != nil && ctx.Err() == nil {
			c.logger.Warn("rmqkit broadcast: garbage collection", "base_group", c.group, "error", err)
		}
	}
}

// GarbageCollector deletes the consumer groups of the instances of one base
// group that have been offline for longer than a TTL, for a process that
// does not consume itself (an operations job). Instances can do the same
// with WithGarbageCollection or CollectGarbage. Its methods are safe for
// simultaneous use by multiple goroutines.
type GarbageCollector struct {
	col *collector
	adm adminAPI
	ttl time.Duration
}

// NewGarbageCollector returns a collector of baseGroup's instance groups
// offline for at least ttl, on the cluster conn reaches (name servers
// required; in its namespace only). Of opts, it uses WithLogger.
func NewGarbageCollector(baseGroup string, ttl time.Duration, conn consumer.Connection, opts ...Option) (*GarbageCollector, error) {
	cfg := defaultConfig()
	cfg.conn = conn
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if ttl < minTTL {
		return nil, fmt.Errorf("%w: garbage collection ttl %v is under %v", ErrInvalidOption, ttl, minTTL)
	}
	if _, _, err := derive(baseGroup, "x", len(cfg.brokerName(""))); err != nil {
		return nil, err
	}
	adm, err := cfg.newAdmin(&cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: admin client: %w", ErrInvalidOption, err)
	}
	return &GarbageCollector{col: newCollector(adm, &cfg, baseGroup, ""), adm: adm, ttl: ttl}, nil
}

// Collect runs one pass: it checks every instance group of the base group
// and deletes those it has seen offline for the TTL. Call it at least every
// TTL/2 (Run does), or offline runs restart. Errors of single groups are
// joined; those groups are left alone.
func (g *GarbageCollector) Collect(ctx context.Context) (GCReport, error) {
	return g.col.collect(ctx, g.ttl)
}

// Run calls Collect every period until ctx ends, logging deletions and
// errors, and returns ctx.Err(). A period of 0 means TTL/4, between 1
// second and 10 minutes.
func (g *GarbageCollector) Run(ctx context.Context, every time.Duration) error {
	if every < 0 {
		return fmt.Errorf("%w: period %v is negative", ErrInvalidOption, every)
	}
	if every == 0 {
		every = (&config{gcTTL: g.ttl}).gcPeriod()
	}
	g.col.run(ctx, g.ttl, every)
	return ctx.Err()
}

// Close closes the collector's connections.
func (g *GarbageCollector) Close() error { return g.adm.Close() }
