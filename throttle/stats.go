package throttle

import "time"

// Stats is a snapshot of a Limiter's counters, built from atomics.
type Stats struct {
	Limit    Limit         // the limit in force
	Admitted uint64        // messages admitted while a limit was in force
	Waits    uint64        // calls that had to wait, for a token or behind another caller
	WaitTime time.Duration // the total time those calls waited
	Waiting  int           // callers waiting now
}

// Stats returns the Limiter's counters. Calls made while the Limiter was
// unlimited are not counted: they cost nothing and wait for nothing.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{
		Limit:    l.Limit(),
		Admitted: l.admitted.Load(),
		Waits:    l.waits.Load(),
		WaitTime: time.Duration(l.waitNs.Load()),
		Waiting:  int(l.waiting.Load()),
	}
}
