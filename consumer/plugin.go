package consumer

import (
	"context"
	"fmt"
	"reflect"
)

// Plugin is attached to a Consumer's life cycle (WithPlugin) rather than
// wrapping it: package config's File is one, a live configuration file, and
// rmqotel's Instrument another. Unlike a Mode, a Consumer may have several;
// they are called in the order given (and stopped in reverse).
type Plugin interface {
	// SubscribeOptions returns options for the subscription to topic,
	// applied after the ones given to Subscribe: what a plugin sets wins,
	// and Subscribe logs each value it replaces. An error fails
	// Subscribe.
	SubscribeOptions(topic string) ([]SubscribeOption, error)
	// Start runs once the consumer has started (after its mode's
	// AfterStart), without the consumer's lock: it may use the consumer.
	// An error stops the consumer and is returned by Start.
	Start(ctx context.Context) error
	// Stop runs first in Stop, for a plugin whose Start succeeded.
	Stop(ctx context.Context)
}

// Attach makes the Plugin of one consumer. New calls it at its end, with the
// consumer built and its mode set up; an error fails New. One option may
// build several consumers (package migrate builds one per cluster and
// phase), so whatever a plugin keeps about its consumer belongs in the
// Plugin that Attach returns, not in the Attach function.
type Attach func(c *Consumer) (Plugin, error)

// WithPlugin attaches plugins to the consumer.
func WithPlugin(attach ...Attach) Option {
	return optionFunc(func(c *config) { c.plugins = append(c.plugins, attach...) })
}

// Plugins returns the consumer's plugins, as Attach made them. A plugin's
// package uses it to find its own state (config.WatcherOf).
func (c *Consumer) Plugins() []Plugin { return append([]Plugin(nil), c.plugins...) }

// pluginOptions applies the plugins' options for topic to sc, logging what
// they replace of the options given in code.
func (c *Consumer) pluginOptions(topic string, sc *subConfig) error {
	for _, p := range c.plugins {
		opts, err := p.SubscribeOptions(topic)
		if err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
		before := sc.tunables()
		for _, o := range opts {
			if o != nil {
				o.applySubscription(sc)
			}
		}
		after := sc.tunables()
		for i, f := range before {
			if !reflect.DeepEqual(f.value, after[i].value) && f.set {
				c.cfg.logger.Info("rmqkit subscription option replaced by a plugin", "group", c.baseGroup, "topic", topic,
					"option", f.name, "code", fmt.Sprint(f.value), "plugin", fmt.Sprint(after[i].value), "by", fmt.Sprintf("%T", p))
			}
		}
	}
	return nil
}

// tunable is one subscription setting, for pluginOptions' log.
type tunable struct {
	name  string
	value any
	set   bool // given to Subscribe (or by an earlier plugin)
}

func (s *subConfig) tunables() []tunable {
	var retries any
	if s.maxRetries != nil {
		retries = *s.maxRetries
	}
	return []tunable{
		{"pool size", s.poolSize, s.poolSizeSet},
		{"rate", s.rate, s.rateSet},
		{"max retries", retries, s.maxRetries != nil},
		{"orderly", s.orderly, s.orderly},
		{"adaptive pool", s.adaptive != nil, s.adaptive != nil},
	}
}
