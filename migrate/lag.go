package migrate

import (
	"context"
	"fmt"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// lagSource reads the group's consume stats on one side.
type lagSource interface {
	read(ctx context.Context, side Side) (reading, error)
	close()
}

// adminLag reads consume stats with the remoting admin client of each
// cluster.
type adminLag struct {
	names   [2]names // as each cluster's broker knows them
	clients [2]*admin.Client
}

// names are a subscription's group, topic and retry topic as one cluster's
// broker knows them.
type names struct{ group, topic, retry string }

func brokerNames(c Cluster, group, topic string) names {
	return names{group: c.Qualify(group), topic: c.Qualify(topic), retry: "%RETRY%" + c.Qualify(group)}
}

func newAdminLag(group, topic string, clusters [2]Cluster) (*adminLag, error) {
	a := &adminLag{}
	for i, c := range clusters {
		a.names[i] = brokerNames(c, group, topic)
		var opts []admin.Option
		if c.AccessKey != "" {
			opts = append(opts, admin.WithCredentials(c.AccessKey, c.SecretKey))
		}
		cl, err := admin.New(c.NameServers, opts...)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("%w: %s cluster: %w", ErrInvalidOption, Side(i), err)
		}
		a.clients[i] = cl
	}
	return a, nil
}

func (a *adminLag) read(ctx context.Context, side Side) (reading, error) {
	c, n := a.clients[side], a.names[side]
	ts, err := c.ConsumeStats(ctx, n.group, n.topic)
	if err != nil {
		return reading{}, err
	}
	if len(ts.Queues) == 0 {
		// A topic the brokers do not have, or one the group's online
		// consumers do not subscribe to yet: nothing is known.
		return reading{}, fmt.Errorf("%w: %q on the %s cluster (group %q)", ErrTopicNotFound, n.topic, side, n.group)
	}
	// The retry topic exists once the group has a consumer there; until
	// then its stats are empty, which is no lag.
	rs, err := c.ConsumeStats(ctx, n.group, n.retry)
	if err != nil {
		return reading{}, err
	}
	r := reading{topicLag: ts.TotalLag, retryLag: rs.TotalLag}
	for _, q := range ts.Queues {
		r.stored += q.BrokerOffset
	}
	for _, q := range rs.Queues {
		r.stored += q.BrokerOffset
	}
	return r, nil
}

func (a *adminLag) close() {
	for _, c := range a.clients {
		if c != nil {
			_ = c.Close()
		}
	}
}
