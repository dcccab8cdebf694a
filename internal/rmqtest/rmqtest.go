// Package rmqtest connects tests to the project's real RocketMQ cluster
// (scripts/rocketmq.sh up): fresh topics and groups per test, a producer that
// stamps every message with a unique id, and a collector that counts what was
// lost and what was delivered twice.
//
// When no broker answers, tests fail if CI=true and are skipped otherwise.
package rmqtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/internal/admin"
)

// Cluster is one running RocketMQ cluster: a name server and one or more
// master brokers.
type Cluster struct {
	NameServer string // host:port of the name server
	Broker     string // host:port of the first master broker
	// Brokers are the host:port of every master broker of the cluster, Broker
	// first (RMQKIT_BROKERS and the like, which scripts/rocketmq.sh env
	// exports; [Broker] when unset). Topics of NewTopic have queues on each.
	Brokers   []string
	Name      string // cluster name, for admin commands
	ID        string // the cluster's name in scripts/rocketmq.sh: a, b, auth, fault
	AccessKey string // credentials, for the auth cluster
	SecretKey string
}

// Credentials returns the cluster's credentials for the client, or nil.
func (c *Cluster) Credentials() *primitive.Credentials {
	if c.AccessKey == "" {
		return nil
	}
	return &primitive.Credentials{AccessKey: c.AccessKey, SecretKey: c.SecretKey}
}

// ClusterA returns the default cluster (RMQKIT_NAMESRV, default
// 127.0.0.1:9876), failing or skipping the test when it does not answer.
func ClusterA(t testing.TB) *Cluster {
	t.Helper()
	return connect(t, &Cluster{
		NameServer: env("RMQKIT_NAMESRV", "127.0.0.1:9876"),
		Broker:     env("RMQKIT_BROKER", "127.0.0.1:10911"),
		Brokers:    envList("RMQKIT_BROKERS"),
		Name:       "RmqkitA",
		ID:         "a",
	}, "scripts/rocketmq.sh up")
}

// ClusterB returns the second cluster (RMQKIT_NAMESRV_B, default
// 127.0.0.1:19876), started by scripts/rocketmq.sh up --clusters 2.
func ClusterB(t testing.TB) *Cluster {
	t.Helper()
	return connect(t, &Cluster{
		NameServer: env("RMQKIT_NAMESRV_B", "127.0.0.1:19876"),
		Broker:     env("RMQKIT_BROKER_B", "127.0.0.1:20911"),
		Brokers:    envList("RMQKIT_BROKERS_B"),
		Name:       "RmqkitB",
		ID:         "b",
	}, "scripts/rocketmq.sh up --clusters 2")
}

// ClusterAuth returns the cluster with authentication on
// (scripts/rocketmq.sh up --auth) and its super user's credentials.
func ClusterAuth(t testing.TB) *Cluster {
	t.Helper()
	return connect(t, &Cluster{
		NameServer: env("RMQKIT_AUTH_NAMESRV", "127.0.0.1:29876"),
		Broker:     env("RMQKIT_AUTH_BROKER", "127.0.0.1:30911"),
		Brokers:    envList("RMQKIT_AUTH_BROKERS"),
		Name:       "RmqkitAuth",
		ID:         "auth",
		AccessKey:  env("RMQKIT_ACCESS_KEY", "rmqkit-ak"),
		SecretKey:  env("RMQKIT_SECRET_KEY", "rmqkit-sk-12345678"),
	}, "scripts/rocketmq.sh up --auth")
}

// ClusterFault returns the cluster that fault tests may kill and restart
// (scripts/rocketmq.sh up --fault). Tests using it must not run in
// parallel with each other.
func ClusterFault(t testing.TB) *Cluster {
	t.Helper()
	return connect(t, &Cluster{
		NameServer: env("RMQKIT_FAULT_NAMESRV", "127.0.0.1:24876"),
		Broker:     env("RMQKIT_FAULT_BROKER", "127.0.0.1:25911"),
		Brokers:    envList("RMQKIT_FAULT_BROKERS"),
		Name:       "RmqkitFault",
		ID:         "fault",
	}, "scripts/rocketmq.sh up --fault")
}

// Script runs scripts/rocketmq.sh with args (for example "kill-broker",
// "fault", "--signal", "KILL") and fails the test if it fails.
func Script(t testing.TB, args ...string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "rocketmq.sh")
	out, err := exec.Command("bash", append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rocketmq.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// envList returns the comma-separated list in the environment variable key,
// or nil.
func envList(key string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect checks that the name server and every broker accept connections.
func connect(t testing.TB, c *Cluster, startCmd string) *Cluster {
	t.Helper()
	if len(c.Brokers) == 0 {
		c.Brokers = []string{c.Broker}
	}
	for _, addr := range append([]string{c.NameServer}, c.Brokers...) {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			msg := fmt.Sprintf("no RocketMQ at %s (%v); start one with: %s", addr, err, startCmd)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		conn.Close()
	}
	return c
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// Name returns a fresh name for a topic or group of this test: the test's
// name (shortened) and a random suffix, so parallel tests never share one.
func Name(t testing.TB, prefix string) string {
	base := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strings.Trim(base, "_") + "_" + hex.EncodeToString(b[:])
}

// TopicOption tunes NewTopic.
type TopicOption func(*topicOpts)

type topicOpts struct {
	queues  int
	ordered bool
}

// Queues sets the topic's read and write queue count (default 4).
func Queues(n int) TopicOption { return func(o *topicOpts) { o.queues = n } }

// Ordered creates the topic as an ordered topic.
func Ordered() TopicOption { return func(o *topicOpts) { o.ordered = true } }

// NewTopic creates a fresh topic on every master broker of the cluster and
// waits until the name server routes it to all of them; it fails the test
// when the route misses one of c.Brokers.
func (c *Cluster) NewTopic(t testing.TB, opts ...TopicOption) string {
	t.Helper()
	o := topicOpts{queues: 4}
	for _, opt := range opts {
		opt(&o)
	}
	topic := Name(t, "T")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var aopts []admin.Option
	if c.AccessKey != "" {
		aopts = append(aopts, admin.WithCredentials(c.AccessKey, c.SecretKey))
	}
	adm, err := admin.New([]string{c.NameServer}, aopts...)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer adm.Close()
	// CreateTopic checks the broker's answer and waits until the name
	// server routes the topic.
	if err := adm.CreateTopic(ctx, topic, o.queues, o.ordered); err != nil {
		t.Fatalf("create topic %s on %s: %v", topic, c.NameServer, err)
	}
	// CreateTopic creates it on the masters the name server knows: make sure
	// that is every broker the cluster should have.
	route, err := adm.TopicRoute(ctx, topic)
	if err != nil {
		t.Fatalf("route of topic %s: %v", topic, err)
	}
	routed := make(map[string]bool)
	for _, b := range route.Brokers {
		routed[b.MasterAddr()] = true
	}
	for _, addr := range c.Brokers {
		if !routed[addr] {
			t.Fatalf("topic %s: the name server %s routes it to %+v, not to the cluster's broker %s", topic, c.NameServer, route.Brokers, addr)
		}
	}
	return topic
}

// NewGroup returns a fresh consumer group name.
func (c *Cluster) NewGroup(t testing.TB) string { return Name(t, "G") }
