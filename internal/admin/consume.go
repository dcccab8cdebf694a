package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Request codes used only in this file (RequestCode.java).
const (
	reqConsumerSendMsgBack = 36
	reqUnlockBatchMQ       = 42
)

// SendBack describes one message a consumer hands back to the broker for
// redelivery through the group's retry topic, or to the dead-letter queue.
type SendBack struct {
	Group       string // the consumer group as the broker knows it (namespaced)
	BrokerName  string // the broker the message was pulled from
	StoreHost   string // the address of the broker that stored it; used when BrokerName has no known master
	CommitLog   int64  // the message's commit log offset on that broker
	OriginMsgID string // the message id
	OriginTopic string // the topic the message was consumed as (the real topic, not the retry topic)
	// DelayLevel 0 lets the broker choose (3 + reconsume times); a
	// negative level sends the message to the dead-letter queue at once.
	DelayLevel int
	// MaxReconsumeTimes is the group's retry budget for this message: the
	// broker dead-letters a message whose reconsume times reached it.
	MaxReconsumeTimes int
}

// SendMessageBack asks the broker that holds the message to redeliver it
// later (CONSUMER_SEND_MSG_BACK), exactly as a push consumer does for a
// failed message, but with the caller's retry budget and delay. The broker
// copies the message into %RETRY%group (or %DLQ%group once it is exhausted);
// the caller may then acknowledge the original.
func (c *Client) SendMessageBack(ctx context.Context, sb SendBack) (err error) {
	defer wrap(&err, "send back message %s of group %q", sb.OriginMsgID, sb.Group)
	addr, err := c.brokerAddr(ctx, sb.BrokerName)
	if err != nil {
		if sb.StoreHost == "" {
			return err
		}
		addr = sb.StoreHost
	}
	ext := map[string]string{
		"group":             sb.Group,
		"offset":            strconv.FormatInt(sb.CommitLog, 10),
		"delayLevel":        strconv.Itoa(sb.DelayLevel),
		"originMsgId":       sb.OriginMsgID,
		"originTopic":       sb.OriginTopic,
		"unitMode":          "false",
		"maxReconsumeTimes": strconv.Itoa(sb.MaxReconsumeTimes),
		"bname":             sb.BrokerName,
	}
	_, err = c.invoke(ctx, addr, reqConsumerSendMsgBack, ext, nil)
	return err
}

// UnlockQueues releases the broker's orderly-consumption locks that clientID
// holds on the queues (UNLOCK_BATCH_MQ), all of one broker. A consumer
// that gives up a queue at a rebalance should do this, so that the queue's
// new owner can lock it at once instead of waiting for the lock to expire.
func (c *Client) UnlockQueues(ctx context.Context, group, clientID string, mqs []MessageQueue) (err error) {
	if len(mqs) == 0 {
		return nil
	}
	defer wrap(&err, "unlock %d queues of group %q on broker %s", len(mqs), group, mqs[0].BrokerName)
	addr, err := c.brokerAddr(ctx, mqs[0].BrokerName)
	if err != nil {
		return err
	}
	type wireMQ struct {
		Topic      string `json:"topic"`
		BrokerName string `json:"brokerName"`
		QueueID    int    `json:"queueId"`
	}
	body := struct {
		ConsumerGroup string   `json:"consumerGroup"`
		ClientID      string   `json:"clientId"`
		MQSet         []wireMQ `json:"mqSet"`
	}{ConsumerGroup: group, ClientID: clientID}
	for _, mq := range mqs {
		if mq.BrokerName != mqs[0].BrokerName {
			return fmt.Errorf("queue %s is on another broker than %s", mq, mqs[0].BrokerName)
		}
		body.MQSet = append(body.MQSet, wireMQ{Topic: mq.Topic, BrokerName: mq.BrokerName, QueueID: mq.QueueID})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = c.invoke(ctx, addr, reqUnlockBatchMQ, nil, b)
	return err
}

// brokerAddr returns the master address of the broker named name, from a
// cache filled from the name server's cluster info; a name the cache does
// not know (a broker added since) refreshes it once.
func (c *Client) brokerAddr(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	addr, ok := c.masters[name]
	c.mu.Unlock()
	if ok {
		return addr, nil
	}
	ci, err := c.clusterInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("cluster info: %w", err)
	}
	m := make(map[string]string, len(ci.Brokers))
	for n, b := range ci.Brokers {
		if a := b.MasterAddr(); a != "" {
			m[n] = a
		}
	}
	c.mu.Lock()
	c.masters = m
	c.mu.Unlock()
	if addr, ok := m[name]; ok {
		return addr, nil
	}
	return "", fmt.Errorf("the name server knows no master of broker %q: %w", name, ErrNotFound)
}

// ClientGone reports whether a client the broker lists in group is
// certainly gone. The broker can keep listing a client whose connection has
// closed for up to 2 minutes; asked for its running info, the broker then
// fails to write to that connection, and a client that is alive but no
// longer runs a consumer of the group says so. Anything else, a timeout
// included (a machine that died leaves a connection that accepts writes),
// counts as alive.
func (c *Client) ClientGone(ctx context.Context, group, clientID string) bool {
	_, err := c.ConsumerRunningInfo(ctx, group, clientID)
	return Gone(err)
}

// Gone reports whether err, from ConsumerRunningInfo, proves the client
// gone (see ClientGone).
func Gone(err error) bool {
	var re *ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, gone := range [...]string{
		"RemotingSendRequestException",         // broker: the connection is closed
		"Can't find specified client instance", // rocketmq-client-go after Shutdown
		"not exist in this consumer",           // Java client without that group
	} {
		if strings.Contains(re.Remark, gone) {
			return true
		}
	}
	return false
}
