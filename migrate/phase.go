package migrate

import (
	"fmt"
	"strings"
)

// Phase says which clusters a Subscription reads.
type Phase int

const (
	// OldOnly reads the old cluster only. It is the default initial phase.
	OldOnly Phase = iota
	// Dual reads both clusters.
	Dual
	// NewOnly reads the new cluster only.
	NewOnly
)

// String returns "old-only", "dual" or "new-only".
func (p Phase) String() string {
	switch p {
	case OldOnly:
		return "old-only"
	case Dual:
		return "dual"
	case NewOnly:
		return "new-only"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

func (p Phase) valid() bool { return p >= OldOnly && p <= NewOnly }

// reads reports whether the phase reads side.
func (p Phase) reads(s Side) bool {
	return p == Dual || (p == OldOnly && s == Old) || (p == NewOnly && s == New)
}

// ParsePhase returns the phase named s: "old-only" (or "old"), "dual", or
// "new-only" (or "new"), in any case.
func ParsePhase(s string) (Phase, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "old-only", "old":
		return OldOnly, nil
	case "dual":
		return Dual, nil
	case "new-only", "new":
		return NewOnly, nil
	}
	return 0, fmt.Errorf("%w: phase %q: want old-only, dual or new-only", ErrInvalidOption, s)
}

// MarshalText returns the phase's String, for encoders and flags.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("%w: phase %d", ErrInvalidOption, int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a phase name like ParsePhase.
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := ParsePhase(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// checkTransition reports whether a Subscription may switch from one phase
// to the other. Every switch that changes the set of sides read goes
// through Dual, so that one side always reads while the other starts or
// drains.
func checkTransition(from, to Phase) error {
	if !to.valid() {
		return fmt.Errorf("%w: phase %d", ErrInvalidOption, int(to))
	}
	if (from == OldOnly && to == NewOnly) || (from == NewOnly && to == OldOnly) {
		return fmt.Errorf("%w: %v to %v (switch to dual first)", ErrInvalidTransition, from, to)
	}
	return nil
}

// Side is one of the two clusters.
type Side int

const (
	// Old is the cluster the topic moves away from.
	Old Side = iota
	// New is the cluster the topic moves to.
	New
)

// String returns "old" or "new".
func (s Side) String() string {
	if s == New {
		return "new"
	}
	return "old"
}

func (s Side) other() Side { return 1 - s }
