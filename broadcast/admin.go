package broadcast

import (
	"context"
	"time"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// adminAPI is what this package asks the broker, through internal/admin; a
// fake stands in for it in unit tests.
type adminAPI interface {
	gcAdmin
	CreateSubscriptionGroup(ctx context.Context, group string, opts ...admin.GroupOption) error
	TopicRoute(ctx context.Context, topic string) (admin.TopicRoute, error)
	CreateTopic(ctx context.Context, topic string, queues int, ordered bool) error
	ConsumerOffset(ctx context.Context, group string, mq admin.MessageQueue) (int64, error)
	MaxOffset(ctx context.Context, mq admin.MessageQueue) (int64, error)
	SearchOffset(ctx context.Context, mq admin.MessageQueue, t time.Time) (int64, error)
	UpdateConsumerOffset(ctx context.Context, group string, mq admin.MessageQueue, offset int64) error
	Close() error
}

// gcAdmin is the part of adminAPI that garbage collection uses.
type gcAdmin interface {
	SubscriptionGroupConfigs(ctx context.Context) ([]admin.GroupConfig, error)
	ConsumerConnections(ctx context.Context, group string) ([]admin.Connection, error)
	ConsumeStats(ctx context.Context, group, topic string) (admin.ConsumeStats, error)
	DeleteSubscriptionGroup(ctx context.Context, group string) error
	DeleteTopic(ctx context.Context, topic string) error
	ConsumerRunningInfo(ctx context.Context, group, clientID string) ([]byte, error)
}

func newAdminClient(cfg *config) (adminAPI, error) {
	var opts []admin.Option
	if cfg.conn.AccessKey != "" {
		opts = append(opts, admin.WithCredentials(cfg.conn.AccessKey, cfg.conn.SecretKey))
	}
	return admin.New(cfg.conn.NameServers, opts...)
}
