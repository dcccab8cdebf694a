package adaptive_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/pool/adaptive"
)

// at returns a steady state at limit l with baseline b (after the slow
// start, before any probe is due).
func at(t *testing.T, cfg adaptive.Config, l int, b time.Duration) adaptive.State {
	t.Helper()
	s := adaptive.Start(cfg)
	// Slow start from Min until l, then one window with queueing ends it.
	for s.Limit < l {
		s = adaptive.Next(cfg, s, adaptive.Window{Samples: 100, Median: b, Utilization: 1})
	}
	s = adaptive.Next(cfg, s, adaptive.Window{Samples: 100, Median: 3 * b / 2, Utilization: 1})
	s = adaptive.Next(cfg, s, adaptive.Window{Samples: 100, Median: b, Utilization: 0.5}) // a quiet window
	if s.Baseline != b {
		t.Fatalf("baseline %v, want %v", s.Baseline, b)
	}
	return s
}

func TestNext(t *testing.T) {
	const b = 10 * time.Millisecond
	cfg := adaptive.Config{Min: 2, Max: 100, ProbeEvery: -1}
	tests := []struct {
		name   string
		w      adaptive.Window
		times  int // windows like w in a row (0: 1)
		want   func(l int) bool
		reason adaptive.Reason
	}{
		{"no queueing, saturated: grows by a tenth",
			adaptive.Window{Samples: 100, Median: b, Utilization: 0.95}, 1, func(l int) bool { return l > 40 && l <= 44 }, adaptive.ReasonGrow},
		{"no queueing, not saturated: holds",
			adaptive.Window{Samples: 100, Median: b, Utilization: 0.5}, 1, func(l int) bool { return l == 40 }, adaptive.ReasonNotSaturated},
		{"no queueing, saturated but rate-limited: holds",
			adaptive.Window{Samples: 100, Median: b, Utilization: 1, Throttled: true}, 1, func(l int) bool { return l == 40 }, adaptive.ReasonThrottled},
		{"one window at twice the baseline: holds (a pause is not queueing)",
			adaptive.Window{Samples: 100, Median: 2 * b, Utilization: 1}, 1, func(l int) bool { return l == 40 }, adaptive.ReasonHold},
		{"two windows at twice the baseline: back to half plus headroom",
			adaptive.Window{Samples: 100, Median: 2 * b, Utilization: 1}, 2, func(l int) bool { return l >= 20 && l <= 24 }, adaptive.ReasonQueueing},
		{"median twice the baseline while rate-limited: still shrinks",
			adaptive.Window{Samples: 100, Median: 2 * b, Utilization: 1, Throttled: true}, 2, func(l int) bool { return l < 40 }, adaptive.ReasonQueueing},
		{"6% errors: a tenth less",
			adaptive.Window{Samples: 100, Errors: 6, Median: b, Utilization: 1}, 1, func(l int) bool { return l == 36 }, adaptive.ReasonErrors},
		{"5% errors: not an error window",
			adaptive.Window{Samples: 100, Errors: 5, Median: b, Utilization: 1}, 1, func(l int) bool { return l > 40 }, adaptive.ReasonGrow},
		{"19 samples: holds",
			adaptive.Window{Samples: 19, Median: 5 * b, Utilization: 1}, 1, func(l int) bool { return l == 40 }, adaptive.ReasonFewSamples},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := at(t, cfg, 40, b)
			s.Limit = 40
			got := s
			for range max(tt.times, 1) {
				got = adaptive.Next(cfg, got, tt.w)
			}
			if !tt.want(got.Limit) || got.Reason != tt.reason {
				t.Fatalf("Next = %d (%s), want %s", got.Limit, got.Reason, tt.reason)
			}
		})
	}
}

func TestNextStaysWithinBounds(t *testing.T) {
	cfg := adaptive.Config{Min: 4, Max: 10}
	s := adaptive.Start(cfg)
	if s.Limit != 4 {
		t.Fatalf("Start = %d, want Min 4", s.Limit)
	}
	for range 20 {
		s = adaptive.Next(cfg, s, adaptive.Window{Samples: 100, Median: time.Millisecond, Utilization: 1})
	}
	if s.Limit != 10 {
		t.Fatalf("after growth: %d, want Max 10", s.Limit)
	}
	for range 20 {
		s = adaptive.Next(cfg, s, adaptive.Window{Samples: 100, Errors: 100, Median: time.Millisecond, Utilization: 1})
	}
	if s.Limit != 4 {
		t.Fatalf("after errors: %d, want Min 4", s.Limit)
	}
}

func TestNextProbesTheBaselineEveryProbeEveryWindows(t *testing.T) {
	cfg := adaptive.Config{Min: 2, Max: 100, ProbeEvery: 10}
	s := at(t, cfg, 40, 10*time.Millisecond)
	probes := 0
	for range 50 {
		before := s.Limit
		// The downstream got slower for everyone: the baseline must follow.
		s = adaptive.Next(cfg, s, adaptive.Window{Samples: 100, Median: 20 * time.Millisecond, Utilization: 1})
		if s.Reason == adaptive.ReasonProbe {
			probes++
			if s.Limit != before/2 {
				t.Fatalf("probe at %d, want half of %d", s.Limit, before)
			}
		}
	}
	if probes < 4 || s.Baseline != 20*time.Millisecond {
		t.Fatalf("%d probes, baseline %v; want 4 or more and 20ms", probes, s.Baseline)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []adaptive.Config{{Min: -1}, {Min: 10, Max: 5}, {Max: 1 << 20}} {
		if err := c.Validate(1 << 16); !errors.Is(err, adaptive.ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", c, err)
		}
	}
	if err := (adaptive.Config{}).Validate(1 << 16); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestReasonString(t *testing.T) {
	if got := adaptive.ReasonThrottled.String(); got != "throttled" {
		t.Fatalf("%q", got)
	}
	if got := adaptive.Reason(200).String(); got != "reason(200)" {
		t.Fatalf("%q", got)
	}
}
