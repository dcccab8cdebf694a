package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request codes used only in this file (RequestCode.java).
const (
	reqUpdateConsumerOffset    = 15
	reqSearchOffsetByTimestamp = 29
)

// UpdateConsumerOffset commits offset as group's consumer offset of the queue
// (UPDATE_CONSUMER_OFFSET) on the queue's master broker, as a consumer does.
// A consumer of the group that is online keeps its own offset in memory and
// overwrites this one at its next commit: set offsets of a group whose
// consumers are offline. The broker refuses a group it does not know unless
// it auto-creates subscription groups.
func (c *Client) UpdateConsumerOffset(ctx context.Context, group string, mq MessageQueue, offset int64) (err error) {
	defer wrap(&err, "update offset of group %q on %s", group, mq)
	addr, err := c.masterAddr(ctx, mq.BrokerName)
	if err != nil {
		return err
	}
	ext := map[string]string{
		"consumerGroup": group,
		"topic":         mq.Topic,
		"queueId":       strconv.Itoa(mq.QueueID),
		"commitOffset":  strconv.FormatInt(offset, 10),
		"bname":         mq.BrokerName,
	}
	_, err = c.invoke(ctx, addr, reqUpdateConsumerOffset, ext, nil)
	return err
}

// SearchOffset returns the offset of the first message of the queue stored at
// or after t (SEARCH_OFFSET_BY_TIMESTAMP); the queue's max offset when every
// message is older, its min offset when every message is newer.
func (c *Client) SearchOffset(ctx context.Context, mq MessageQueue, t time.Time) (int64, error) {
	ext := map[string]string{"timestamp": strconv.FormatInt(t.UnixMilli(), 10)}
	return c.queueOffset(ctx, "offset at "+t.UTC().Format(time.RFC3339Nano), reqSearchOffsetByTimestamp, mq, ext)
}

// GroupConfig is the part of a subscription group's configuration
// (SubscriptionGroupConfig.java) that SubscriptionGroupConfigs reports.
type GroupConfig struct {
	Name                   string
	ConsumeEnable          bool
	ConsumeBroadcastEnable bool
	ConsumeMessageOrderly  bool
	RetryMaxTimes          int
}

// SubscriptionGroupConfigs returns the subscription groups of all master
// brokers with their configuration (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), sorted
// by name; a group on several brokers is listed once, with the configuration
// of the first broker by name.
func (c *Client) SubscriptionGroupConfigs(ctx context.Context) (_ []GroupConfig, err error) {
	defer wrap(&err, "subscription group configs")
	return fromMasters(ctx, c, reqGetAllSubscriptionGroup, nil, noSubscriptionGroup,
		parseGroupConfigs, func(g GroupConfig) string { return g.Name })
}

type wireGroupConfig struct {
	GroupName              string `json:"groupName"`
	ConsumeEnable          bool   `json:"consumeEnable"`
	ConsumeBroadcastEnable bool   `json:"consumeBroadcastEnable"`
	ConsumeMessageOrderly  bool   `json:"consumeMessageOrderly"`
	RetryMaxTimes          int    `json:"retryMaxTimes"`
}

func parseGroupConfigs(body []byte) ([]GroupConfig, error) {
	var w struct {
		SubscriptionGroupTable map[string]wireGroupConfig `json:"subscriptionGroupTable"`
	}
	if err := decodeJSON(body, &w); err != nil {
		return nil, err
	}
	out := make([]GroupConfig, 0, len(w.SubscriptionGroupTable))
	for name, g := range w.SubscriptionGroupTable {
		out = append(out, GroupConfig{
			Name:                   name,
			ConsumeEnable:          g.ConsumeEnable,
			ConsumeBroadcastEnable: g.ConsumeBroadcastEnable,
			ConsumeMessageOrderly:  g.ConsumeMessageOrderly,
			RetryMaxTimes:          g.RetryMaxTimes,
		})
	}
	slices.SortFunc(out, func(a, b GroupConfig) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// reqGetConsumerRunningInfo is GET_CONSUMER_RUNNING_INFO.
const reqGetConsumerRunningInfo = 307

// ConsumerRunningInfo asks the client clientID, through a master broker it
// is connected to, for its running info as a consumer of group
// (GET_CONSUMER_RUNNING_INFO, which the broker relays over the client's own
// connection), and returns the body of its answer (JSON). It tells a live
// client from one the broker still lists but that no longer runs a consumer
// of the group: that one answers with an error, returned as a
// *ResponseError with the client's remark (rocketmq-client-go: "Can't find
// specified client instance ..."; the Java client: "... not exist in this
// consumer"). A client that does not answer in time gives a *ResponseError
// from the broker, or a timeout.
func (c *Client) ConsumerRunningInfo(ctx context.Context, group, clientID string) (_ []byte, err error) {
	defer wrap(&err, "running info of client %q in group %q", clientID, group)
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return nil, err
	}
	var last error
	for _, b := range masters {
		ext := map[string]string{"consumerGroup": group, "clientId": clientID, "jstackEnable": "false"}
		resp, err := c.invoke(ctx, b.MasterAddr(), reqGetConsumerRunningInfo, ext, nil)
		if notOnline(err) {
			last = err // not connected to this broker
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		return resp.Body, nil
	}
	return nil, last
}

// notOnline reports an answer meaning the client is not connected to this
// broker: CONSUMER_NOT_ONLINE, or, from a broker of a cluster with several
// masters that has never seen the client, SYSTEM_ERROR "The Consumer <group>
// <id> not online".
func notOnline(err error) bool {
	if errors.Is(err, ErrConsumerNotOnline) {
		return true
	}
	var re *ResponseError
	return errors.As(err, &re) && re.Code == codeSystemError && strings.Contains(re.Remark, "not online")
}
