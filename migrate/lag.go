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
	group, topic string
	clients      [2]*admin.Client
}

func newAdminLag(group, topic string, clusters [2]Cluster) (*adminLag, error) {
	a := &adminLag{group: group, topic: topic}
	for i, c := range clusters {
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
	c := a.clients[side]
	ts, err := c.ConsumeStats(ctx, a.group, a.topic)
	if err != nil {
		return reading{}, err
	}
	if len(ts.Queues) == 0 {
		// A topic the brokers do not have, or one the group's online
		// consumers do not subscribe to yet: nothing is known.
		return reading{}, fmt.Errorf("%w: %q on the %s cluster (group %q)", ErrTopicNotFound, a.topic, side, a.group)
	}
	// The retry topic exists once the group has a consumer there; until
	// then its stats are empty, which is no lag.
	rs, err := c.ConsumeStats(ctx, a.group, "%RETRY%"+a.group)
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
