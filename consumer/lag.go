package consumer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Lag asks the brokers how many messages of each subscribed topic the group
// has not consumed yet: per topic, the sum over its queues of the broker's
// max offset minus the group's committed offset. The group's retry topic is
// reported under its own name (%RETRY%group) when the brokers know it.
// Committed offsets trail consumption by up to 5 s (the client's commit
// period), so Lag errs high, never low. A subscribed topic for which the
// brokers report no figures (the group never committed an offset there)
// is left out of the map and named in an error wrapping ErrNoLag, with the
// figures of the other topics. Lag uses the consumer's admin connection,
// before Start too; after Stop it returns ErrStopped. Its signature fits rmqotel.WithLagFunc, which turns
// it into a lag gauge.
func (c *Consumer) Lag(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	stopped := c.state == stateStopped
	c.mu.Unlock()
	if stopped {
		return nil, fmt.Errorf("consumer %q: lag: %w", c.group, ErrStopped)
	}
	stats, err := c.adm.ConsumeStats(ctx, c.brokerGroup(), "")
	if err != nil {
		return nil, fmt.Errorf("consumer %q: lag: %w", c.group, err)
	}
	c.mu.Lock()
	topics := slices.Sorted(maps.Keys(c.subs))
	c.mu.Unlock()
	lag := make(map[string]int64, len(topics)+1)
	prefix := c.clientName("")
	for _, q := range stats.Queues {
		lag[strings.TrimPrefix(q.Topic, prefix)] += q.Lag
	}
	var missing []string
	for _, t := range topics {
		if _, ok := lag[t]; !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return lag, fmt.Errorf("consumer %q: lag: %w for %s", c.group, ErrNoLag, strings.Join(missing, ", "))
	}
	return lag, nil
}
