package migrate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Cluster is how to reach one of the two clusters. The same values serve
// NewSubscription and NewProducer.
type Cluster struct {
	// NameServers are the cluster's name server addresses ("host:port").
	// Required.
	NameServers []string
	// AccessKey and SecretKey sign requests to a cluster with ACL; both or
	// neither must be set. The secret is never logged.
	AccessKey, SecretKey string
	// Namespace is the RocketMQ namespace of the topic and group on this
	// cluster, or "" for none. With a namespace the broker knows the topic
	// as Namespace+"%"+topic, the group as Namespace+"%"+group and the
	// group's retry topic as "%RETRY%"+Namespace+"%"+group; the
	// Subscription's consumer, its drain readings and the Producer's client
	// on this cluster use those names, while handlers, stats and callers
	// see the plain topic and group. The two clusters may use different
	// namespaces (or one none).
	Namespace string
}

func (c Cluster) validate(side Side) error {
	if len(c.NameServers) == 0 {
		return fmt.Errorf("%w: %s cluster: no name server", ErrInvalidOption, side)
	}
	for _, a := range c.NameServers {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("%w: %s cluster: empty name server address", ErrInvalidOption, side)
		}
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("%w: %s cluster: access key and secret key must both be set", ErrInvalidOption, side)
	}
	if c.Namespace != "" && !namespaceRE.MatchString(c.Namespace) {
		return fmt.Errorf("%w: %s cluster: namespace %q: only letters, digits, '_' and '-' are allowed", ErrInvalidOption, side, c.Namespace)
	}
	return nil
}

// namespaceRE is what a namespace may contain: the broker's resource name
// characters without '%' (the separator) and '|'.
var namespaceRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// brokerName returns name as the broker knows it on this cluster: with the
// namespace prefix, as rocketmq-client-go adds it.
func (c Cluster) brokerName(name string) string {
	if c.Namespace == "" {
		return name
	}
	return c.Namespace + "%" + name
}

// retryTopic returns the broker's retry topic of group on this cluster:
// "%RETRY%" before the namespaced group, as the client and the broker name
// it ("%RETRY%ns%group").
func (c Cluster) retryTopic(group string) string { return "%RETRY%" + c.brokerName(group) }

// instanceName returns a client instance name unique to this process and
// call: the two clusters of one process need distinct client instances
// (rocketmq-client-go keys its clients by IP and instance name, and refuses
// a second name server for an existing one).
func instanceName(kind string, side Side) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rmqkit-migrate-" + kind + "-" + side.String() + "-" + hex.EncodeToString(b[:])
}
