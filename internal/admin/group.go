package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Connection is a client connected to a broker.
type Connection struct {
	ClientID   string // "IP@instance name" for rocketmq-client-go
	ClientAddr string // the client's address as the broker sees it
	Language   string // e.g. "GO", "JAVA"
	Version    int    // the client's protocol version (an MQVersion ordinal)
}

// wireConsumerConnection is ConsumerConnection.java.
type wireConsumerConnection struct {
	ConnectionSet []struct {
		ClientID   string `json:"clientId"`
		ClientAddr string `json:"clientAddr"`
		Language   string `json:"language"`
		Version    int    `json:"version"`
	} `json:"connectionSet"`
}

// ConsumerConnections returns the clients of the consumer group connected to
// the master brokers (GET_CONSUMER_CONNECTION_LIST), one per client id,
// sorted by client id. It returns an empty slice and no error when no
// consumer of the group is online.
func (c *Client) ConsumerConnections(ctx context.Context, group string) (_ []Connection, err error) {
	defer wrap(&err, "connections of group %q", group)
	return fromMasters(ctx, c, reqGetConsumerConnectionList, map[string]string{"consumerGroup": group},
		func(err error) bool { return errors.Is(err, ErrConsumerNotOnline) },
		parseConsumerConnections, func(cn Connection) string { return cn.ClientID })
}

func parseConsumerConnections(body []byte) ([]Connection, error) {
	var w wireConsumerConnection
	if err := decodeJSON(body, &w); err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(w.ConnectionSet))
	for _, cn := range w.ConnectionSet {
		out = append(out, Connection{ClientID: cn.ClientID, ClientAddr: cn.ClientAddr, Language: cn.Language, Version: cn.Version})
	}
	return out, nil
}

// GroupOption sets a field of the subscription group CreateSubscriptionGroup
// creates. Fields not set keep the broker's defaults.
type GroupOption func(*groupConfig)

// groupConfig is the part of SubscriptionGroupConfig.java this package sets.
type groupConfig struct {
	GroupName              string `json:"groupName"`
	ConsumeEnable          bool   `json:"consumeEnable"`
	ConsumeBroadcastEnable bool   `json:"consumeBroadcastEnable"`
	ConsumeMessageOrderly  bool   `json:"consumeMessageOrderly"`
	RetryMaxTimes          int    `json:"retryMaxTimes"`
}

// WithRetryMaxTimes sets how often a message is redelivered before it goes
// to the group's dead letter topic (default 16).
func WithRetryMaxTimes(n int) GroupOption { return func(g *groupConfig) { g.RetryMaxTimes = n } }

// WithBroadcast sets whether the group may consume in broadcasting mode
// (default true).
func WithBroadcast(enable bool) GroupOption {
	return func(g *groupConfig) { g.ConsumeBroadcastEnable = enable }
}

// WithOrderly sets the group's consumeMessageOrderly flag (default false).
func WithOrderly(orderly bool) GroupOption {
	return func(g *groupConfig) { g.ConsumeMessageOrderly = orderly }
}

// CreateSubscriptionGroup creates the subscription group, or updates it, on
// every master broker (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).
func (c *Client) CreateSubscriptionGroup(ctx context.Context, group string, opts ...GroupOption) (err error) {
	defer wrap(&err, "create subscription group %q", group)
	if group == "" {
		return errors.New("empty group name")
	}
	cfg := groupConfig{GroupName: group, ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryMaxTimes: 16}
	for _, opt := range opts {
		opt(&cfg)
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return err
	}
	for _, b := range masters {
		if _, err := c.invoke(ctx, b.MasterAddr(), reqUpdateAndCreateSubscription, nil, body); err != nil {
			return fmt.Errorf("broker %s: %w", b.Name, err)
		}
	}
	return nil
}

// DeleteSubscriptionGroup deletes the subscription group and its consumer
// offsets from every master broker (DELETE_SUBSCRIPTIONGROUP with
// cleanOffset). Deleting a group that does not exist succeeds. A broker that
// auto-creates groups recreates it at the next heartbeat of a consumer of the
// group that is still online.
func (c *Client) DeleteSubscriptionGroup(ctx context.Context, group string) (err error) {
	defer wrap(&err, "delete subscription group %q", group)
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return err
	}
	for _, b := range masters {
		ext := map[string]string{"groupName": group, "cleanOffset": "true"}
		if _, err := c.invoke(ctx, b.MasterAddr(), reqDeleteSubscriptionGroup, ext, nil); err != nil {
			return fmt.Errorf("broker %s: %w", b.Name, err)
		}
	}
	return nil
}

// wireSubscriptionGroups is SubscriptionGroupWrapper.java, in part.
type wireSubscriptionGroups struct {
	SubscriptionGroupTable map[string]json.RawMessage `json:"subscriptionGroupTable"`
}

// SubscriptionGroups returns the names of the subscription groups of all
// master brokers (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), sorted; the brokers'
// own groups (TOOLS_CONSUMER, ...) included.
func (c *Client) SubscriptionGroups(ctx context.Context) (_ []string, err error) {
	defer wrap(&err, "subscription groups")
	return fromMasters(ctx, c, reqGetAllSubscriptionGroup, nil, noSubscriptionGroup,
		parseSubscriptionGroups, func(name string) string { return name })
}

// noSubscriptionGroup reports the answer of a broker that has no
// subscription group at all.
func noSubscriptionGroup(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.Code == codeSystemError && strings.Contains(re.Remark, "No subscription group")
}

// fromMasters sends the same request to every master broker and merges the
// answers: a broker whose error skip accepts is passed over, items are
// deduplicated by key (the first broker by name wins) and sorted by key.
func fromMasters[T any](ctx context.Context, c *Client, code int, ext map[string]string,
	skip func(error) bool, parse func([]byte) ([]T, error), key func(T) string) ([]T, error) {
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return nil, err
	}
	out := []T{}
	seen := make(map[string]bool)
	for _, b := range masters {
		resp, err := c.invoke(ctx, b.MasterAddr(), code, ext, nil)
		if err != nil && skip(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		items, err := parse(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		for _, it := range items {
			if k := key(it); !seen[k] {
				seen[k] = true
				out = append(out, it)
			}
		}
	}
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out, nil
}

func parseSubscriptionGroups(body []byte) ([]string, error) {
	var w wireSubscriptionGroups
	if err := decodeJSON(body, &w); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(w.SubscriptionGroupTable))
	for name := range w.SubscriptionGroupTable {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
