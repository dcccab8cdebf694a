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

// Permission bits of a topic or broker (PermName.java).
const (
	PermInherit = 1 << 0
	PermWrite   = 1 << 1
	PermRead    = 1 << 2
)

// TopicRoute is the route of a topic as the name server has it.
type TopicRoute struct {
	Topic string
	// Queues has one entry per broker that serves the topic, sorted by broker
	// name.
	Queues []QueueData
	// Brokers are the brokers of Queues, sorted by name.
	Brokers []Broker
	// OrderTopicConf is the name server's ordered-topic configuration
	// ("brokerName:queueNums;..."); empty unless the name server runs with
	// orderMessageEnable and has one for the topic.
	OrderTopicConf string
}

// QueueData is the queues of a topic on one broker.
type QueueData struct {
	BrokerName  string
	ReadQueues  int // number of queues consumers read
	WriteQueues int // number of queues producers write
	Perm        int // PermRead | PermWrite | PermInherit bits
	SysFlag     int // topic system flags (TopicSysFlag.java); 0 for plain topics
}

// MessageQueues returns the readable queues of the route, sorted by broker
// name and queue id.
func (r TopicRoute) MessageQueues() []MessageQueue {
	var out []MessageQueue
	for _, q := range r.Queues {
		for i := range q.ReadQueues {
			out = append(out, MessageQueue{Topic: r.Topic, BrokerName: q.BrokerName, QueueID: i})
		}
	}
	return out
}

// TopicConfig is the configuration of a topic on a broker.
type TopicConfig struct {
	Topic       string
	BrokerName  string // the broker the configuration comes from
	ReadQueues  int
	WriteQueues int
	Perm        int               // PermRead | PermWrite | PermInherit bits
	Order       bool              // the order flag of CreateTopic
	SysFlag     int               // topic system flags; 0 for plain topics
	FilterType  string            // "SINGLE_TAG" or "MULTI_TAG"
	Attributes  map[string]string // e.g. "+message.type": "FIFO"; often empty
}

// wireQueueData is QueueData.java.
type wireQueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

// wireTopicRoute is TopicRouteData.java.
type wireTopicRoute struct {
	OrderTopicConf string           `json:"orderTopicConf"`
	QueueDatas     []wireQueueData  `json:"queueDatas"`
	BrokerDatas    []wireBrokerData `json:"brokerDatas"`
}

// wireTopicConfig is TopicConfig.java.
type wireTopicConfig struct {
	TopicName       string            `json:"topicName"`
	ReadQueueNums   int               `json:"readQueueNums"`
	WriteQueueNums  int               `json:"writeQueueNums"`
	Perm            int               `json:"perm"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicSysFlag    int               `json:"topicSysFlag"`
	Order           bool              `json:"order"`
	Attributes      map[string]string `json:"attributes"`
}

// TopicRoute returns the route of topic (GET_ROUTEINFO_BY_TOPIC); an error
// matching ErrNotFound when the name server has none.
func (c *Client) TopicRoute(ctx context.Context, topic string) (_ TopicRoute, err error) {
	defer wrap(&err, "route of topic %q", topic)
	return c.topicRoute(ctx, topic)
}

func (c *Client) topicRoute(ctx context.Context, topic string) (TopicRoute, error) {
	resp, err := c.invokeNameServer(ctx, reqGetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if err != nil {
		return TopicRoute{}, err
	}
	return parseTopicRoute(topic, resp.Body)
}

func parseTopicRoute(topic string, body []byte) (TopicRoute, error) {
	var w wireTopicRoute
	if err := decodeJSON(body, &w); err != nil {
		return TopicRoute{}, err
	}
	r := TopicRoute{Topic: topic, OrderTopicConf: w.OrderTopicConf}
	for _, q := range w.QueueDatas {
		r.Queues = append(r.Queues, QueueData{
			BrokerName:  q.BrokerName,
			ReadQueues:  q.ReadQueueNums,
			WriteQueues: q.WriteQueueNums,
			Perm:        q.Perm,
			SysFlag:     q.TopicSysFlag,
		})
	}
	for _, b := range w.BrokerDatas {
		r.Brokers = append(r.Brokers, b.broker())
	}
	slices.SortFunc(r.Queues, func(a, b QueueData) int { return strings.Compare(a.BrokerName, b.BrokerName) })
	slices.SortFunc(r.Brokers, func(a, b Broker) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

// TopicConfig returns the configuration of topic on the first master broker
// (by name) of its route (GET_TOPIC_CONFIG): the queue counts and the order
// flag given to CreateTopic.
func (c *Client) TopicConfig(ctx context.Context, topic string) (_ TopicConfig, err error) {
	defer wrap(&err, "config of topic %q", topic)
	route, err := c.topicRoute(ctx, topic)
	if err != nil {
		return TopicConfig{}, fmt.Errorf("route: %w", err)
	}
	for _, b := range route.Brokers {
		addr := b.MasterAddr()
		if addr == "" {
			continue
		}
		resp, err := c.invoke(ctx, addr, reqGetTopicConfig, map[string]string{"topic": topic}, nil)
		if err != nil {
			return TopicConfig{}, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		var w wireTopicConfig
		if err := decodeJSON(resp.Body, &w); err != nil {
			return TopicConfig{}, fmt.Errorf("broker %s: %w", b.Name, err)
		}
		return TopicConfig{
			Topic:       w.TopicName,
			BrokerName:  b.Name,
			ReadQueues:  w.ReadQueueNums,
			WriteQueues: w.WriteQueueNums,
			Perm:        w.Perm,
			Order:       w.Order,
			SysFlag:     w.TopicSysFlag,
			FilterType:  w.TopicFilterType,
			Attributes:  w.Attributes,
		}, nil
	}
	return TopicConfig{}, fmt.Errorf("no master broker in its route: %w", ErrNotFound)
}

// routePollInterval is how often CreateTopic asks for the route.
const routePollInterval = 100 * time.Millisecond

// CreateTopic creates topic, or updates it, with queues read and write
// queues on every master broker the name server knows
// (UPDATE_AND_CREATE_TOPIC), then waits until the name server routes it to
// all of them with that many queues. ordered sets the order flag of the
// topic's config (TopicConfig shows it); it does not write the name server's
// ORDER_TOPIC_CONFIG entry that `mqadmin updateTopic -o true` also writes.
//
// A broker that refuses (an invalid topic name, a system topic) makes it
// return a *ResponseError with the broker's remark. The wait ends with ctx;
// without a deadline in ctx, after ten times the request timeout.
func (c *Client) CreateTopic(ctx context.Context, topic string, queues int, ordered bool) (err error) {
	defer wrap(&err, "create topic %q", topic)
	if queues <= 0 {
		return fmt.Errorf("queues must be positive, got %d", queues)
	}
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return err
	}
	for _, b := range masters {
		ext := map[string]string{
			"topic":           topic,
			"defaultTopic":    "TBW102", // TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC
			"readQueueNums":   strconv.Itoa(queues),
			"writeQueueNums":  strconv.Itoa(queues),
			"perm":            strconv.Itoa(PermRead | PermWrite),
			"topicFilterType": "SINGLE_TAG",
			"topicSysFlag":    "0",
			"order":           strconv.FormatBool(ordered),
		}
		if _, err := c.invoke(ctx, b.MasterAddr(), reqUpdateAndCreateTopic, ext, nil); err != nil {
			return fmt.Errorf("broker %s: %w", b.Name, err)
		}
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*c.opts.timeout)
		defer cancel()
	}
	for {
		route, err := c.topicRoute(ctx, topic)
		if err == nil && routesAll(route, masters, queues) {
			return nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("waiting for its route: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for its route: %w", ctx.Err())
		case <-time.After(routePollInterval):
		}
	}
}

// routesAll reports whether route has queues queues on every broker of brokers.
func routesAll(route TopicRoute, brokers []Broker, queues int) bool {
	for _, b := range brokers {
		i := slices.IndexFunc(route.Queues, func(q QueueData) bool { return q.BrokerName == b.Name })
		if i < 0 || route.Queues[i].ReadQueues != queues || route.Queues[i].WriteQueues != queues {
			return false
		}
	}
	return true
}

// DeleteTopic deletes topic from every master broker (DELETE_TOPIC_IN_BROKER,
// which also drops its messages and consumer offsets) and then from every
// name server (DELETE_TOPIC_IN_NAMESRV). Deleting a topic that does not exist
// succeeds.
func (c *Client) DeleteTopic(ctx context.Context, topic string) (err error) {
	defer wrap(&err, "delete topic %q", topic)
	masters, err := c.masterBrokers(ctx)
	if err != nil {
		return err
	}
	for _, b := range masters {
		if _, err := c.invoke(ctx, b.MasterAddr(), reqDeleteTopicInBroker, map[string]string{"topic": topic}, nil); err != nil {
			return fmt.Errorf("broker %s: %w", b.Name, err)
		}
	}
	var errs []error
	for _, addr := range c.nameServers {
		if _, err := c.invoke(ctx, addr, reqDeleteTopicInNamesrv, map[string]string{"topic": topic}, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
