package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MessageQueue identifies one queue of a topic on a broker.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"` // 0 to the topic's queue count - 1
}

// String returns "topic@broker#queue".
func (q MessageQueue) String() string {
	return q.Topic + "@" + q.BrokerName + "#" + strconv.Itoa(q.QueueID)
}

func compareQueues(a, b MessageQueue) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	if c := strings.Compare(a.BrokerName, b.BrokerName); c != 0 {
		return c
	}
	return a.QueueID - b.QueueID
}

// ConsumeStats is the progress of a consumer group.
type ConsumeStats struct {
	// Queues, sorted by topic, broker name and queue id.
	Queues []QueueStats
	// TotalLag is the sum of the queues' Lag.
	TotalLag int64
	// ConsumeTPS is the rate at which the group pulls messages, as the
	// brokers measure it.
	ConsumeTPS float64
}

// QueueStats is the progress of a consumer group on one queue.
type QueueStats struct {
	MessageQueue
	// BrokerOffset is the queue's max offset: the offset of the next
	// message to be stored.
	BrokerOffset int64
	// ConsumerOffset is the group's committed offset (0 when it has none).
	ConsumerOffset int64
	// PullOffset is the offset the group pulled up to, as the broker knows it.
	PullOffset int64
	// Lag is BrokerOffset - ConsumerOffset, or 0 if that is negative.
	Lag int64
	// LastTimestamp is the store time of the last consumed message; zero when
	// unknown.
	LastTimestamp time.Time
}

// wireConsumeStats is ConsumeStats.java; offsetTable keys are MessageQueue
// objects (see standardJSON).
type wireConsumeStats struct {
	ConsumeTps  float64                      `json:"consumeTps"`
	OffsetTable map[string]wireOffsetWrapper `json:"offsetTable"`
}

// wireOffsetWrapper is OffsetWrapper.java.
type wireOffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	PullOffset     int64 `json:"pullOffset"`
	LastTimestamp  int64 `json:"lastTimestamp"`
}

// ConsumeStats returns the offsets and lag of group on topic, from every
// master broker (GET_CONSUME_STATS). When topic is "", it covers every topic
// the group has committed offsets for, its retry topic %RETRY%group included
// once it has one there; while consumers of the group are online, the broker
// leaves out topics they do not subscribe to. A topic the brokers do not have
// gives empty stats; a topic without offsets of the group gives consumer
// offsets 0, so its whole content is lag.
func (c *Client) ConsumeStats(ctx context.Context, group, topic string) (_ ConsumeStats, err error) {
	defer wrap(&err, "consume stats of group %q", group)
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return ConsumeStats{}, err
	}
	var stats ConsumeStats
	for _, b := range masters {
		ext := map[string]string{"consumerGroup": group}
		if topic != "" {
			ext["topic"] = topic
		}
		resp, err := c.invoke(ctx, b.MasterAddr(), reqGetConsumeStats, ext, nil)
		if err != nil {
			return ConsumeStats{}, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		part, err := parseConsumeStats(resp.Body)
		if err != nil {
			return ConsumeStats{}, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		stats.Queues = append(stats.Queues, part.Queues...)
		stats.TotalLag += part.TotalLag
		stats.ConsumeTPS += part.ConsumeTPS
	}
	slices.SortFunc(stats.Queues, func(a, b QueueStats) int { return compareQueues(a.MessageQueue, b.MessageQueue) })
	return stats, nil
}

func parseConsumeStats(body []byte) (ConsumeStats, error) {
	var w wireConsumeStats
	if err := decodeJSON(body, &w); err != nil {
		return ConsumeStats{}, err
	}
	stats := ConsumeStats{ConsumeTPS: w.ConsumeTps}
	for key, o := range w.OffsetTable {
		var mq MessageQueue
		if err := json.Unmarshal([]byte(key), &mq); err != nil {
			return ConsumeStats{}, fmt.Errorf("decode message queue %s: %w", key, err)
		}
		q := QueueStats{
			MessageQueue:   mq,
			BrokerOffset:   o.BrokerOffset,
			ConsumerOffset: o.ConsumerOffset,
			PullOffset:     o.PullOffset,
			Lag:            max(o.BrokerOffset-o.ConsumerOffset, 0),
		}
		if o.LastTimestamp > 0 {
			q.LastTimestamp = time.UnixMilli(o.LastTimestamp)
		}
		stats.Queues = append(stats.Queues, q)
		stats.TotalLag += q.Lag
	}
	slices.SortFunc(stats.Queues, func(a, b QueueStats) int { return compareQueues(a.MessageQueue, b.MessageQueue) })
	return stats, nil
}

// MaxOffset returns the max offset of the queue (GET_MAX_OFFSET): the
// offset the next message stored in it will get.
func (c *Client) MaxOffset(ctx context.Context, mq MessageQueue) (int64, error) {
	return c.queueOffset(ctx, "max offset", reqGetMaxOffset, mq, nil)
}

// MinOffset returns the min offset of the queue (GET_MIN_OFFSET): the
// offset of its oldest message still stored.
func (c *Client) MinOffset(ctx context.Context, mq MessageQueue) (int64, error) {
	return c.queueOffset(ctx, "min offset", reqGetMinOffset, mq, nil)
}

// ConsumerOffset returns the offset group committed for the queue
// (QUERY_CONSUMER_OFFSET); an error matching ErrNotFound when it has none.
func (c *Client) ConsumerOffset(ctx context.Context, group string, mq MessageQueue) (int64, error) {
	ext := map[string]string{"consumerGroup": group, "setZeroIfNotFound": "false"}
	return c.queueOffset(ctx, "offset of group "+strconv.Quote(group), reqQueryConsumerOffset, mq, ext)
}

func (c *Client) queueOffset(ctx context.Context, what string, code int, mq MessageQueue, ext map[string]string) (_ int64, err error) {
	defer wrap(&err, "%s of %s", what, mq)
	addr, err := c.masterAddr(ctx, mq.BrokerName)
	if err != nil {
		return 0, err
	}
	if ext == nil {
		ext = make(map[string]string)
	}
	ext["topic"] = mq.Topic
	ext["queueId"] = strconv.Itoa(mq.QueueID)
	resp, err := c.invoke(ctx, addr, code, ext, nil)
	if err != nil {
		return 0, err
	}
	off, err := strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the response has no offset: %w", err)
	}
	return off, nil
}
