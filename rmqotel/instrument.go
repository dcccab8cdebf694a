package rmqotel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rmqkit/rmqkit/consumer"
)

// Instrument traces and measures the consumer being built, in one option
// given to consumer.New: it adds Middleware to every subscription and
// registers ObserveConsumer's instruments while the consumer runs (from
// Start to Stop). What Middleware and ObserveConsumer need to know about the
// consumer comes from it: the namespace (consumer.WithNamespace or
// WithConnection), the consumption model (Broadcasting for a mode that
// reports it, as broadcast.Mode does), and the lag (the consumer's Lag).
//
//	c, err := consumer.New("orders", consumer.WithNameServer(ns),
//		rmqotel.Instrument(rmqotel.WithTracerProvider(tp), rmqotel.WithMeterProvider(mp)))
//
// WithNamespace and WithConsumptionModel are not needed; one that
// contradicts the consumer fails New with ErrConflict. The middleware runs
// after the consumer's and the subscription's own middleware, closest to
// the handler. Every Option of the package is read.
func Instrument(opts ...Option) consumer.Option {
	return consumer.WithPlugin(func(c *consumer.Consumer) (consumer.Plugin, error) {
		in := &instrument{opts: opts}
		return in, in.attach(c)
	})
}

// ErrConflict is returned (through consumer.New) when an Option given to
// Instrument contradicts the consumer, naming both values.
var ErrConflict = errors.New("rmqotel: option contradicts the consumer")

// instrument is Instrument's consumer.Plugin.
type instrument struct {
	opts []Option
	c    *consumer.Consumer
	mw   consumer.Middleware

	mu   sync.Mutex
	stop func() error // ObserveConsumer's, from Start to Stop
}

// broadcaster is what a mode that delivers every message to every instance
// reports (broadcast.Mode).
type broadcaster interface{ Broadcasting() bool }

func (in *instrument) attach(c *consumer.Consumer) error {
	model := Clustering
	if b, ok := c.Mode().(broadcaster); ok && b.Broadcasting() {
		model = Broadcasting
	}
	ns := c.Connection().Namespace
	for _, o := range in.opts {
		probe := config{}
		o(&probe)
		if probe.model != "" && probe.model != model {
			return fmt.Errorf("%w: WithConsumptionModel(%s), the consumer is %s", ErrConflict, probe.model, model)
		}
		if probe.namespace != "" && probe.namespace != ns {
			return fmt.Errorf("%w: WithNamespace(%q), the consumer's namespace is %q", ErrConflict, probe.namespace, ns)
		}
	}
	in.c = c
	in.mw = Middleware(append(append([]Option(nil), in.opts...), WithConsumptionModel(model), WithNamespace(ns))...)
	return nil
}

func (in *instrument) SubscribeOptions(string) ([]consumer.SubscribeOption, error) {
	return []consumer.SubscribeOption{consumer.WithMiddleware(in.mw)}, nil
}

func (in *instrument) Start(context.Context) error {
	stop, err := ObserveConsumer(in.c, in.opts...)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.stop = stop
	in.mu.Unlock()
	return nil
}

func (in *instrument) Stop(context.Context) {
	in.mu.Lock()
	stop := in.stop
	in.stop = nil
	in.mu.Unlock()
	if stop != nil {
		_ = stop()
	}
}
