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
	"github.com/rmqkit/rmqkit/throttle"
)

type state int

// firstHeartbeat is how long after Start Stop waits at least: the client
// sends its first heartbeat 1 second after it starts.
const firstHeartbeat = 1500 * time.Millisecond

const (
	stateNew state = iota
	stateRunning
	stateFailed
	stateStopped
)

// Consumer is one instance of a broadcast subscription: every instance of a
// base group receives every message of the topics it subscribes to. It
// consumes in clustering mode, alone in a consumer group of its own (see
// Group), built on a consumer.Consumer, so pools, rate limits, middleware,
// retries and the dead-letter queue work as for any rmqkit consumer.
//
// Create it with New, add subscriptions with Subscribe, then Start; end with
// Stop. Its methods are safe for simultaneous use by multiple goroutines.
type Consumer struct {
	c        *consumer.Consumer
	cfg      config
	base     string
	identity string
	source   string // where the identity came from
	group    string // derived group, without namespace
	bgroup   string // derived group as the broker knows it
	instance string // client instance name: the client id ends with "@"+instance
	adm      adminAPI
	gc       *collector

	mu       sync.Mutex // held through Start
	state    state
	topics   []string // subscribed, in order
	gcCancel context.CancelFunc
	gcDone   chan struct{}
	started  time.Time // when the client started
}

// New returns an instance of the broadcast subscription baseGroup. It
// resolves the instance's identity (see Consumer.Identity for the precedence),
// creating the state file if that is where it comes from, and derives the
// instance's consumer group: baseGroup + "-" + identity. WithNameServer is
// required. Errors wrap ErrInvalidOption, naming the argument, or
// ErrNoIdentity. New does not connect to the broker.
func New(baseGroup string, opts ...Option) (*Consumer, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Check the base group before looking for an identity, which may write
	// a state file.
	if _, _, err := derive(baseGroup, "x", nsLen(&cfg)); err != nil {
		return nil, err
	}
	raw, source, err := resolveIdentity(&cfg)
	if err != nil {
		return nil, err
	}
	identity, group, err := derive(baseGroup, raw, nsLen(&cfg))
	if err != nil {
		return nil, err
	}
	instance := "rmqkit-" + identity + "-" + randomHex(4)
	copts := append([]consumer.Option(nil), cfg.consumerOpts...)
	copts = append(copts,
		consumer.WithNameServer(cfg.nameServers...),
		consumer.WithLogger(cfg.logger),
		consumer.WithInstanceName(instance),
		// Queues without an offset after Start's initialisation are all
		// meant for this instance (offsets.go).
		consumer.WithStartPosition(consumer.StartFromEarliest),
	)
	if cfg.credentials != nil {
		copts = append(copts, consumer.WithCredentials(cfg.credentials[0], cfg.credentials[1]))
	}
	// Always, so that a namespace given in WithConsumerOptions cannot make
	// the consumer and the admin client disagree on names.
	copts = append(copts, consumer.WithNamespace(cfg.namespace))
	c, err := consumer.New(group, copts...)
	if err != nil {
		return nil, err
	}
	adm, err := cfg.newAdmin(&cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: admin client: %w", ErrInvalidOption, err)
	}
	bc := &Consumer{
		c:        c,
		cfg:      cfg,
		base:     baseGroup,
		identity: identity,
		source:   source,
		group:    group,
		bgroup:   cfg.brokerName(group),
		instance: instance,
		adm:      adm,
	}
	bc.gc = newCollector(adm, &bc.cfg, baseGroup, bc.bgroup)
	return bc, nil
}

func nsLen(cfg *config) int { return len(cfg.brokerName("")) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Identity returns the instance's identity, sanitised, as it appears in
// Group. It comes from the first of: WithIdentity; the environment variable
// POD_NAME, then HOSTNAME; an identity persisted in the state directory
// (WithStateDir), created on first use. Characters other than letters,
// digits and '_' become '_' (so the last '-' of Group separates base group
// and identity), and a long identity is cut and ends with a hash of the
// whole.
func (c *Consumer) Identity() string { return c.identity }

// Group returns the instance's consumer group, baseGroup + "-" + Identity(),
// without the namespace.
func (c *Consumer) Group() string { return c.group }

// BaseGroup returns the base group given to New.
func (c *Consumer) BaseGroup() string { return c.base }

// Subscribe adds a subscription to topic, as consumer.Consumer.Subscribe
// does; every option of a subscription (pool, rate, batch, orderly, max
// retries) applies. It must be called before Start.
func (c *Consumer) Subscribe(topic string, sel consumer.Selector, h consumer.Handler, opts ...consumer.SubscribeOption) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateNew {
		return consumer.ErrStarted
	}
	if err := c.c.Subscribe(topic, sel, h, opts...); err != nil {
		return err
	}
	c.topics = append(c.topics, topic)
	return nil
}

// Start starts the instance:
//
//  1. It refuses to run, with an error wrapping ErrIdentityInUse, while
//     another client is connected under the instance's group (another live
//     process with the same identity), after waiting up to
//     WithIdentityWait for it to go.
//  2. It creates the instance's subscription group if the broker does not
//     have it, marked as an instance group (consumeBroadcastEnable=false,
//     which garbage collection looks for), and its retry topic, so that the
//     client knows the retry topic's route from the start.
//  3. For every queue of the subscribed topics the group has no offset for,
//     it commits the start offset: the queue's end, or the first message at
//     or after WithStartTime. A restarted instance has offsets and resumes
//     from them: it gets every message it had not acknowledged.
//  4. It starts the consumer, and checks once more that it is alone in its
//     group (two processes starting at the same moment); if not, it stops
//     and returns an ErrIdentityInUse error.
//  5. With WithGarbageCollection, it starts collecting stale instance groups.
//
// An error in steps 1 to 3 leaves the Consumer as it was, and Start may be
// called again. An error from the consumer's own Start leaves it only
// stoppable. Start returns consumer.ErrStarted if called twice and
// consumer.ErrStopped after Stop.
func (c *Consumer) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateRunning, stateFailed:
		return consumer.ErrStarted
	case stateStopped:
		return consumer.ErrStopped
	}
	if len(c.topics) == 0 {
		return fmt.Errorf("%w: no subscriptions (call Subscribe before Start)", ErrInvalidOption)
	}
	if err := c.waitAlone(ctx); err != nil {
		return err
	}
	if err := c.ensureGroup(ctx); err != nil {
		return fmt.Errorf("broadcast %q: %w", c.group, err)
	}
	c.ensureRetryTopic(ctx)
	topics := make([]string, len(c.topics))
	for i, t := range c.topics {
		topics[i] = c.cfg.brokerName(t)
	}
	n, err := initOffsets(ctx, c.adm, c.bgroup, topics, c.cfg.startAt)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("broadcast %q: initialise offsets: %w", c.group, err)
	}
	if err := c.c.Start(ctx); err != nil {
		c.state = stateFailed
		return err
	}
	c.state = stateRunning
	c.started = time.Now()
	if others, err := c.otherClients(ctx); err != nil {
		c.cfg.logger.Warn("rmqkit broadcast: cannot check the group's clients after start", "group", c.group, "error", err)
	} else if len(others) > 0 {
		c.state = stateStopped
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = c.c.Stop(sctx)
		cancel()
		_ = c.adm.Close()
		return c.inUse(others[0])
	}
	if c.cfg.gcTTL > 0 {
		gctx, cancel := context.WithCancel(context.Background())
		c.gcCancel, c.gcDone = cancel, make(chan struct{})
		go func() {
			defer close(c.gcDone)
			c.gc.run(gctx, c.cfg.gcTTL, c.cfg.gcPeriod())
		}()
	}
	c.cfg.logger.Info("rmqkit broadcast instance started", "base_group", c.base, "group", c.group,
		"identity", c.identity, "identity_source", c.source, "new_queue_offsets", n)
	return nil
}

// waitAlone returns nil once no other client is connected under the group,
// or an ErrIdentityInUse error when one still is after the identity wait.
func (c *Consumer) waitAlone(ctx context.Context) error {
	deadline := time.Now().Add(c.cfg.identityWait)
	for {
		others, err := c.otherClients(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("broadcast %q: check that identity %q is free: %w", c.group, c.identity, err)
		}
		if len(others) == 0 {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return c.inUse(others[0])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, time.Second)):
		}
	}
}

// otherClients lists the live clients of the group other than this one.
func (c *Consumer) otherClients(ctx context.Context) ([]admin.Connection, error) {
	conns, err := c.adm.ConsumerConnections(ctx, c.bgroup)
	if err != nil {
		return nil, err
	}
	var others []admin.Connection
	for _, cn := range conns {
		// rocketmq-client-go's client id is IP@instance[@unit].
		if strings.HasSuffix(cn.ClientID, "@"+c.instance) || strings.Contains(cn.ClientID, "@"+c.instance+"@") {
			continue
		}
		if stale(ctx, c.adm, c.bgroup, cn) {
			c.cfg.logger.Info("rmqkit broadcast: ignoring a client the broker still lists but that is gone",
				"group", c.group, "client", cn.ClientID, "address", cn.ClientAddr)
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
// registered again, on its dead connection, after the close). Asked for its
// running info, the broker then fails to write to that connection; a client
// that is alive but no longer runs a consumer of the group says so.
// Anything else, a timeout included (a machine that died leaves a connection
// that accepts writes), counts as alive.
func stale(ctx context.Context, adm gcAdmin, group string, cn admin.Connection) bool {
	_, err := adm.ConsumerRunningInfo(ctx, group, cn.ClientID)
	return admin.Gone(err)
}

func (c *Consumer) inUse(other admin.Connection) error {
	return fmt.Errorf("%w: identity %q (from %s) of base group %q: group %q already has client %s at %s; "+
		"give each process its own identity (WithIdentity, POD_NAME, or WithStateDir)",
		ErrIdentityInUse, c.identity, c.source, c.base, c.group, other.ClientID, other.ClientAddr)
}

// ensureGroup creates the instance's subscription group, marked, unless the
// broker has it marked already.
func (c *Consumer) ensureGroup(ctx context.Context) error {
	groups, err := c.adm.SubscriptionGroupConfigs(ctx)
	if err != nil {
		return err
	}
	opts := []admin.GroupOption{admin.WithBroadcast(false)}
	for _, g := range groups {
		if g.Name != c.bgroup {
			continue
		}
		if !g.ConsumeBroadcastEnable {
			return nil
		}
		// Created by the broker or by hand: keep its settings, add the mark.
		opts = append(opts, admin.WithRetryMaxTimes(g.RetryMaxTimes), admin.WithOrderly(g.ConsumeMessageOrderly))
	}
	return c.adm.CreateSubscriptionGroup(ctx, c.bgroup, opts...)
}

// ensureRetryTopic creates the group's retry topic if it has no route yet.
// The broker would create it at the client's first heartbeat, but the client
// reads the routes of its topics when it starts and then only every 30
// seconds, so the first retries of a new instance would wait for that.
// Failure is logged, not returned: the broker's way still works.
func (c *Consumer) ensureRetryTopic(ctx context.Context) {
	retry := retryTopicPrefix + c.bgroup
	_, err := c.adm.TopicRoute(ctx, retry)
	if errors.Is(err, admin.ErrNotFound) {
		err = c.adm.CreateTopic(ctx, retry, 1, false)
	}
	if err != nil && ctx.Err() == nil {
		c.cfg.logger.Warn("rmqkit broadcast: cannot create the retry topic before start; the first retries may wait for a route refresh",
			"group", c.group, "topic", retry, "error", err)
	}
}

// Stop stops the instance as consumer.Consumer.Stop does: it stops handing
// messages to handlers, waits for the running ones until ctx ends, commits
// offsets and disconnects. What was fetched but not handled is delivered
// again after the next Start with the same identity. Called within 1.5
// seconds of Start, it first waits until then (or until ctx ends), so that
// the client is not shut down before its first heartbeat: rocketmq-client-go
// could otherwise leave the broker listing it for 2 minutes. Stop is safe
// without Start, after a failed Start, and more than once.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	prev := c.state
	c.state = stateStopped
	cancel, done, started := c.gcCancel, c.gcDone, c.started
	c.mu.Unlock()
	if prev == stateRunning {
		// Let the client's first heartbeat go out before it shuts down (see
		// stale): otherwise the broker may list this instance for 2 more
		// minutes, and a restart with the same identity would find it
		// holding half the queues.
		select {
		case <-time.After(time.Until(started.Add(firstHeartbeat))):
		case <-ctx.Done():
		}
	}
	if cancel != nil {
		cancel()
		<-done
	}
	if prev == stateStopped {
		return nil
	}
	err := c.c.Stop(ctx)
	_ = c.adm.Close()
	return err
}

// CollectGarbage runs one garbage collection pass over the base group's
// instance groups: it deletes, with their offsets and retry topic, those it
// has seen offline, pass after pass, for at least ttl (see
// WithGarbageCollection, which calls it periodically). It never deletes its
// own group or a group with a connected client. Offline times are
// remembered by this Consumer between calls; calls more than ttl/2 apart
// restart them. Errors of single groups are joined; those groups are left
// alone. It works before Start and until Stop.
func (c *Consumer) CollectGarbage(ctx context.Context, ttl time.Duration) (GCReport, error) {
	return c.gc.collect(ctx, ttl)
}

// Stats returns a snapshot of every subscription's counters, by topic
// (consumer.Consumer.Stats).
func (c *Consumer) Stats() []consumer.SubscriptionStats { return c.c.Stats() }

// Settings returns the consumer's current configuration
// (consumer.Consumer.Settings).
func (c *Consumer) Settings() consumer.Settings { return c.c.Settings() }

// SetPoolSize resizes the pool of the subscription to topic at run time
// (consumer.Consumer.SetPoolSize).
func (c *Consumer) SetPoolSize(topic string, n int) error { return c.c.SetPoolSize(topic, n) }

// SetRate replaces the rate limit of the subscription to topic at run time
// (consumer.Consumer.SetRate).
func (c *Consumer) SetRate(topic string, l throttle.Limit) error { return c.c.SetRate(topic, l) }
