package consumer

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Connection is how a client reaches a RocketMQ cluster: name servers,
// credentials and namespace. A Consumer takes one with WithConnection (or
// the three single options), a broadcast Mode uses its consumer's, and
// migrate.Cluster is the same type, so one value describes a cluster
// everywhere.
type Connection struct {
	// NameServers are the name server addresses ("host:port"). Required.
	NameServers []string
	// AccessKey and SecretKey sign requests to a cluster with ACL; both or
	// neither must be set. The secret is never logged.
	AccessKey, SecretKey string
	// Namespace is the RocketMQ namespace, or "" for none. The broker then
	// knows a topic as Namespace+"%"+topic and a group as
	// Namespace+"%"+group (Qualify); handlers and Stats see the plain names.
	Namespace string
}

// WithConnection sets the name servers, credentials and namespace at once.
// It excludes WithNameServer, WithCredentials and WithNamespace (New returns
// ErrConflictingOptions).
func WithConnection(conn Connection) Option {
	return optionFunc(func(c *config) {
		c.connSet = true
		c.nameServers = append([]string(nil), conn.NameServers...)
		c.credentials = nil
		if conn.AccessKey != "" || conn.SecretKey != "" {
			c.credentials = &primitive.Credentials{AccessKey: conn.AccessKey, SecretKey: conn.SecretKey}
		}
		c.namespace = conn.Namespace
	})
}

// Connection returns the consumer's connection settings.
func (c *Consumer) Connection() Connection { return c.cfg.connection() }

func (c *config) connection() Connection {
	conn := Connection{NameServers: append([]string(nil), c.nameServers...), Namespace: c.namespace}
	if c.credentials != nil {
		conn.AccessKey, conn.SecretKey = c.credentials.AccessKey, c.credentials.SecretKey
	}
	return conn
}

// Validate reports what is wrong with the connection, wrapping
// ErrInvalidOption.
func (c Connection) Validate() error {
	if len(c.NameServers) == 0 {
		return fmt.Errorf("%w: name server: none set (use WithNameServer)", ErrInvalidOption)
	}
	for _, a := range c.NameServers {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("%w: name server: empty address", ErrInvalidOption)
		}
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("%w: credentials: access key and secret key must both be set", ErrInvalidOption)
	}
	if c.Namespace != "" && !namespacePattern.MatchString(c.Namespace) {
		return fmt.Errorf("%w: namespace %q: only letters, digits, '_' and '-' are allowed", ErrInvalidOption, c.Namespace)
	}
	return nil
}

// namespacePattern is what a namespace may contain: the broker's resource
// name characters without '%' (the separator) and '|'.
var namespacePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Qualify returns a topic or group name as the broker knows it: with the
// namespace prefix, which rocketmq-client-go adds to every name.
func (c Connection) Qualify(name string) string {
	if c.Namespace == "" {
		return name
	}
	return c.Namespace + "%" + name
}

// String describes the connection without its secret.
func (c Connection) String() string {
	return fmt.Sprintf("name servers %v, namespace %q, access key %q", c.NameServers, c.Namespace, c.AccessKey)
}
