package rmqotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/rmqkit/rmqkit/consumer"
)

// Gauge is an extra observable gauge for ObserveConsumer (WithGauges).
type Gauge struct {
	Name        string // instrument name, such as "rmqkit.migration.phase"
	Unit        string // UCUM unit, such as "{message}"; "" for none
	Description string
	// Observe returns the gauge's current values for c. It is called at each
	// collection; messaging.system and messaging.consumer.group.name are
	// added to every observation's attributes.
	Observe func(ctx context.Context, c *consumer.Consumer) ([]Observation, error)
}

// Observation is one value of a Gauge.
type Observation struct {
	Value      int64                // the gauge's value
	Attributes []attribute.KeyValue // low-cardinality attributes of this series
}

// ObserveConsumer registers observable instruments that read c's state at
// each metric collection, one series per subscription:
//
//   - rmqkit.pool.capacity ({worker}): workers the subscription's pool may run at once
//   - rmqkit.pool.running ({worker}): handlers running
//   - rmqkit.pool.waiting ({message}): messages held, not started (SubscriptionStats.Queued)
//   - rmqkit.consumer.dead_lettered ({message}, counter): messages sent to
//     the dead-letter queue since the consumer was created
//   - rmqkit.consumer.lag ({message}): the group's lag by topic (c.Lag,
//     or WithLagFunc's; WithLagFunc(nil) leaves it out); a topic the
//     brokers have no figures for yet (consumer.ErrNoLag) has no series
//   - rmqkit.pool.adaptive.estimate ({worker}, float): for subscriptions
//     with consumer.WithAdaptivePool, the controller's estimate of the
//     concurrency the downstream serves without queueing, with
//     rmqkit.pool.adaptive.reason (AdaptiveReasonKey) of its last decision;
//     the size it chose is rmqkit.pool.capacity
//
// plus the gauges of WithGauges. Series carry messaging.system,
// messaging.consumer.group.name and messaging.destination.name, and the pool
// gauges rmqkit.pool.name (subscriptions sharing a pool report the same
// numbers). It may be called before or after c starts.
//
// stop unregisters the instruments' callback; call it when c is stopped.
// The error is ErrNilConsumer, or the meter's when it rejects an
// instrument. Options read: WithMeterProvider, WithLagFunc, WithGauges.
func ObserveConsumer(c *consumer.Consumer, opts ...Option) (stop func() error, err error) {
	if c == nil {
		return nil, ErrNilConsumer
	}
	cfg := newConfig(opts)
	if !cfg.lagSet {
		cfg.lag = c.Lag
	}
	m := cfg.meter()
	o := &observer{c: c, lag: cfg.lag}
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	o.capacity = gauge("rmqkit.pool.capacity", "{worker}", "Workers the subscription's pool may run at once.")
	o.running = gauge("rmqkit.pool.running", "{worker}", "Handlers of the subscription's pool running now.")
	o.waiting = gauge("rmqkit.pool.waiting", "{message}", "Messages held for the subscription that have not started: waiting for a worker or a rate limit.")
	dlq, err := m.Int64ObservableCounter("rmqkit.consumer.dead_lettered", metric.WithUnit("{message}"),
		metric.WithDescription("Messages that failed past their retry limit and were sent to the dead-letter queue."))
	errs = append(errs, err)
	o.deadLettered = dlq
	overran, err := m.Int64ObservableCounter("rmqkit.consumer.handler.overran", metric.WithUnit("{message}"),
		metric.WithDescription("Handlers that ignored their context past the handler timeout; their messages were handed back for redelivery."))
	errs = append(errs, err)
	o.overran = overran
	estimate, err := m.Float64ObservableGauge("rmqkit.pool.adaptive.estimate", metric.WithUnit("{worker}"),
		metric.WithDescription("The adaptive pool controller's estimate of the concurrency the downstream serves without queueing."))
	errs = append(errs, err)
	o.estimate = estimate
	insts := []metric.Observable{o.capacity, o.running, o.waiting, o.deadLettered, o.overran, o.estimate}
	if cfg.lag != nil {
		o.lagGauge = gauge("rmqkit.consumer.lag", "{message}", "Messages the brokers hold beyond the group's committed offsets.")
		insts = append(insts, o.lagGauge)
	}
	for i, g := range cfg.gauges {
		if g.Name == "" || g.Observe == nil {
			errs = append(errs, fmt.Errorf("rmqotel: gauge %d: name and Observe are required", i))
			continue
		}
		inst := gauge(g.Name, g.Unit, g.Description)
		o.extra = append(o.extra, extraGauge{Gauge: g, inst: inst})
		insts = append(insts, inst)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.base = []attribute.KeyValue{semconv.MessagingSystemRocketMQ, semconv.MessagingConsumerGroupName(c.Group())}
	reg, err := m.RegisterCallback(o.observe, insts...)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}

type observer struct {
	c                          *consumer.Consumer
	lag                        LagFunc
	base                       []attribute.KeyValue
	capacity, running, waiting metric.Int64ObservableGauge
	deadLettered, overran      metric.Int64ObservableCounter
	lagGauge                   metric.Int64ObservableGauge
	estimate                   metric.Float64ObservableGauge
	extra                      []extraGauge
}

type extraGauge struct {
	Gauge
	inst metric.Int64ObservableGauge
}

func (o *observer) attrs(extra ...attribute.KeyValue) metric.ObserveOption {
	return metric.WithAttributes(append(o.base[:len(o.base):len(o.base)], extra...)...)
}

func (o *observer) observe(ctx context.Context, obs metric.Observer) error {
	for _, s := range o.c.Stats() {
		topic := semconv.MessagingDestinationName(s.Topic)
		pool := o.attrs(topic, PoolNameKey.String(s.Pool.Name))
		obs.ObserveInt64(o.capacity, int64(s.Pool.Capacity), pool)
		obs.ObserveInt64(o.running, int64(s.Pool.Running), pool)
		// Queued: with batch intake, Pool.Waiting counts at most one
		// caller per subscription, while Queued counts the messages held.
		obs.ObserveInt64(o.waiting, s.Queued, pool)
		obs.ObserveInt64(o.deadLettered, int64(s.DeadLettered), o.attrs(topic))
		obs.ObserveInt64(o.overran, int64(s.Overran), o.attrs(topic))
		if a := s.Adaptive; a.Enabled && !a.Pinned {
			obs.ObserveFloat64(o.estimate, a.Estimate, o.attrs(topic, PoolNameKey.String(s.Pool.Name), AdaptiveReasonKey.String(a.Reason)))
		}
	}
	var errs []error
	for _, g := range o.extra {
		vals, err := g.Observe(ctx, o.c)
		if err != nil {
			errs = append(errs, fmt.Errorf("rmqotel: gauge %s: %w", g.Name, err))
		}
		for _, v := range vals {
			obs.ObserveInt64(g.inst, v.Value, o.attrs(v.Attributes...))
		}
	}
	if o.lag != nil {
		lag, err := o.lag(ctx)
		// A topic the brokers have no figures for yet (the group has not
		// committed an offset on it) has no series until it does: not an
		// error at every collection after a start.
		if err != nil && !errors.Is(err, consumer.ErrNoLag) {
			errs = append(errs, fmt.Errorf("rmqotel: lag of group %q: %w", o.c.Group(), err))
		}
		for topic, n := range lag {
			obs.ObserveInt64(o.lagGauge, n, o.attrs(semconv.MessagingDestinationName(topic)))
		}
	}
	return errors.Join(errs...)
}
