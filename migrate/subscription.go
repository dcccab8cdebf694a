package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/pool"
)

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// sideConsumer is the part of consumer.Consumer a Subscription uses once a
// side runs.
type sideConsumer interface {
	Stop(ctx context.Context) error
}

// Subscription is one logical subscription read from two clusters, as its
// phase says. Create it with NewSubscription, Start it, switch phases with
// SetPhase and end with Stop. Its methods are safe for simultaneous use by
// multiple goroutines.
type Subscription struct {
	group, topic string
	sel          consumer.Selector
	handler      consumer.Handler
	clusters     [2]Cluster
	cfg          config
	pool         *pool.Pool
	ownsPool     bool

	clk     clock
	lag     lagSource
	startFn func(ctx context.Context, side Side) (sideConsumer, error)
	monitor bool // read lag in the background (off in unit tests)

	// switching holds a token while a phase switch runs; switches are
	// serialized.
	switching chan struct{}

	mu        sync.Mutex
	state     state
	phase     Phase
	target    Phase // the phase being switched to; == phase when idle
	consumers [2]sideConsumer
	done      chan struct{} // closed by Stop
	monDone   chan struct{}

	sides [2]*sideState
}

// NewSubscription returns a Subscription of group to topic on the old and
// the new cluster, handing the messages sel selects to h. The group has
// the same name on both clusters. It checks the arguments and the
// consumer options by building (not starting) a consumer for each side;
// errors wrap ErrInvalidOption or the consumer package's error and name
// the argument. Nothing connects before Start.
func NewSubscription(old, new Cluster, group, topic string, sel consumer.Selector, h consumer.Handler, opts ...Option) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: handler is nil", ErrInvalidOption)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	clusters := [2]Cluster{old, new}
	for i, c := range clusters {
		if err := validateCluster(c, Side(i)); err != nil {
			return nil, err
		}
	}
	s := newSubscription(group, topic, sel, h, clusters, cfg)
	s.startFn = s.startConsumer
	s.monitor = true
	if s.pool == nil {
		p, err := pool.New("migrate-"+topic, cfg.poolSize)
		if err != nil {
			return nil, fmt.Errorf("%w: pool: %w", ErrInvalidOption, err)
		}
		s.pool, s.ownsPool = p, true
	}
	fail := func(err error) (*Subscription, error) {
		if s.ownsPool {
			_ = s.pool.Close(context.Background())
		}
		return nil, err
	}
	// Let the consumer package check names, selector and options now,
	// with the shared pool, rather than at the first phase switch.
	for _, side := range []Side{Old, New} {
		c, err := s.buildConsumer(side, consumer.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			return fail(err)
		}
		_ = c.Stop(context.Background()) // never started: only releases its state
	}
	lag, err := newAdminLag(group, topic, clusters)
	if err != nil {
		return fail(err)
	}
	s.lag = lag
	return s, nil
}

// newSubscription sets up the fields shared by NewSubscription and tests.
func newSubscription(group, topic string, sel consumer.Selector, h consumer.Handler, clusters [2]Cluster, cfg config) *Subscription {
	return &Subscription{
		group:     group,
		topic:     topic,
		sel:       sel,
		handler:   h,
		clusters:  clusters,
		cfg:       cfg,
		pool:      cfg.pool,
		clk:       realClock{},
		switching: make(chan struct{}, 1),
		phase:     cfg.phase,
		target:    cfg.phase,
		done:      make(chan struct{}),
		sides:     [2]*sideState{newSideState(), newSideState()},
	}
}

// Group returns the consumer group name.
func (s *Subscription) Group() string { return s.group }

// Topic returns the topic.
func (s *Subscription) Topic() string { return s.topic }

// Phase returns the current phase. During a switch it is the phase being
// left; Stats tells the target.
func (s *Subscription) Phase() Phase {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase
}

func (s *Subscription) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != stateNew
}

// Start starts a consumer on each cluster the phase reads, and the
// background lag readings. If a side fails to start, the sides already
// started are stopped again and Start may be called again. It returns
// ErrStarted when running and ErrStopped after Stop.
func (s *Subscription) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	s.mu.Lock()
	st, phase := s.state, s.phase
	s.mu.Unlock()
	switch st {
	case stateRunning:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	var started []Side
	for _, side := range []Side{Old, New} {
		if !phase.reads(side) {
			continue
		}
		if err := s.startSide(ctx, side); err != nil {
			for _, o := range started {
				s.stopSide(o)
			}
			return err
		}
		started = append(started, side)
	}
	s.mu.Lock()
	s.state = stateRunning
	if s.monitor {
		s.monDone = make(chan struct{})
		go s.watchLag(s.monDone)
	}
	s.mu.Unlock()
	s.cfg.logger.Info("rmqkit migrate subscription started", "group", s.group, "topic", s.topic, "phase", phase.String())
	return nil
}

// Stop stops the consumers of both sides (each waits for its running
// handlers up to WithStopTimeout or until ctx ends; see consumer.Stop) and
// the lag readings, and closes the Subscription's own pool. A phase switch
// waiting for a drain returns ErrStopped. Stop is safe without Start and
// more than once; a stopped Subscription cannot be started again.
func (s *Subscription) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state == stateStopped {
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopped
	close(s.done)
	mon := s.monDone
	s.mu.Unlock()

	// A switch in progress ends soon: its drain wait watches done, and
	// starting or stopping a side is bounded.
	s.switching <- struct{}{}
	defer s.release()
	if mon != nil {
		<-mon
	}
	s.mu.Lock()
	cs := s.consumers
	s.consumers = [2]sideConsumer{}
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	for i, c := range cs {
		if c == nil {
			continue
		}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, s.cfg.stopTimeout)
			defer cancel()
			if err := c.Stop(sctx); err != nil {
				s.mu.Lock()
				errs = append(errs, fmt.Errorf("%s cluster: %w", Side(i), err))
				s.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if s.ownsPool {
		pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.pool.Close(pctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		cancel()
	}
	if s.lag != nil {
		s.lag.close()
	}
	s.cfg.logger.Info("rmqkit migrate subscription stopped", "group", s.group, "topic", s.topic)
	return errors.Join(errs...)
}

func (s *Subscription) acquire(ctx context.Context) error {
	select {
	case s.switching <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Subscription) release() { <-s.switching }

// SetPhase switches the Subscription to phase p and returns when the
// switch is complete:
//
//   - OldOnly or NewOnly to Dual starts a fresh consumer on the missing
//     cluster; it resumes from the group's committed offsets there.
//   - Dual to NewOnly waits until the old cluster is drained, then stops its
//     consumer; Dual to OldOnly does the same for the new cluster. While it
//     waits the phase stays Dual and Stats shows the target.
//   - OldOnly to NewOnly and back are refused with ErrInvalidTransition.
//   - p equal to the current phase does nothing.
//
// If ctx ends first, SetPhase returns ctx.Err() and the phase is the one
// it left: nothing was stopped. Switches are serialized: a call waits for
// the one in progress. Before Start, SetPhase only chooses the phase Start
// begins in, like WithPhase. Errors starting a side leave the phase as it
// was.
func (s *Subscription) SetPhase(ctx context.Context, p Phase) error { return s.setPhase(ctx, p, false) }

// ForcePhase is SetPhase without the drain wait: leaving Dual stops the
// side at once, whatever is left on it (messages stored there stay on that
// cluster until a consumer of the group reads it again). It logs the last
// lag reading of that side.
func (s *Subscription) ForcePhase(ctx context.Context, p Phase) error {
	return s.setPhase(ctx, p, true)
}

func (s *Subscription) setPhase(ctx context.Context, to Phase, force bool) error {
	if !to.valid() {
		return fmt.Errorf("%w: phase %d", ErrInvalidOption, int(to))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	s.mu.Lock()
	st, from := s.state, s.phase
	switch {
	case st == stateStopped:
		s.mu.Unlock()
		return ErrStopped
	case st == stateNew:
		s.phase, s.target = to, to
		s.mu.Unlock()
		return nil
	case from == to:
		s.mu.Unlock()
		return nil
	}
	if err := checkTransition(from, to); err != nil {
		s.mu.Unlock()
		return err
	}
	s.target = to
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.target = s.phase
		s.mu.Unlock()
	}()

	log := s.cfg.logger.With("group", s.group, "topic", s.topic, "from", from.String(), "to", to.String())
	began := s.clk.Now()
	if to == Dual {
		if err := s.startSide(ctx, from.missing()); err != nil {
			return err
		}
	} else {
		leaving := Old
		if to == OldOnly {
			leaving = New
		}
		if force {
			st := s.sides[leaving].stats()
			log.Warn("rmqkit migrate: forced phase switch, not waiting for the drain",
				"side", leaving.String(), "drained", st.Drained, "lag", st.Lag, "retry_lag", st.RetryLag, "pending_retries", st.PendingRetries)
		} else {
			log.Info("rmqkit migrate: waiting for the drain", "side", leaving.String())
			if err := s.waitDrained(ctx, leaving); err != nil {
				return err
			}
		}
		s.stopSide(leaving)
	}
	took := s.clk.Now().Sub(began)
	s.mu.Lock()
	s.phase = to
	s.mu.Unlock()
	log.Info("rmqkit migrate: phase switched", "took", took)
	if s.cfg.onPhase != nil {
		s.cfg.onPhase(from, to, took)
	}
	return nil
}

// missing returns the side Dual adds to a single-side phase.
func (p Phase) missing() Side {
	if p == NewOnly {
		return Old
	}
	return New
}

// waitDrained reads side's lag every lag interval until it is drained.
func (s *Subscription) waitDrained(ctx context.Context, side Side) error {
	var lastLog time.Time
	for {
		ok, err := s.refresh(ctx, side)
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if now := s.clk.Now(); now.Sub(lastLog) >= 30*time.Second {
			lastLog = now
			st := s.sides[side].stats()
			s.cfg.logger.Info("rmqkit migrate: side not drained yet", "group", s.group, "topic", s.topic, "side", side.String(),
				"lag", st.Lag, "retry_lag", st.RetryLag, "pending_retries", st.PendingRetries, "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrStopped
		case <-s.clk.After(s.cfg.lagInterval):
		}
	}
}

// Drained reports whether the old cluster is drained, after a fresh
// reading of its consume stats (see the package documentation). A reading
// that fails returns false and the error, and restarts the settle period.
func (s *Subscription) Drained(ctx context.Context) (bool, error) { return s.DrainedSide(ctx, Old) }

// DrainedSide is Drained for either cluster.
func (s *Subscription) DrainedSide(ctx context.Context, side Side) (bool, error) {
	if side != Old && side != New {
		return false, fmt.Errorf("%w: side %d", ErrInvalidOption, int(side))
	}
	s.mu.Lock()
	stopped := s.state == stateStopped
	s.mu.Unlock()
	if stopped {
		return false, ErrStopped
	}
	return s.refresh(ctx, side)
}

// refresh takes one reading of side and records it.
func (s *Subscription) refresh(ctx context.Context, side Side) (bool, error) {
	st := s.sides[side]
	st.pollMu.Lock()
	defer st.pollMu.Unlock()
	at := s.clk.Now()
	r, err := s.lag.read(ctx, side)
	if err != nil && ctx.Err() != nil {
		return false, ctx.Err() // cancelled, not a finding about the cluster
	}
	drained, changed := st.observe(r, err, at, s.cfg.settle, s.cfg.retryGrace)
	if changed {
		s.drainChanged(side, drained)
	}
	return drained, err
}

func (s *Subscription) drainChanged(side Side, drained bool) {
	s.cfg.logger.Debug("rmqkit migrate: drain state changed", "group", s.group, "topic", s.topic, "side", side.String(), "drained", drained)
	if s.cfg.onDrain != nil {
		s.cfg.onDrain(side, drained)
	}
}

// watchLag reads both sides every lag interval until Stop, for Stats and
// the drain hooks, and warns when a side that is not read has messages.
func (s *Subscription) watchLag(done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.done
		cancel()
	}()
	var stranded [2]bool
	for {
		for _, side := range []Side{Old, New} {
			_, err := s.refresh(ctx, side)
			if ctx.Err() != nil {
				return
			}
			st := s.sides[side].stats()
			lost := err == nil && !s.reading(side) && st.Lag+st.RetryLag > 0
			if lost && !stranded[side] {
				s.cfg.logger.Warn("rmqkit migrate: messages wait on a cluster the subscription does not read; switch to dual to consume them",
					"group", s.group, "topic", s.topic, "side", side.String(), "lag", st.Lag, "retry_lag", st.RetryLag)
			}
			stranded[side] = lost
		}
		select {
		case <-s.done:
			return
		case <-s.clk.After(s.cfg.lagInterval):
		}
	}
}

// reading reports whether a consumer runs on side.
func (s *Subscription) reading(side Side) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumers[side] != nil
}

// startSide starts a fresh consumer on side and registers it.
func (s *Subscription) startSide(ctx context.Context, side Side) error {
	began := s.clk.Now()
	c, err := s.startFn(ctx, side)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("migrate: start the %s cluster's consumer: %w", side, err)
	}
	s.mu.Lock()
	s.consumers[side] = c
	s.mu.Unlock()
	s.cfg.logger.Info("rmqkit migrate: consumer started", "group", s.group, "topic", s.topic, "side", side.String(), "took", s.clk.Now().Sub(began))
	return nil
}

// stopSide stops side's consumer, if any. It waits for running handlers
// up to the stop timeout whatever the caller's context: a drained side has
// none, and cutting handlers short would send messages back to a cluster
// nobody reads.
func (s *Subscription) stopSide(side Side) {
	s.mu.Lock()
	c := s.consumers[side]
	s.consumers[side] = nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.stopTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		s.cfg.logger.Warn("rmqkit migrate: consumer stop", "group", s.group, "topic", s.topic, "side", side.String(), "error", err)
	}
}

// buildConsumer returns an unstarted consumer of side with the
// subscription added; extra options come last.
func (s *Subscription) buildConsumer(side Side, extra ...consumer.Option) (*consumer.Consumer, error) {
	cl := s.clusters[side]
	opts := []consumer.Option{
		// First, so outermost: it sees what the consumer sees.
		consumer.WithMiddleware(s.track(side)),
		consumer.WithLogger(s.cfg.logger),
	}
	opts = append(opts, s.cfg.consumerOpts...)
	opts = append(opts,
		// After the caller's options, so that a connection given in
		// WithConsumerOptions cannot make the consumer and the drain
		// readings disagree on names.
		consumer.WithConnection(cl),
		consumer.WithInstanceName(instanceName(s.group, side)),
		consumer.WithStartPosition(s.cfg.start[side]),
	)
	if s.cfg.limiter != nil {
		opts = append(opts, consumer.WithProcessLimiter(s.cfg.limiter))
	}
	c, err := consumer.New(s.group, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%s cluster: %w", side, err)
	}
	sopts := append(append([]consumer.SubscribeOption(nil), s.cfg.subscribeOpts...), consumer.WithSharedPool(s.pool))
	if err := c.Subscribe(s.topic, s.sel, s.handler, sopts...); err != nil {
		_ = c.Stop(context.Background())
		return nil, fmt.Errorf("%s cluster: %w", side, err)
	}
	return c, nil
}

// startConsumer builds and starts side's consumer.
func (s *Subscription) startConsumer(ctx context.Context, side Side) (sideConsumer, error) {
	c, err := s.buildConsumer(side)
	if err != nil {
		return nil, err
	}
	if set := c.Settings(); len(set.Subscriptions) == 1 {
		st := s.sides[side]
		st.maxRetries.Store(int32(set.Subscriptions[0].MaxRetries))
		st.orderly.Store(set.Subscriptions[0].Orderly)
	}
	if err := c.Start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.stopTimeout)
		defer cancel()
		_ = c.Stop(sctx)
		return nil, err
	}
	return c, nil
}

// track is the outermost middleware of each side: it counts outcomes and
// records failures whose retry will come through the broker's schedule.
func (s *Subscription) track(side Side) consumer.Middleware {
	st := s.sides[side]
	return func(next consumer.Handler) consumer.Handler {
		return func(ctx context.Context, m *consumer.Message) (err error) {
			st.delivered(m)
			returned := false
			defer func() {
				if returned && err == nil {
					st.consumed.Add(1)
					return
				}
				// An error, or a panic on its way to the pool, which turns
				// it into a failure.
				if st.failedAt(m, s.clk.Now(), s.cfg.retryDelays) {
					s.drainChanged(side, false)
				}
			}()
			err = next(ctx, m)
			returned = true
			return err
		}
	}
}

// Stats is a snapshot of a Subscription.
type Stats struct {
	Phase Phase // the current phase
	// Target is the phase a switch in progress goes to; equal to Phase
	// when none is.
	Target Phase
	// Old and New describe the two clusters.
	Old, New SideStats
}

// Stats returns a snapshot of the phase and of each side's counters, lag
// and drain state (from the last reading; see WithLagInterval).
func (s *Subscription) Stats() Stats {
	s.mu.Lock()
	out := Stats{Phase: s.phase, Target: s.target}
	reading := [2]bool{s.consumers[Old] != nil, s.consumers[New] != nil}
	s.mu.Unlock()
	out.Old, out.New = s.sides[Old].stats(), s.sides[New].stats()
	out.Old.Reading, out.New.Reading = reading[Old], reading[New]
	return out
}
