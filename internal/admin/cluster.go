package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// MasterID is the broker id of a master broker; slaves have other ids.
const MasterID = 0

// ClusterInfo is what a name server knows of its brokers.
type ClusterInfo struct {
	// Brokers by broker name.
	Brokers map[string]Broker
	// Clusters maps each cluster name to the names of its brokers, sorted.
	Clusters map[string][]string
}

// Broker is a named group of broker processes: a master and its slaves.
type Broker struct {
	Name    string
	Cluster string
	// Addrs maps broker ids to "host:port" addresses; MasterID is the master.
	Addrs map[int64]string
}

// MasterAddr returns the address of the master, or "" when it has none.
func (b Broker) MasterAddr() string { return b.Addrs[MasterID] }

// wireBrokerData is BrokerData.java.
type wireBrokerData struct {
	Cluster     string           `json:"cluster"`
	BrokerName  string           `json:"brokerName"`
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
}

func (w wireBrokerData) broker() Broker {
	addrs := w.BrokerAddrs
	if addrs == nil {
		addrs = map[int64]string{}
	}
	return Broker{Name: w.BrokerName, Cluster: w.Cluster, Addrs: addrs}
}

// wireClusterInfo is ClusterInfo.java.
type wireClusterInfo struct {
	BrokerAddrTable  map[string]wireBrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string       `json:"clusterAddrTable"`
}

// ClusterInfo returns the clusters and brokers registered with the name
// server (GET_BROKER_CLUSTER_INFO).
func (c *Client) ClusterInfo(ctx context.Context) (_ ClusterInfo, err error) {
	defer wrap(&err, "cluster info")
	return c.clusterInfo(ctx)
}

func (c *Client) clusterInfo(ctx context.Context) (ClusterInfo, error) {
	resp, err := c.invokeNameServer(ctx, reqGetBrokerClusterInfo, nil, nil)
	if err != nil {
		return ClusterInfo{}, err
	}
	return parseClusterInfo(resp.Body)
}

func parseClusterInfo(body []byte) (ClusterInfo, error) {
	var w wireClusterInfo
	if err := decodeJSON(body, &w); err != nil {
		return ClusterInfo{}, err
	}
	ci := ClusterInfo{Brokers: make(map[string]Broker), Clusters: make(map[string][]string)}
	for name, bd := range w.BrokerAddrTable {
		b := bd.broker()
		if b.Name == "" {
			b.Name = name
		}
		ci.Brokers[name] = b
	}
	for cluster, names := range w.ClusterAddrTable {
		names = slices.Clone(names)
		slices.Sort(names)
		ci.Clusters[cluster] = names
	}
	return ci, nil
}

// masters returns the brokers that have a master, sorted by name.
func (ci ClusterInfo) masters() []Broker {
	var out []Broker
	for _, b := range ci.Brokers {
		if b.MasterAddr() != "" {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Broker) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// masterBrokers returns the brokers with a master, sorted by name, or an
// ErrNotFound error when there is none.
func (c *Client) masterBrokers(ctx context.Context) ([]Broker, error) {
	ci, err := c.clusterInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	m := ci.masters()
	if len(m) == 0 {
		return nil, fmt.Errorf("the name server knows no master broker: %w", ErrNotFound)
	}
	return m, nil
}

// masterAddr returns the master address of the broker named name.
func (c *Client) masterAddr(ctx context.Context, name string) (string, error) {
	ci, err := c.clusterInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("cluster info: %w", err)
	}
	if addr := ci.Brokers[name].MasterAddr(); addr != "" {
		return addr, nil
	}
	return "", fmt.Errorf("the name server knows no master of broker %q: %w", name, ErrNotFound)
}
