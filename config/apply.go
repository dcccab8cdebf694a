package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/throttle"
)

// Change is one setting a document changed.
type Change struct {
	Field string // the key's path, e.g. "subscriptions.orders.rate"
	Old   string // the value before
	New   string // the value after
}

// String formats the change as "field: old -> new".
func (c Change) String() string { return c.Field + ": " + c.Old + " -> " + c.New }

// Apply validates doc against c and, if it fits, applies the settings it
// changes, through c's live setters (SetRate, SetGroupRate, SetGroupQuota,
// SetPoolSize) and c's process limiter. It returns the changes made, in a
// fixed order (process, group, subscriptions by topic).
//
// Nothing is applied unless the whole document is valid (Validate) and fits
// c: the group is c's, every topic is one c subscribes to, start-only keys
// equal c's values, and processLimit is given only to a consumer with a
// process limiter. Errors wrap ErrInvalid and name the fields. Once
// validated, a setter can fail only if c was stopped meanwhile; Apply then
// returns the changes made so far with the error.
//
// Apply is for one caller at a time per consumer; a Watcher serializes its
// own calls.
func Apply(c *consumer.Consumer, doc *Document) ([]Change, error) {
	if doc == nil {
		return nil, &FieldError{Msg: "no document"}
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	cur := c.Settings()
	if err := doc.check(c, cur); err != nil {
		return nil, err
	}

	var changes []Change
	record := func(field string, old, now throttle.Limit) bool {
		if sameLimit(old, now) {
			return false
		}
		changes = append(changes, Change{Field: field, Old: old.String(), New: now.String()})
		return true
	}
	if doc.ProcessLimit != nil {
		lim := c.ProcessLimiter()
		if old, now := lim.Limit(), doc.ProcessLimit.limit(); record("processLimit", old, now) {
			if err := lim.Set(now); err != nil {
				return changes[:len(changes)-1], err
			}
		}
	}
	if g := doc.GroupLimit; g != nil {
		now := g.limit()
		if cur.GroupQuota != g.Shared || !sameLimit(cur.GroupLimit, now) {
			changes = append(changes, Change{Field: "groupLimit", Old: describeGroup(cur.GroupLimit, cur.GroupQuota), New: describeGroup(now, g.Shared)})
			set := c.SetGroupRate
			if g.Shared {
				set = c.SetGroupQuota
			}
			if err := set(now); err != nil {
				return changes[:len(changes)-1], err
			}
		}
	}
	subs := make(map[string]consumer.SubscriptionSettings, len(cur.Subscriptions))
	for _, s := range cur.Subscriptions {
		subs[s.Topic] = s
	}
	for _, topic := range sortedTopics(doc.Subscriptions) {
		want, have := doc.Subscriptions[topic], subs[topic]
		p := "subscriptions." + topic
		if want.PoolSize != nil && *want.PoolSize != have.PoolSize {
			changes = append(changes, Change{Field: p + ".poolSize", Old: fmt.Sprint(have.PoolSize), New: fmt.Sprint(*want.PoolSize)})
			if err := c.SetPoolSize(topic, *want.PoolSize); err != nil {
				return changes[:len(changes)-1], err
			}
		}
		if now, ok := want.limit(); ok && record(p+".rate", have.Rate, now) {
			if err := c.SetRate(topic, now); err != nil {
				return changes[:len(changes)-1], err
			}
		}
	}
	return changes, nil
}

// sameLimit compares limits as enforced (a zero burst is the default one).
func sameLimit(a, b throttle.Limit) bool {
	return a.Rate == b.Rate && a.EffectiveBurst() == b.EffectiveBurst()
}

// describeAdaptive formats adaptive bounds with their defaults, or "off".
func describeAdaptive(a *consumer.Adaptive) string {
	if a == nil {
		return "off"
	}
	d := a.WithDefaults()
	return fmt.Sprintf("{min: %d, max: %d, window: %v}", d.Min, d.Max, d.Window)
}

func describeGroup(l throttle.Limit, shared bool) string {
	if shared {
		return l.String() + " shared by all instances"
	}
	return l.String() + " per instance"
}

// check validates the document against the consumer it is applied to.
func (d *Document) check(c *consumer.Consumer, cur consumer.Settings) error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Line: d.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	if d.Group != cur.BaseGroup {
		// A mode may join another group (broadcast's instance group): the
		// document names the group given to consumer.New.
		fail("group", "%q is not the consumer's group %q", d.Group, cur.BaseGroup)
	}
	if d.ProcessLimit != nil && c.ProcessLimiter() == nil {
		fail("processLimit", "the consumer has no process limiter (create one with throttle.New and pass it with consumer.WithProcessLimiter)")
	}
	subs := make(map[string]consumer.SubscriptionSettings, len(cur.Subscriptions))
	topics := make([]string, 0, len(cur.Subscriptions))
	for _, s := range cur.Subscriptions {
		subs[s.Topic] = s
		topics = append(topics, s.Topic)
	}
	slices.Sort(topics)
	for _, topic := range sortedTopics(d.Subscriptions) {
		want := d.Subscriptions[topic]
		p := "subscriptions." + topic
		have, ok := subs[topic]
		if !ok {
			fail(p, "the consumer does not subscribe to %q (it subscribes to %s)", topic, strings.Join(topics, ", "))
			continue
		}
		startOnly := func(key string, want, have any) {
			if want != have {
				fail(p+"."+key, "start-only: the consumer runs with %v, the document says %v; restart the consumer to change it", have, want)
			}
		}
		if want.Orderly != nil {
			startOnly("orderly", *want.Orderly, have.Orderly)
		}
		if want.KeyOrdered != nil {
			startOnly("keyOrdered", *want.KeyOrdered, have.KeyOrdered)
		}
		if want.BatchSize != nil {
			startOnly("batchSize", *want.BatchSize, have.BatchSize)
		}
		if want.MaxRetries != nil {
			startOnly("maxRetries", *want.MaxRetries, have.MaxRetries)
		}
		if want.AdaptivePool != nil {
			a := want.AdaptivePool.adaptive()
			startOnly("adaptivePool", describeAdaptive(&a), describeAdaptive(have.Adaptive))
		}
	}
	return errors.Join(errs...)
}
