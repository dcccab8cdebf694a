package migrate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParsePhaseAcceptsNamesAndShortNames(t *testing.T) {
	for in, want := range map[string]Phase{
		"old-only": OldOnly, "old": OldOnly, "OLD": OldOnly, " dual ": Dual,
		"new-only": NewOnly, "new": NewOnly, "New-Only": NewOnly,
	} {
		got, err := ParsePhase(in)
		if err != nil || got != want {
			t.Errorf("ParsePhase(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "both", "old_only", "1"} {
		if _, err := ParsePhase(in); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ParsePhase(%q) error = %v, want ErrInvalidOption", in, err)
		}
	}
	for _, p := range []Phase{OldOnly, Dual, NewOnly} {
		var back Phase
		b, _ := p.MarshalText()
		if err := back.UnmarshalText(b); err != nil || back != p {
			t.Errorf("text round trip of %v = %v, %v", p, back, err)
		}
	}
}

// Every switch between phases: which are allowed, and which sides read
// afterwards. Drains are immediate here (no lag, no settle).
func TestPhaseTransitions(t *testing.T) {
	type tc struct {
		from, to Phase
		wantErr  error
		reading  []Side // sides with a running consumer afterwards
	}
	run := func(t *testing.T, c tc) {
		t.Helper()
		e := newEnv(t, WithPhase(c.from), WithSettle(0))
		e.start()
		err := e.s.SetPhase(context.Background(), c.to)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
			t.Fatalf("SetPhase(%v -> %v) = %v, want %v", c.from, c.to, err, c.wantErr)
		}
		wantPhase := c.to
		if c.wantErr != nil {
			wantPhase = c.from
		}
		if got := e.s.Phase(); got != wantPhase {
			t.Errorf("phase = %v, want %v", got, wantPhase)
		}
		got := e.running()
		slices.Sort(got)
		if !slices.Equal(got, c.reading) {
			t.Errorf("running consumers on %v, want %v", got, c.reading)
		}
		if st := e.s.Stats(); st.Target != st.Phase {
			t.Errorf("stats target %v != phase %v after the switch", st.Target, st.Phase)
		}
	}
	for _, c := range []tc{
		{OldOnly, OldOnly, nil, []Side{Old}},
		{OldOnly, Dual, nil, []Side{Old, New}},
		{OldOnly, NewOnly, ErrInvalidTransition, []Side{Old}},
		{Dual, Dual, nil, []Side{Old, New}},
		{Dual, NewOnly, nil, []Side{New}},
		{Dual, OldOnly, nil, []Side{Old}},
		{NewOnly, NewOnly, nil, []Side{New}},
		{NewOnly, Dual, nil, []Side{Old, New}},
		{NewOnly, OldOnly, ErrInvalidTransition, []Side{New}},
	} {
		t.Run(c.from.String()+"_to_"+c.to.String(), func(t *testing.T) { run(t, c) })
	}
}

// A side needed again gets a fresh consumer: the client cannot restart a
// stopped one.
func TestReturningToDualStartsAFreshConsumer(t *testing.T) {
	e := newEnv(t, WithSettle(0))
	e.start()
	ctx := context.Background()
	for _, p := range []Phase{Dual, NewOnly, Dual, OldOnly, Dual} {
		if err := e.s.SetPhase(ctx, p); err != nil {
			t.Fatalf("SetPhase(%v): %v", p, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var sides []Side
	for _, c := range e.started {
		sides = append(sides, c.side)
	}
	// old (Start), new (Dual), old again (NewOnly->Dual), new again (OldOnly->Dual)
	if want := []Side{Old, New, Old, New}; !slices.Equal(sides, want) {
		t.Errorf("consumers started on %v, want %v", sides, want)
	}
}

func TestSetPhaseBeforeStartChoosesTheInitialPhase(t *testing.T) {
	e := newEnv(t)
	if err := e.s.SetPhase(context.Background(), NewOnly); err != nil {
		t.Fatal(err) // no transition rule before Start: nothing runs yet
	}
	e.start()
	if got := e.running(); !slices.Equal(got, []Side{New}) {
		t.Errorf("after Start in new-only, running %v", got)
	}
}

func TestInvalidPhaseIsRejected(t *testing.T) {
	e := newEnv(t)
	e.start()
	if err := e.s.SetPhase(context.Background(), Phase(7)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("SetPhase(7) = %v, want ErrInvalidOption", err)
	}
}

func TestFailedStartOfASideLeavesThePhase(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.failNew = errors.New("no route to the new cluster")
	if err := e.s.SetPhase(context.Background(), Dual); err == nil {
		t.Fatal("SetPhase(dual) succeeded although the new side failed to start")
	}
	if p := e.s.Phase(); p != OldOnly {
		t.Errorf("phase = %v, want old-only", p)
	}
	if err := e.s.SetPhase(context.Background(), Dual); err != nil {
		t.Errorf("second try: %v", err)
	}
}

func TestStartFailureCanBeRetried(t *testing.T) {
	e := newEnv(t, WithPhase(Dual))
	e.mu.Lock()
	e.failNew = errors.New("boom") // the first side to start (old) fails
	e.mu.Unlock()
	if err := e.s.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded")
	}
	e.start()
	if got := e.running(); len(got) != 2 {
		t.Errorf("running %v after the second Start, want both sides", got)
	}
	if err := e.s.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("third Start = %v, want ErrStarted", err)
	}
}

func TestStoppedSubscriptionRefusesEverything(t *testing.T) {
	e := newEnv(t)
	e.start()
	if err := e.s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(e.running()) != 0 {
		t.Error("a consumer still runs after Stop")
	}
	ctx := context.Background()
	if err := e.s.SetPhase(ctx, Dual); !errors.Is(err, ErrStopped) {
		t.Errorf("SetPhase after Stop = %v", err)
	}
	if err := e.s.Start(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v", err)
	}
	if _, err := e.s.Drained(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Drained after Stop = %v", err)
	}
	if err := e.s.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v", err)
	}
}

func TestPhaseHookReportsEverySwitch(t *testing.T) {
	type sw struct{ from, to Phase }
	var got []sw
	e := newEnv(t, WithSettle(3*time.Second), WithOnPhaseChange(func(from, to Phase, took time.Duration) {
		got = append(got, sw{from, to})
		if to == NewOnly && took < 3*time.Second {
			t.Errorf("switch to new-only took %v, less than the settle period", took)
		}
	}))
	e.start()
	ctx := context.Background()
	_ = e.s.SetPhase(ctx, Dual)
	_ = e.s.SetPhase(ctx, NewOnly)
	if want := []sw{{OldOnly, Dual}, {Dual, NewOnly}}; !slices.Equal(got, want) {
		t.Errorf("hook saw %v, want %v", got, want)
	}
}
