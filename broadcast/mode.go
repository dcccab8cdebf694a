package broadcast

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
)

// Mode makes a consumer one instance of a broadcast subscription: the group
// given to consumer.New is the base group, and the consumer joins a group of
// its own, base group + "-" + identity, in clustering mode. It is a
// consumer.Mode attached to a *consumer.Consumer, so every feature of a
// consumer (pools, rate limits, live config, rmqotel, Stats, Lag) works for
// a broadcast subscription unchanged:
//
//	c, err := consumer.New("orders-cache", consumer.WithNameServer(addr),
//		broadcast.Mode(broadcast.WithStateDir(dir)))
//
// consumer.New then resolves the identity (see Instance.Identity), creating
// the state file if that is where it comes from; its errors wrap
// ErrInvalidOption, naming the argument, or ErrNoIdentity. The mode sets the
// consumer's instance name and start position (use WithStartTime). A group
// quota (consumer.WithGroupQuota, SetGroupQuota, a shared groupLimit in a
// configuration file) has no meaning here, since each instance is a group
// of its own: the consumer refuses it with consumer.ErrNotInMode; a group
// rate (consumer.WithGroupRate) caps the instance. Start does what Instance's documentation
// lists before and after the client starts.
func Mode(opts ...Option) consumer.Option {
	return consumer.WithMode(&Instance{opts: opts})
}

// InstanceOf returns the broadcast instance of a consumer created with
// Mode, or false.
func InstanceOf(c *consumer.Consumer) (*Instance, bool) {
	i, ok := c.Mode().(*Instance)
	return i, ok
}

// Instance is a broadcast consumer's identity, group and garbage collector
// (InstanceOf). Its methods are safe for simultaneous use by multiple
// goroutines.
//
// Start of its consumer:
//
//  1. refuses to run, with an error wrapping ErrIdentityInUse, while
//     another client is connected under the instance's group (another live
//     process with the same identity), after waiting up to
//     WithIdentityWait for it to go;
//  2. creates the instance's subscription group if the broker does not
//     have it, marked as an instance group (consumeBroadcastEnable=false,
//     which garbage collection looks for), and its retry topic, so that the
//     client knows the retry topic's route from the start;
//  3. for every queue of the subscribed topics the group has no offset for,
//     commits the start offset: the queue's end, or the first message at
//     or after WithStartTime. A restarted instance has offsets and resumes
//     from them: it gets every message it had not acknowledged;
//  4. starts the client, and checks once more that it is alone in its
//     group (two processes starting at the same moment); if not, it stops
//     the consumer and returns an ErrIdentityInUse error;
//  5. with WithGarbageCollection, starts collecting stale instance groups,
//     until Stop.
//
// An error in steps 1 to 3 leaves the consumer unstarted: Start may be
// called again.
type Instance struct {
	opts     []Option
	cfg      config
	base     string
	identity string
	source   string // where the identity came from
	group    string // derived group, without namespace
	bgroup   string // derived group as the broker knows it
	instance string // client instance name: the client id ends with "@"+instance
	adm      adminAPI
	gc       *collector

	mu       sync.Mutex
	gcCancel context.CancelFunc
	gcDone   chan struct{}
}

// Setup implements consumer.Mode: it resolves the identity and derives the
// instance group.
func (i *Instance) Setup(ms *consumer.ModeSetup) error {
	if i.adm != nil {
		return fmt.Errorf("%w: a broadcast Mode value belongs to one consumer", ErrInvalidOption)
	}
	cfg := defaultConfig()
	cfg.conn = ms.Connection
	cfg.logger = ms.Logger
	for _, o := range i.opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	base := ms.Group
	// Check the base group before looking for an identity, which may write
	// a state file.
	if _, _, err := derive(base, "x", nsLen(&cfg)); err != nil {
		return err
	}
	raw, source, err := resolveIdentity(&cfg)
	if err != nil {
		return err
	}
	identity, group, err := derive(base, raw, nsLen(&cfg))
	if err != nil {
		return err
	}
	adm, err := cfg.newAdmin(&cfg)
	if err != nil {
		return fmt.Errorf("%w: admin client: %w", ErrInvalidOption, err)
	}
	*i = Instance{
		opts:     i.opts,
		cfg:      cfg,
		base:     base,
		identity: identity,
		source:   source,
		group:    group,
		bgroup:   cfg.brokerName(group),
		instance: "rmqkit-" + identity + "-" + randomHex(4),
		adm:      adm,
	}
	i.gc = newCollector(adm, &i.cfg, base, i.bgroup)
	ms.Group, ms.Instance, ms.InstanceGroup = group, i.instance, true
	// Queues without an offset after BeforeStart's initialisation are all
	// meant for this instance (offsets.go).
	ms.Start = consumer.StartFromEarliest
	return nil
}

func nsLen(cfg *config) int { return len(cfg.brokerName("")) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Broadcasting reports that the mode delivers every message to every
// instance; instrumentation reads it (rmqotel.Instrument records the
// broadcasting consumption model).
func (i *Instance) Broadcasting() bool { return true }

// Identity returns the instance's identity, sanitised, as it appears in
// Group. It comes from the first of: WithIdentity; the environment variable
// POD_NAME, then HOSTNAME; an identity persisted in the state directory
// (WithStateDir), created on first use. Characters other than letters,
// digits and '_' become '_' (so the last '-' of Group separates base group
// and identity), and a long identity is cut and ends with a hash of the
// whole.
func (i *Instance) Identity() string { return i.identity }

// Group returns the instance's consumer group, BaseGroup() + "-" +
// Identity(), without the namespace: the consumer's Group.
func (i *Instance) Group() string { return i.group }

// BaseGroup returns the group given to consumer.New.
func (i *Instance) BaseGroup() string { return i.base }

// BeforeStart implements consumer.Mode: steps 1 to 3 of Start.
func (i *Instance) BeforeStart(ctx context.Context, st consumer.ModeStart) error {
	if err := i.waitAlone(ctx); err != nil {
		return err
	}
	if err := i.ensureGroup(ctx); err != nil {
		return fmt.Errorf("broadcast %q: %w", i.group, err)
	}
	i.ensureRetryTopic(ctx)
	topics := make([]string, len(st.Topics))
	for k, t := range st.Topics {
		topics[k] = i.cfg.brokerName(t)
	}
	n, err := initOffsets(ctx, i.adm, i.bgroup, topics, i.cfg.startAt)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("broadcast %q: initialise offsets: %w", i.group, err)
	}
	i.cfg.logger.Info("rmqkit broadcast instance starting", "base_group", i.base, "group", i.group,
		"identity", i.identity, "identity_source", i.source, "new_queue_offsets", n)
	return nil
}

// AfterStart implements consumer.Mode: steps 4 and 5 of Start.
func (i *Instance) AfterStart(ctx context.Context, _ consumer.ModeStart) error {
	if others, err := i.otherClients(ctx); err != nil {
		i.cfg.logger.Warn("rmqkit broadcast: cannot check the group's clients after start", "group", i.group, "error", err)
	} else if len(others) > 0 {
		return i.inUse(others[0])
	}
	if i.cfg.gcTTL > 0 {
		gctx, cancel := context.WithCancel(context.Background())
		i.mu.Lock()
		i.gcCancel, i.gcDone = cancel, make(chan struct{})
		i.mu.Unlock()
		go func() {
			defer close(i.gcDone)
			i.gc.run(gctx, i.cfg.gcTTL, i.cfg.gcPeriod())
		}()
	}
	return nil
}

// AfterStop implements consumer.Mode: it stops garbage collection and
// closes the instance's admin connections.
func (i *Instance) AfterStop(context.Context) {
	i.mu.Lock()
	cancel, done := i.gcCancel, i.gcDone
	i.gcCancel = nil
	i.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	_ = i.adm.Close()
}

// waitAlone returns nil once no other client is connected under the group,
// or an ErrIdentityInUse error when one still is after the identity wait.
func (i *Instance) waitAlone(ctx context.Context) error {
	deadline := time.Now().Add(i.cfg.identityWait)
	for {
		others, err := i.otherClients(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("broadcast %q: check that identity %q is free: %w", i.group, i.identity, err)
		}
		if len(others) == 0 {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return i.inUse(others[0])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, time.Second)):
		}
	}
}

// otherClients lists the live clients of the group other than this one.
func (i *Instance) otherClients(ctx context.Context) ([]admin.Connection, error) {
	conns, err := i.adm.ConsumerConnections(ctx, i.bgroup)
	if err != nil {
		return nil, err
	}
	var others []admin.Connection
	for _, cn := range conns {
		// rocketmq-client-go's client id is IP@instance[@unit].
		if strings.HasSuffix(cn.ClientID, "@"+i.instance) || strings.Contains(cn.ClientID, "@"+i.instance+"@") {
			continue
		}
		if stale(ctx, i.adm, i.bgroup, cn) {
			i.cfg.logger.Info("rmqkit broadcast: ignoring a client the broker still lists but that is gone",
				"group", i.group, "client", cn.ClientID, "address", cn.ClientAddr)
			continue
		}
		others = append(others, cn)
	}
	return others, nil
}

// stale reports whether a listed client of group is certainly gone. The
// broker can keep listing a client whose connection has closed for up to 2
// minutes (rocketmq-client-go sends its first heartbeat 1 second after
// Start without looking at Shutdown; a consumer stopped before that can be
// registered again, on its dead connection, after the close; the consumer's
// Stop waits for that heartbeat). Asked for its running info, the broker
// then fails to write to that connection; a client that is alive but no
// longer runs a consumer of the group says so. Anything else, a timeout
// included (a machine that died leaves a connection that accepts writes),
// counts as alive.
func stale(ctx context.Context, adm gcAdmin, group string, cn admin.Connection) bool {
	_, err := adm.ConsumerRunningInfo(ctx, group, cn.ClientID)
	return admin.Gone(err)
}

func (i *Instance) inUse(other admin.Connection) error {
	return fmt.Errorf("%w: identity %q (from %s) of base group %q: group %q already has client %s at %s; "+
		"give each process its own identity (WithIdentity, POD_NAME, or WithStateDir)",
		ErrIdentityInUse, i.identity, i.source, i.base, i.group, other.ClientID, other.ClientAddr)
}

// ensureGroup creates the instance's subscription group, marked, unless the
// broker has it marked already.
func (i *Instance) ensureGroup(ctx context.Context) error {
	groups, err := i.adm.SubscriptionGroupConfigs(ctx)
	if err != nil {
		return err
	}
	opts := []admin.GroupOption{admin.WithBroadcast(false)}
	for _, g := range groups {
		if g.Name != i.bgroup {
			continue
		}
		if !g.ConsumeBroadcastEnable {
			return nil
		}
		// Created by the broker or by hand: keep its settings, add the mark.
		opts = append(opts, admin.WithRetryMaxTimes(g.RetryMaxTimes), admin.WithOrderly(g.ConsumeMessageOrderly))
	}
	return i.adm.CreateSubscriptionGroup(ctx, i.bgroup, opts...)
}

// ensureRetryTopic creates the group's retry topic if it has no route yet.
// The broker would create it at the client's first heartbeat, but the client
// reads the routes of its topics when it starts and then only every 30
// seconds, so the first retries of a new instance would wait for that.
// Failure is logged, not returned: the broker's way still works.
func (i *Instance) ensureRetryTopic(ctx context.Context) {
	retry := retryTopicPrefix + i.bgroup
	_, err := i.adm.TopicRoute(ctx, retry)
	if errors.Is(err, admin.ErrNotFound) {
		err = i.adm.CreateTopic(ctx, retry, 1, false)
	}
	if err != nil && ctx.Err() == nil {
		i.cfg.logger.Warn("rmqkit broadcast: cannot create the retry topic before start; the first retries may wait for a route refresh",
			"group", i.group, "topic", retry, "error", err)
	}
}

// CollectGarbage runs one garbage collection pass over the base group's
// instance groups: it deletes, with their offsets and retry topic, those it
// has seen offline, pass after pass, for at least ttl (see
// WithGarbageCollection, which calls it periodically). It never deletes its
// own group or a group with a connected client. Offline times are
// remembered by this Instance between calls; calls more than ttl/2 apart
// restart them. Errors of single groups are joined; those groups are left
// alone. It works before Start and until Stop.
func (i *Instance) CollectGarbage(ctx context.Context, ttl time.Duration) (GCReport, error) {
	return i.gc.collect(ctx, ttl)
}
