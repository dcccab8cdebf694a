package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// responseNoPermission is the broker's answer to refused credentials.
const responseNoPermission = 16

// checkAccess makes one signed request per broker of the first
// subscription's topic, so that refused credentials fail Start with an
// error naming the cause; the client itself would only log them, long
// after. Other failures (a broker down, a topic not created yet) are only
// logged: the client recovers from those on its own.
func (c *Consumer) checkAccess(ctx context.Context) error {
	cr := c.cfg.credentials
	if cr == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := c.adm
	topic, group := c.clientName(c.topicsLocked()[0]), c.brokerGroup()
	route, err := adm.TopicRoute(ctx, topic)
	if err != nil {
		c.cfg.logger.Warn("rmqkit access check skipped", "group", c.group, "topic", topic, "error", err)
		return nil
	}
	seen := map[string]bool{}
	for _, mq := range route.MessageQueues() {
		if seen[mq.BrokerName] {
			continue
		}
		seen[mq.BrokerName] = true
		_, err := adm.ConsumerOffset(ctx, group, mq)
		var re *admin.ResponseError
		switch {
		case err == nil, errors.Is(err, admin.ErrNotFound):
		case errors.As(err, &re) && re.Code == responseNoPermission:
			return fmt.Errorf("%w: broker %s (%s) refused access key %q: %s",
				ErrAccessDenied, mq.BrokerName, re.Addr, cr.AccessKey, re.Remark)
		default:
			c.cfg.logger.Warn("rmqkit access check inconclusive", "group", c.group, "broker", mq.BrokerName, "error", err)
		}
	}
	return nil
}
