package config

import (
	"github.com/rmqkit/rmqkit/consumer"
)

// subscribeOptions turns a subscription's settings into the options that
// build it (File). A validated document has no invalid values.
func subscribeOptions(s Subscription) []consumer.SubscribeOption {
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
	if s.BatchSize != nil {
		so = append(so, consumer.WithBatchSize(*s.BatchSize))
	}
	if s.MaxRetries != nil {
		so = append(so, consumer.WithMaxRetries(*s.MaxRetries))
	}
	if s.AdaptivePool != nil {
		so = append(so, consumer.WithAdaptivePool(s.AdaptivePool.adaptive()))
	}
	return so
}
