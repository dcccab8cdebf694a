package consumer

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// Lag asks the brokers how many messages of each subscribed topic the group
// has not consumed yet: per topic, the sum over its queues of the broker's
// max offset minus the group's committed offset. The group's retry topic is
// reported under its own name (%RETRY%group) when the brokers know it.
// Committed offsets trail consumption by up to 5 s (the client's commit
// period), so Lag errs high, never low. Its signature fits
// rmqotel.WithLagFunc, which turns it into a lag gauge.
func (c *Consumer) Lag(ctx context.Context) (map[string]int64, error) {
	var opts []admin.Option
	if cr := c.cfg.credentials; cr != nil {
		opts = append(opts, admin.WithCredentials(cr.AccessKey, cr.SecretKey))
	}
	adm, err := admin.New(c.cfg.nameServers, opts...)
	if err != nil {
		return nil, fmt.Errorf("consumer %q: lag: %w", c.group, err)
	}
	defer adm.Close()
	stats, err := adm.ConsumeStats(ctx, c.brokerGroup(), "")
	if err != nil {
		return nil, fmt.Errorf("consumer %q: lag: %w", c.group, err)
	}
	c.mu.Lock()
	topics := slices.Collect(maps.Keys(c.subs))
	c.mu.Unlock()
	lag := make(map[string]int64, len(topics)+1)
	for _, t := range topics {
		lag[t] = 0 // a topic the broker reports nothing for has no lag yet
	}
	prefix := ""
	if ns := c.cfg.namespace; ns != "" {
		prefix = ns + "%"
	}
	for _, q := range stats.Queues {
		topic := q.Topic
		if prefix != "" && len(topic) > len(prefix) && topic[:len(prefix)] == prefix {
			topic = topic[len(prefix):]
		}
		lag[topic] += q.Lag
	}
	return lag, nil
}
