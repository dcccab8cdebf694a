package consumer

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/throttle"
)

// groupLimit is the consumer's group-level rate limit. With a quota, limit
// is the whole group's and lim enforces this instance's share of it.
type groupLimit struct {
	lim *throttle.Limiter

	mu        sync.Mutex
	limit     throttle.Limit // per instance, or the group's total with quota
	quota     bool
	instances int // live instances at the last count; 0 before the first

	counter  instanceCounter
	recount  chan struct{} // asks the quota loop to count now
	cancel   context.CancelFunc
	loopDone chan struct{}
}

// instanceCounter counts the live instances of a consumer group, this one
// included.
type instanceCounter interface {
	Instances(ctx context.Context, group string) (int, error)
}

func (g *groupLimit) init(l throttle.Limit, quota bool) error {
	g.limit, g.quota = l, quota
	g.recount = make(chan struct{}, 1)
	var err error
	g.lim, err = throttle.New(l) // a quota's share is set by the first count
	return err
}

func (g *groupLimit) quotaMode() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.quota
}

// set replaces the limit and returns the description of the old and the
// new one. It requires a valid l.
func (g *groupLimit) set(l throttle.Limit, quota bool) (old, now string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old = g.describeLocked()
	g.limit, g.quota = l, quota
	_ = g.lim.Set(g.shareLocked())
	return old, g.describeLocked()
}

// setInstances records a count of live instances and re-splits a quota.
func (g *groupLimit) setInstances(n int) (old int, share throttle.Limit, changed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old = g.instances
	g.instances = n
	if !g.quota || old == n {
		return old, g.lim.Limit(), false
	}
	share = g.shareLocked()
	_ = g.lim.Set(share)
	return old, share, true
}

// shareLocked returns the limit this instance enforces. It requires g.mu.
func (g *groupLimit) shareLocked() throttle.Limit {
	if !g.quota {
		return g.limit
	}
	return split(g.limit, g.instances)
}

// describeLocked formats the limit for logs. It requires g.mu.
func (g *groupLimit) describeLocked() string {
	if !g.quota {
		return g.limit.String() + " per instance"
	}
	return fmt.Sprintf("quota %v over %d instances (%v each)", g.limit, max(g.instances, 1), g.shareLocked())
}

// split divides a group's quota between n instances; the burst is rounded
// up so that no share is zero (which would mean the default burst).
func split(total throttle.Limit, n int) throttle.Limit {
	if total.Unlimited() || n <= 1 {
		return total
	}
	share := throttle.Limit{Rate: total.Rate / float64(n)}
	if total.Burst > 0 {
		share.Burst = int(math.Ceil(float64(total.Burst) / float64(n)))
	}
	return share
}

// runQuota re-counts the group's instances every period, or when asked,
// while a quota is set. It ends when the consumer stops.
func (c *Consumer) runQuota(ctx context.Context, every time.Duration, exited chan<- struct{}) {
	defer close(exited)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.glim.recount:
		}
		if c.glim.quotaMode() {
			c.recountInstances(ctx)
		}
	}
}

// recountInstances asks the broker how many instances the group has and
// re-splits the quota when the number changed. On error the current share
// stays in force.
func (c *Consumer) recountInstances(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := c.glim.counter.Instances(ctx, c.brokerGroup())
	if err != nil {
		if ctx.Err() == nil {
			c.cfg.logger.Warn("rmqkit group quota: cannot count the group's instances; keeping the current share",
				"group", c.group, "error", err)
		}
		return
	}
	old, share, changed := c.glim.setInstances(max(n, 1))
	if changed {
		c.cfg.logger.Info("rmqkit group quota re-split", "group", c.group,
			"old_instances", old, "instances", max(n, 1), "share", share.String())
	}
}

// brokerGroup is the group's name as the broker knows it.
func (c *Consumer) brokerGroup() string { return c.clientName(c.group) }

func (g *groupLimit) start(c *Consumer) {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.loopDone = make(chan struct{})
	go c.runQuota(ctx, c.cfg.quotaRefresh, g.loopDone)
}

// stop ends the quota loop started by start.
func (g *groupLimit) stop() {
	if g.cancel != nil {
		g.cancel()
		<-g.loopDone
	}
}

// adminCounter counts a group's instances from the broker's consumer
// connection list, on the consumer's admin connection.
type adminCounter struct {
	client *admin.Client
	self   string // this consumer's instance name
	// alive holds the clients already found alive, asked only once: a
	// client that stops unregisters, and a client the broker lists though
	// it is gone was never alive (it stopped before its first heartbeat).
	// Without it every instance asked every other one on every count.
	alive map[string]bool
}

// Instances counts the group's connected clients, plus this instance when
// the broker does not list it yet (before its first heartbeat). A client
// the broker lists but that is certainly gone (its connection closed, or
// it no longer runs the group) does not count: it would shrink every live
// instance's share for up to two minutes.
func (a *adminCounter) Instances(ctx context.Context, group string) (int, error) {
	conns, err := a.client.ConsumerConnections(ctx, group)
	if err != nil {
		return 0, err
	}
	n, self := 0, false
	listed := make(map[string]bool, len(conns))
	for _, cn := range conns {
		listed[cn.ClientID] = true
		// rocketmq-client-go's client id is IP@instance[@unit].
		if strings.HasSuffix(cn.ClientID, "@"+a.self) || strings.Contains(cn.ClientID, "@"+a.self+"@") {
			self = true
			n++
			continue
		}
		if a.alive[cn.ClientID] || !a.client.ClientGone(ctx, group, cn.ClientID) {
			a.alive[cn.ClientID] = true
			n++
		}
	}
	maps.DeleteFunc(a.alive, func(id string, _ bool) bool { return !listed[id] })
	if !self {
		n++
	}
	return n, nil
}
