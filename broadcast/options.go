package broadcast

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
)

// Option configures a broadcast Mode, or a GarbageCollector in
// NewGarbageCollector (which uses WithLogger only).
type Option func(*config)

type config struct {
	conn   consumer.Connection
	logger *slog.Logger

	identity      string
	identityGiven bool
	stateDir      string
	startAt       time.Time // zero: latest
	identityWait  time.Duration
	gcTTL         time.Duration
	gcEvery       time.Duration

	// Seams for tests; nil means the real thing.
	getenv   func(string) string
	hostname func() (string, error)
	now      func() time.Time
	newAdmin func(*config) (adminAPI, error)
}

func defaultConfig() config {
	return config{logger: slog.Default(), identityWait: 15 * time.Second}
}

func (c *config) setDefaults() {
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	if c.hostname == nil {
		c.hostname = os.Hostname
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.newAdmin == nil {
		c.newAdmin = newAdminClient
	}
}

// WithLogger sets the logger of a GarbageCollector. The default is
// slog.Default(). An Instance logs with its consumer's logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithIdentity sets the instance identity explicitly; it takes precedence
// over the environment and the state directory. It is sanitised like any
// identity (see Consumer.Identity). An empty id is an error rather than
// "not set", so that an unset variable in WithIdentity(os.Getenv("X")) is
// noticed.
func WithIdentity(id string) Option {
	return func(c *config) { c.identity, c.identityGiven = id, true }
}

// WithStateDir sets the directory where an identity is persisted when
// neither WithIdentity nor the environment gives one. The default is
// os.UserConfigDir()/rmqkit/broadcast. The directory is created on first
// use; the identity file in it ("identity") is written once, atomically.
// Processes sharing a state directory share the identity, so only one of
// them can run at a time (ErrIdentityInUse).
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithStartTime makes a new instance (one whose consumer group has no
// offsets yet) start at the first message stored at or after t. The default,
// the zero time, starts a new instance at the end of each queue: it gets
// what is produced after its first Start. A restarted instance resumes from
// its committed offsets whatever this says.
func WithStartTime(t time.Time) Option { return func(c *config) { c.startAt = t } }

// WithIdentityWait sets how long Start waits for another client connected
// under this instance's group to go away before it fails with
// ErrIdentityInUse. The default, 15 seconds, covers the time the broker
// takes to notice that the previous process stopped or was killed (its TCP
// connection closed): usually milliseconds, seconds on a loaded broker. 0
// fails at once. A process that died with its machine (no TCP close) stays
// listed by the broker until its channel expires, about 2 minutes: an
// instance that may come back that fast elsewhere (a StatefulSet pod
// rescheduled after a node failure) should wait about 150 seconds. Start's
// context bounds the wait too.
func WithIdentityWait(d time.Duration) Option { return func(c *config) { c.identityWait = d } }

// WithGarbageCollection makes the instance, while it runs, delete the
// consumer groups of other instances of the same base group that have been
// offline for at least ttl, checking every WithGarbageCollectionInterval.
// See CollectGarbage for what is deleted and when. The default, ttl 0,
// collects nothing. ttl is also the longest time an instance may be down and
// still get, after its restart, what was produced meanwhile.
func WithGarbageCollection(ttl time.Duration) Option {
	return func(c *config) { c.gcTTL = ttl }
}

// WithGarbageCollectionInterval sets how often WithGarbageCollection looks
// for offline instances. The default is a quarter of its ttl, between 1
// second and 10 minutes. It requires WithGarbageCollection.
func WithGarbageCollectionInterval(d time.Duration) Option {
	return func(c *config) { c.gcEvery = d }
}

func (c *config) validate() error {
	if err := c.conn.Validate(); err != nil {
		return err
	}
	if c.identityWait < 0 {
		return fmt.Errorf("%w: identity wait %v is negative", ErrInvalidOption, c.identityWait)
	}
	if c.gcTTL < 0 {
		return fmt.Errorf("%w: garbage collection ttl %v is negative", ErrInvalidOption, c.gcTTL)
	}
	if c.gcEvery < 0 {
		return fmt.Errorf("%w: garbage collection interval %v is negative", ErrInvalidOption, c.gcEvery)
	}
	if c.gcEvery > 0 && c.gcTTL == 0 {
		return fmt.Errorf("%w: WithGarbageCollectionInterval without WithGarbageCollection", ErrInvalidOption)
	}
	if c.gcTTL > 0 && c.gcTTL < minTTL {
		return fmt.Errorf("%w: garbage collection ttl %v is under %v", ErrInvalidOption, c.gcTTL, minTTL)
	}
	return nil
}

// gcPeriod is the period of the collection loop.
func (c *config) gcPeriod() time.Duration {
	if c.gcEvery > 0 {
		return c.gcEvery
	}
	return min(max(c.gcTTL/4, time.Second), 10*time.Minute)
}

// brokerName is name as the broker knows it: with the namespace prefix.
func (c *config) brokerName(name string) string { return c.conn.Qualify(name) }
