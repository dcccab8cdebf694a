package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"
)

// ProducerOption configures a Producer in NewProducer.
type ProducerOption func(*producerConfig)

type producerConfig struct {
	weight     int
	fallback   bool
	clientOpts []rmqproducer.Option
	logger     *slog.Logger
	onFallback func(from, to Side, err error)
}

// WithWeight sets the initial weight, the percentage of messages sent to
// the new cluster, in [0, 100]. The default is 0: everything goes to the
// old cluster.
func WithWeight(w int) ProducerOption { return func(c *producerConfig) { c.weight = w } }

// WithFallback makes a send that fails on the cluster the weight chose be
// tried once on the other cluster; Result.FellBack and
// ProducerStats.Fallbacks report it. The default is off: the error is
// returned and nothing is re-routed. Note that a message that falls back
// to a cluster no Subscription reads any more waits there (Stats of the
// Subscription show it as lag) until one reads it again, and that per-key
// order does not hold across a fallback.
func WithFallback(on bool) ProducerOption { return func(c *producerConfig) { c.fallback = on } }

// WithProducerOptions passes options to the rocketmq-client-go producer of
// both clusters (group name, retries, send timeout, interceptors, ...).
// The Producer sets each side's name servers, credentials, namespace
// (Cluster.Namespace) and instance name after them.
//
// The queue selector is set before them: by default each client picks the
// queue of a message with a sharding key by FNV-1a(key) modulo the
// topic's queue count, so that all messages of a key go to one queue of
// their cluster and an orderly consumer receives them in order, and sends
// messages without a key round-robin. rmqproducer.WithQueueSelector given
// here replaces that selector (one instance shared by both clients).
func WithProducerOptions(opts ...rmqproducer.Option) ProducerOption {
	return func(c *producerConfig) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithProducerLogger sets the logger for weight changes and fallbacks. The
// default is slog.Default().
func WithProducerLogger(l *slog.Logger) ProducerOption {
	return func(c *producerConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithOnFallback calls f after each send that failed on from and was
// tried on to (whether that succeeded or not), e.g. to count it in a
// metric. f must not block.
func WithOnFallback(f func(from, to Side, err error)) ProducerOption {
	return func(c *producerConfig) { c.onFallback = f }
}

// sender is the part of a rocketmq-client-go producer used here.
type sender interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
	Shutdown() error
}

// Producer sends to the old or the new cluster by weight. Create it with
// NewProducer; most callers use SendSync, as with the client's producer.
// Its methods are safe for simultaneous use by multiple goroutines.
type Producer struct {
	clients    [2]sender
	fallback   bool
	logger     *slog.Logger
	onFallback func(from, to Side, err error)

	weight atomic.Int32
	mu     sync.Mutex
	acc    int // smooth weighted counter for keyless messages; guarded by mu

	closed  atomic.Bool
	closing sync.Once

	sent, failed, fallbacks [2]atomic.Uint64
}

// NewProducer starts a rocketmq-client-go producer on each cluster, each
// with an instance name of its own, and returns a Producer that routes
// between them. Errors wrap ErrInvalidOption for bad arguments, or are the
// client's.
func NewProducer(old, new Cluster, opts ...ProducerOption) (*Producer, error) {
	cfg := producerConfig{logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := checkWeight(cfg.weight); err != nil {
		return nil, err
	}
	clusters := [2]Cluster{old, new}
	for i, c := range clusters {
		if err := validateCluster(c, Side(i)); err != nil {
			return nil, err
		}
	}
	var clients [2]sender
	for i, c := range clusters {
		side := Side(i)
		// The selector first, so that one in clientOpts wins.
		copts := []rmqproducer.Option{rmqproducer.WithQueueSelector(newKeyQueueSelector())}
		copts = append(copts, cfg.clientOpts...)
		copts = append(copts,
			rmqproducer.WithNsResolver(primitive.NewPassthroughResolver(c.NameServers)),
			rmqproducer.WithInstanceName(instanceName("producer", side)),
			// Always, so that a namespace in clientOpts cannot differ from
			// the Cluster's.
			rmqproducer.WithNamespace(c.Namespace),
		)
		if c.AccessKey != "" {
			copts = append(copts, rmqproducer.WithCredentials(primitive.Credentials{AccessKey: c.AccessKey, SecretKey: c.SecretKey}))
		}
		p, err := rmqproducer.NewDefaultProducer(copts...)
		if err == nil {
			err = p.Start()
		}
		if err != nil {
			if i == 1 {
				_ = clients[0].Shutdown()
			}
			return nil, fmt.Errorf("migrate: %s cluster's producer: %w", side, err)
		}
		clients[i] = p
	}
	return newProducer(clients, cfg), nil
}

func newProducer(clients [2]sender, cfg producerConfig) *Producer {
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	p := &Producer{clients: clients, fallback: cfg.fallback, logger: cfg.logger, onFallback: cfg.onFallback}
	p.weight.Store(int32(cfg.weight))
	return p
}

func checkWeight(w int) error {
	if w < 0 || w > 100 {
		return fmt.Errorf("%w: weight %d is outside [0, 100]", ErrInvalidOption, w)
	}
	return nil
}

// Weight returns the current weight: the percentage of messages sent to
// the new cluster.
func (p *Producer) Weight() int { return int(p.weight.Load()) }

// SetWeight sets the percentage of messages sent to the new cluster, in
// [0, 100], at run time; a value outside returns an error wrapping
// ErrInvalidOption and leaves the weight as it was. Sends in progress keep
// the cluster they chose; the next send uses w. Raising the weight moves
// keys from the old cluster to the new one only, never back.
func (p *Producer) SetWeight(w int) error {
	if err := checkWeight(w); err != nil {
		return err
	}
	if old := int(p.weight.Swap(int32(w))); old != w {
		p.logger.Info("rmqkit migrate: producer weight changed", "old", old, "new", w)
	}
	return nil
}

// KeySide returns the cluster messages with sharding key key go to at
// weight w: the new one when FNV-1a(key) mod 100 < w.
func KeySide(key string, w int) Side {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	if int(h.Sum32()%100) < w {
		return New
	}
	return Old
}

// route picks the side of a send. Keyless sends advance the smooth
// weighted counter: it adds the weight per send and sends to the new
// cluster each time it passes 100, so any 100 consecutive keyless sends
// put exactly weight of them on the new cluster, evenly spread.
func (p *Producer) route(msgs []*primitive.Message) Side {
	w := p.Weight()
	if len(msgs) > 0 {
		if key := msgs[0].GetShardingKey(); key != "" {
			return KeySide(key, w)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acc += w
	if p.acc >= 100 {
		p.acc -= 100
		return New
	}
	return Old
}

// Result is the outcome of Send.
type Result struct {
	*primitive.SendResult
	// Side is the cluster that stored the messages (or, on error, the one
	// tried last).
	Side Side
	// FellBack says the weight chose the other cluster, the send failed
	// there, and WithFallback sent it here.
	FellBack bool
}

// SendSync sends msgs, like the client's SendSync: one message, or a batch
// of messages of one topic stored together. The weight chooses the
// cluster once for the whole call, by the sharding key of the first
// message (see the package documentation). The error is the client's;
// with WithFallback a failed send is tried on the other cluster, and the
// error is returned only if both fail (both errors joined).
func (p *Producer) SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	r, err := p.Send(ctx, msgs...)
	return r.SendResult, err
}

// Send is SendSync that also tells which cluster stored the messages.
func (p *Producer) Send(ctx context.Context, msgs ...*primitive.Message) (Result, error) {
	if p.closed.Load() {
		return Result{}, ErrClosed
	}
	side := p.route(msgs)
	res, err := p.sendOn(ctx, side, msgs)
	if err == nil {
		p.sent[side].Add(uint64(len(msgs)))
		return Result{SendResult: res, Side: side}, nil
	}
	p.failed[side].Add(uint64(len(msgs)))
	if !p.fallback || ctx.Err() != nil {
		return Result{SendResult: res, Side: side}, err
	}
	other := side.other()
	p.fallbacks[side].Add(uint64(len(msgs)))
	res2, err2 := p.sendOn(ctx, other, msgs)
	if p.onFallback != nil {
		p.onFallback(side, other, err)
	}
	if err2 != nil {
		p.failed[other].Add(uint64(len(msgs)))
		return Result{SendResult: res2, Side: other, FellBack: true},
			errors.Join(fmt.Errorf("%s cluster: %w", side, err), fmt.Errorf("fallback to the %s cluster: %w", other, err2))
	}
	p.sent[other].Add(uint64(len(msgs)))
	p.logger.Warn("rmqkit migrate: send fell back to the other cluster", "from", side.String(), "to", other.String(), "error", err)
	return Result{SendResult: res2, Side: other, FellBack: true}, nil
}

// sendOn sends msgs with side's client. The client prefixes each
// message's Topic with its namespace in place (without checking for one
// already there); sendOn puts the caller's topics back afterwards, so that
// a fallback to the other cluster, or the caller's own retry of the same
// messages, starts from the plain topic again.
func (p *Producer) sendOn(ctx context.Context, side Side, msgs []*primitive.Message) (*primitive.SendResult, error) {
	var buf [1]string
	topics := buf[:0]
	for _, m := range msgs {
		topics = append(topics, m.Topic)
	}
	defer func() {
		for i, m := range msgs {
			m.Topic = topics[i]
		}
	}()
	return p.clients[side].SendSync(ctx, msgs...)
}

// ProducerStats is a snapshot of a Producer's counters, in messages.
type ProducerStats struct {
	Weight int // the current weight
	// Sent counts the messages each cluster stored (fallbacks included),
	// Failed those whose send to it failed, by side (Old, New).
	Sent, Failed [2]uint64
	// Fallbacks counts messages whose send failed on a side and were
	// re-sent to the other, by the side they failed on.
	Fallbacks [2]uint64
}

// Stats returns the Producer's counters.
func (p *Producer) Stats() ProducerStats {
	st := ProducerStats{Weight: p.Weight()}
	for i := range 2 {
		st.Sent[i] = p.sent[i].Load()
		st.Failed[i] = p.failed[i].Load()
		st.Fallbacks[i] = p.fallbacks[i].Load()
	}
	return st
}

// Shutdown shuts both clients down. Sends after it return ErrClosed; sends
// in progress end as the client ends them. It is safe to call more than
// once.
func (p *Producer) Shutdown() error {
	var errs []error
	p.closing.Do(func() {
		p.closed.Store(true)
		for i, c := range p.clients {
			if err := c.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("%s cluster: %w", Side(i), err))
			}
		}
	})
	return errors.Join(errs...)
}
