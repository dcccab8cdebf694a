package migrate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/rmqkit/rmqkit/consumer"
)

// Cluster is how to reach one of the two clusters: a consumer.Connection,
// so one value describes a cluster for consumers, broadcast instances and
// migration alike. The same values serve NewSubscription and NewProducer.
// Each side may have its own namespace (or none); handlers, stats and
// callers see the plain topic and group.
type Cluster = consumer.Connection

// validateCluster checks one side's connection, naming the side.
func validateCluster(c Cluster, side Side) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %s cluster: %w", ErrInvalidOption, side, err)
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
