package consumer

import (
	"slices"
	"strings"

	"github.com/rmqkit/rmqkit/throttle"
)

// Settings is a snapshot of a consumer's configuration: what New and
// Subscribe fixed and what the live setters changed since.
type Settings struct {
	// Group is the group the consumer joins.
	Group string
	// BaseGroup is the group given to New: Group, unless a mode chose
	// another (broadcast's instance group). Configuration names it.
	BaseGroup string
	// GroupLimit is the group limit as set: for this instance, or, with
	// GroupQuota, for the whole group.
	GroupLimit throttle.Limit
	// GroupQuota says GroupLimit is the whole group's, split between
	// Instances.
	GroupQuota bool
	// Instances is the number of live instances of the group at the last
	// count; 0 before the first count or without a quota.
	Instances int
	// InstanceLimit is the group limit this instance enforces now.
	InstanceLimit throttle.Limit
	// Subscriptions holds one entry per subscription, sorted by topic.
	Subscriptions []SubscriptionSettings
}

// SubscriptionSettings is the configuration of one subscription.
type SubscriptionSettings struct {
	Topic      string
	PoolSize   int            // the pool's current size (live: SetPoolSize)
	Rate       throttle.Limit // the subscription's rate limit (live: SetRate)
	Orderly    bool           // fixed by Subscribe
	KeyOrdered bool           // WithKeyOrdered; fixed by Subscribe
	BatchSize  int            // 1 without WithBatch; fixed by Subscribe
	MaxRetries int            // fixed by Subscribe
	// Adaptive holds WithAdaptivePool's bounds, defaults filled in; nil
	// without it. Fixed by Subscribe (SetPoolSize pins the size but leaves
	// this set: see SubscriptionStats.Adaptive.Pinned).
	Adaptive *Adaptive
}

// Settings returns the consumer's current configuration.
func (c *Consumer) Settings() Settings {
	c.glim.mu.Lock()
	out := Settings{
		Group:         c.group,
		BaseGroup:     c.baseGroup,
		GroupLimit:    c.glim.limit,
		GroupQuota:    c.glim.quota,
		InstanceLimit: c.glim.shareLocked(),
	}
	if c.glim.quota {
		out.Instances = c.glim.instances
	}
	c.glim.mu.Unlock()

	c.mu.Lock()
	for _, s := range c.subs {
		out.Subscriptions = append(out.Subscriptions, SubscriptionSettings{
			Topic:      s.topic,
			PoolSize:   s.pool.Cap(),
			Rate:       s.limiter.Limit(),
			Orderly:    s.orderly && s.keyed == nil,
			KeyOrdered: s.keyed != nil,
			BatchSize:  s.batchSize,
			MaxRetries: s.maxRetries,
			Adaptive:   s.adaptive.settings(),
		})
	}
	c.mu.Unlock()
	slices.SortFunc(out.Subscriptions, func(a, b SubscriptionSettings) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}
