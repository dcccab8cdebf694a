package config

import (
	"github.com/rmqkit/rmqkit/consumer"
)

// Options turns doc into the options that build a consumer with its
// settings: the consumer options (group limit or quota) and, by topic, the
// subscribe options (pool size, rate, orderly, key-ordered, max retries, adaptive pool). Pass them to
// consumer.New(doc.Group, ...) and Subscribe; options given after them win.
//
// Two keys cannot be turned into options: processLimit, because the process
// limiter is created by the program and shared by its consumers (pass it
// with consumer.WithProcessLimiter; Watch or Apply then sets its limit), and
// batchSize, which needs a batch handler: subscribe with
// c.SubscribeBatch(topic, sel, h, consumer.WithBatchSize(*sub.BatchSize)). A validated document has no
// invalid values; Options does not validate.
func Options(doc *Document) ([]consumer.Option, map[string][]consumer.SubscribeOption) {
	var opts []consumer.Option
	if g := doc.GroupLimit; g != nil {
		if g.Shared {
			opts = append(opts, consumer.WithGroupQuota(g.limit()))
		} else {
			opts = append(opts, consumer.WithGroupRate(g.limit()))
		}
	}
	subs := make(map[string][]consumer.SubscribeOption, len(doc.Subscriptions))
	for topic, s := range doc.Subscriptions {
		var so []consumer.SubscribeOption
		if s.PoolSize != nil {
			so = append(so, consumer.WithPoolSize(*s.PoolSize))
		}
		if l, ok := s.limit(); ok {
			so = append(so, consumer.WithRate(l))
		}
		if s.Orderly != nil && *s.Orderly {
			so = append(so, consumer.WithOrderly())
		}
		if s.KeyOrdered != nil && *s.KeyOrdered {
			so = append(so, consumer.WithKeyOrdered())
		}
		if s.MaxRetries != nil {
			so = append(so, consumer.WithMaxRetries(*s.MaxRetries))
		}
		if s.AdaptivePool != nil {
			so = append(so, consumer.WithAdaptivePool(s.AdaptivePool.adaptive()))
		}
		subs[topic] = so
	}
	return opts, subs
}
