package broadcast

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// A new instance must start where WithStartTime says, and a restarted one
// where it left off. The client's own start position cannot do the first:
// it applies only when the broker has no offset for a queue, and a RocketMQ
// broker answers a group it has never seen with offset 0 (the whole queue)
// as long as the queue's first message is still in its page cache, whatever
// the client asked for. So Start commits the start offsets of a new group
// itself, queue by queue, before the client starts; queues that have an
// offset (a restart) are left alone. The consumer is then configured to read
// queues without an offset from their beginning: those are queues created
// after the instance's first start (a topic given more queues) and its retry
// queue, whose messages are all meant for this instance.

// initOffsets commits the start offset of every queue of topics that group
// has no offset for, and returns how many it committed. group and topics are
// broker-side names.
func initOffsets(ctx context.Context, adm adminAPI, group string, topics []string, startAt time.Time) (int, error) {
	n := 0
	for _, topic := range topics {
		route, err := adm.TopicRoute(ctx, topic)
		if err != nil {
			return n, fmt.Errorf("route of topic %q: %w", topic, err)
		}
		for _, mq := range route.MessageQueues() {
			_, err := adm.ConsumerOffset(ctx, group, mq)
			if err == nil {
				continue // committed before: a restart resumes from it
			}
			if !errors.Is(err, admin.ErrNotFound) {
				return n, err
			}
			var off int64
			if startAt.IsZero() {
				off, err = adm.MaxOffset(ctx, mq)
			} else {
				off, err = adm.SearchOffset(ctx, mq, startAt)
			}
			if err != nil {
				return n, err
			}
			if err := adm.UpdateConsumerOffset(ctx, group, mq, off); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
