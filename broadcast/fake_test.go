package broadcast

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// fakeAdmin is an in-memory broker for the admin calls this package makes.
type fakeAdmin struct {
	mu      sync.Mutex
	groups  map[string]admin.GroupConfig
	conns   map[string][]admin.Connection
	connErr map[string]error
	// connSeq, when set for a group, gives the connection lists of its
	// successive ConsumerConnections calls (the last one repeats).
	connSeq  map[string][][]admin.Connection
	progress map[string]int64 // sum of committed offsets, per group
	routes   map[string]admin.TopicRoute
	offsets  map[string]int64 // group|queue -> committed offset
	max      map[admin.MessageQueue]int64
	atTime   map[admin.MessageQueue]int64 // SearchOffset answer

	deletedGroups []string
	deletedTopics []string
	created       []string
	createdOpts   map[string]int // group -> number of options given
	connCalls     map[string]int
	closed        bool
	// runningInfo answers ConsumerRunningInfo by client id; a client not in
	// it answers with its running info (alive).
	runningInfo map[string]error
}

func newFakeAdmin() *fakeAdmin {
	return &fakeAdmin{
		groups:      map[string]admin.GroupConfig{},
		conns:       map[string][]admin.Connection{},
		connErr:     map[string]error{},
		connSeq:     map[string][][]admin.Connection{},
		progress:    map[string]int64{},
		routes:      map[string]admin.TopicRoute{},
		offsets:     map[string]int64{},
		max:         map[admin.MessageQueue]int64{},
		atTime:      map[admin.MessageQueue]int64{},
		createdOpts: map[string]int{},
		connCalls:   map[string]int{},
		runningInfo: map[string]error{},
	}
}

// addGroup adds a subscription group; marked groups are instance groups.
func (f *fakeAdmin) addGroup(name string, marked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[name] = admin.GroupConfig{Name: name, ConsumeEnable: true, ConsumeBroadcastEnable: !marked, RetryMaxTimes: 16}
}

func (f *fakeAdmin) setConns(group string, clientIDs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[group] = nil
	for _, id := range clientIDs {
		f.conns[group] = append(f.conns[group], admin.Connection{ClientID: id, ClientAddr: "10.0.0.9:4242", Language: "GO"})
	}
}

func (f *fakeAdmin) SubscriptionGroupConfigs(context.Context) ([]admin.GroupConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []admin.GroupConfig
	for _, g := range f.groups {
		out = append(out, g)
	}
	return out, nil
}

func (f *fakeAdmin) ConsumerConnections(_ context.Context, group string) ([]admin.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connCalls[group]++
	if err := f.connErr[group]; err != nil {
		return nil, err
	}
	if seq := f.connSeq[group]; len(seq) > 0 {
		cur := seq[0]
		if len(seq) > 1 {
			f.connSeq[group] = seq[1:]
		}
		return cur, nil
	}
	return append([]admin.Connection{}, f.conns[group]...), nil
}

func (f *fakeAdmin) ConsumeStats(_ context.Context, group, _ string) (admin.ConsumeStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return admin.ConsumeStats{Queues: []admin.QueueStats{{ConsumerOffset: f.progress[group]}}}, nil
}

func (f *fakeAdmin) DeleteSubscriptionGroup(_ context.Context, group string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.groups, group)
	f.deletedGroups = append(f.deletedGroups, group)
	return nil
}

func (f *fakeAdmin) DeleteTopic(_ context.Context, topic string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletedTopics = append(f.deletedTopics, topic)
	return nil
}

func (f *fakeAdmin) CreateSubscriptionGroup(_ context.Context, group string, opts ...admin.GroupOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, group)
	f.createdOpts[group] = len(opts)
	f.groups[group] = admin.GroupConfig{Name: group, ConsumeEnable: true, ConsumeBroadcastEnable: false, RetryMaxTimes: 16}
	return nil
}

func (f *fakeAdmin) TopicRoute(_ context.Context, topic string) (admin.TopicRoute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[topic]
	if !ok {
		return admin.TopicRoute{}, fmt.Errorf("topic %q: %w", topic, admin.ErrNotFound)
	}
	return r, nil
}

func (f *fakeAdmin) CreateTopic(_ context.Context, topic string, queues int, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[topic] = admin.TopicRoute{Topic: topic, Queues: []admin.QueueData{{BrokerName: "b", ReadQueues: queues, WriteQueues: queues}}}
	return nil
}

func offsetKey(group string, mq admin.MessageQueue) string { return group + "|" + mq.String() }

func (f *fakeAdmin) ConsumerOffset(_ context.Context, group string, mq admin.MessageQueue) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, ok := f.offsets[offsetKey(group, mq)]
	if !ok {
		return 0, fmt.Errorf("offset: %w", admin.ErrNotFound)
	}
	return off, nil
}

func (f *fakeAdmin) MaxOffset(_ context.Context, mq admin.MessageQueue) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.max[mq], nil
}

func (f *fakeAdmin) SearchOffset(_ context.Context, mq admin.MessageQueue, _ time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.atTime[mq], nil
}

func (f *fakeAdmin) UpdateConsumerOffset(_ context.Context, group string, mq admin.MessageQueue, off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.groups[group]; !ok {
		return fmt.Errorf("group %q: %w", group, admin.ErrNotFound)
	}
	f.offsets[offsetKey(group, mq)] = off
	return nil
}

func (f *fakeAdmin) ConsumerRunningInfo(_ context.Context, _, clientID string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.runningInfo[clientID]; err != nil {
		return nil, err
	}
	return []byte(`{}`), nil
}

func (f *fakeAdmin) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeAdmin) deleted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deletedGroups)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
