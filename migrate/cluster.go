package migrate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Cluster is how to reach one of the two clusters. The same values serve
// NewSubscription and NewProducer.
//
// Namespaces are not supported: give fully qualified topic and group names.
type Cluster struct {
	// NameServers are the cluster's name server addresses ("host:port").
	// Required.
	NameServers []string
	// AccessKey and SecretKey sign requests to a cluster with ACL; both or
	// neither must be set. The secret is never logged.
	AccessKey, SecretKey string
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
	return nil
}

// instanceName returns a client instance name unique to this process and
// call: the two clusters of one process need distinct client instances
// (rocketmq-client-go keys its clients by IP and instance name, and refuses
// a second name server for an existing one).
func instanceName(kind string, side Side) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rmqkit-migrate-" + kind + "-" + side.String() + "-" + hex.EncodeToString(b[:])
}
