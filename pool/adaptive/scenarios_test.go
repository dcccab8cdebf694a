package adaptive_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/pool/adaptive"
)

const (
	s0   = 50 * time.Millisecond
	win  = time.Second
	knee = 40.0
)

func base(k func(time.Duration) float64) downstream {
	return downstream{knee: k, base: s0, sigma: 0.2}
}

// trace formats the sizes of a run, for failure messages.
func trace(rs []record) string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "%d:%d(%s,%.0f/s,%v) ", i, r.limit, r.reason, r.throughput, r.median.Round(100*time.Microsecond))
		if i%8 == 7 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// steady reports the records of windows [from, to) that were not probes
// (a probe runs one window at half the size on purpose).
func steady(rs []record, from, to int) []record {
	var out []record
	for _, r := range rs[from:to] {
		if r.reason != adaptive.ReasonProbed {
			out = append(out, r)
		}
	}
	return out
}

func meanThroughput(rs []record) float64 {
	var sum float64
	for _, r := range rs {
		sum += r.throughput
	}
	return sum / float64(len(rs))
}

// S1: from the minimum, the size converges into [C, 1.5C] and the
// throughput reaches 0.9 of the downstream's capacity.
func TestS1ConvergesNearTheKneeAtFullThroughput(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rs := simulate(scenario{down: base(constant(knee)), window: win, windows: 120, seed: seed})
		capacity := knee / s0.Seconds()
		for i, r := range steady(rs, 20, len(rs)) {
			if r.limit < knee || r.limit > 1.5*knee {
				t.Fatalf("seed %d: window %d ran at %d, outside [%v, %v]\n%s", seed, i+20, r.limit, knee, 1.5*knee, trace(rs))
			}
		}
		if got := meanThroughput(rs[20:]); got < 0.9*capacity {
			t.Fatalf("seed %d: throughput %.0f/s is below 0.9 of the capacity %.0f/s\n%s", seed, got, capacity, trace(rs))
		}
		if i := firstAtLeast(rs, knee); i > 15 {
			t.Errorf("seed %d: reached the knee only after %d windows\n%s", seed, i, trace(rs))
		}
		t.Logf("seed %d: knee reached at window %d; sizes %s; %.3f of capacity", seed, firstAtLeast(rs, knee), span(steady(rs, 20, len(rs))), meanThroughput(rs[20:])/capacity)
	}
}

// span formats the range of sizes of rs.
func span(rs []record) string {
	lo, hi := 1<<30, 0
	for _, r := range rs {
		lo, hi = min(lo, r.limit), max(hi, r.limit)
	}
	return fmt.Sprintf("[%d, %d]", lo, hi)
}

func firstAtLeast(rs []record, l float64) int {
	for i, r := range rs {
		if float64(r.limit) >= l {
			return i
		}
	}
	return len(rs)
}

// S2: the capacity drops from 40 to 10: the size is at most 15 within 10
// windows and stays there.
func TestS2FollowsACapacityDropWithinTenWindows(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rs := simulate(scenario{down: base(step(40, 10, 60*win)), window: win, windows: 130, seed: seed})
		if rs[59].limit < 40 {
			t.Fatalf("seed %d: not converged before the drop (%d)\n%s", seed, rs[59].limit, trace(rs))
		}
		for i, r := range steady(rs, 70, len(rs)) {
			if r.limit > 15 {
				t.Fatalf("seed %d: window %d ran at %d > 15 after the drop\n%s", seed, i+70, r.limit, trace(rs))
			}
		}
		t.Logf("seed %d: %d before the drop, at most 15 after %d windows; sizes then %s", seed, rs[59].limit, firstAtMost(rs[60:], 15)+1, span(steady(rs, 70, len(rs))))
	}
}

// S3: the capacity rises from 10 to 40: the size is at least 32 within 60
// windows.
func TestS3FollowsACapacityRiseWithinSixtyWindows(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rs := simulate(scenario{down: base(step(10, 40, 60*win)), window: win, windows: 130, seed: seed})
		if l := rs[59].limit; l > 15 {
			t.Fatalf("seed %d: before the rise the size is %d, want about 10\n%s", seed, l, trace(rs))
		}
		if i := firstAtLeast(rs[60:], 32); i > 60 {
			t.Fatalf("seed %d: size below 32 for 60 windows after the rise\n%s", seed, trace(rs))
		}
		t.Logf("seed %d: %d before the rise, 32 or more after %d windows; sizes after 60 more %s", seed, rs[59].limit, firstAtLeast(rs[60:], 32)+1, span(steady(rs, 120, len(rs))))
	}
}

// S4: the load, not the downstream, is the bound (arrivals at half the
// capacity): over a simulated hour the size does not drift upward.
func TestS4NoUpwardDriftWhenTheLoadIsBelowCapacity(t *testing.T) {
	d := downstream{knee: constant(knee), base: 200 * time.Millisecond, sigma: 0.2}
	capacity := knee / d.base.Seconds()
	rs := simulate(scenario{down: d, load: load{rate: capacity / 2}, window: win, windows: 3600, seed: 7})
	early := maxLimit(rs[60:600])
	late := maxLimit(rs[600:])
	if late > early+1 || late > int(1.5*knee) {
		t.Fatalf("size drifted: at most %d in minutes 1-10, %d after (knee %v)\n%s", early, late, knee, trace(rs[:200]))
	}
	t.Logf("app-limited: size at most %d early, %d late; final %d", early, late, rs[len(rs)-1].limit)
}

func firstAtMost(rs []record, l int) int {
	for i, r := range rs {
		if r.limit <= l {
			return i
		}
	}
	return len(rs)
}

func maxLimit(rs []record) int {
	m := 0
	for _, r := range rs {
		m = max(m, r.limit)
	}
	return m
}

// S5: the downstream stops answering and every call times out after the
// same second: the size goes to the minimum and stays there.
func TestS5ShrinksToTheMinimumUnderConstantLatencyTimeouts(t *testing.T) {
	d := base(constant(knee))
	d.timeoutAt, d.timeout = 40*win, time.Second
	cfg := adaptive.Config{Min: 2}
	rs := simulate(scenario{down: d, cfg: cfg, window: win, windows: 140, seed: 3})
	if rs[39].limit < 40 {
		t.Fatalf("not converged before the timeouts\n%s", trace(rs))
	}
	for i, r := range rs[100:] {
		if r.limit != 2 {
			t.Fatalf("window %d ran at %d, want the minimum 2\n%s", i+100, r.limit, trace(rs))
		}
	}
	t.Logf("%d before the timeouts; at the minimum after %d windows", rs[39].limit, firstAtMost(rs[40:], 2)+1)
}

// S6: 10% of calls are 10 times slower: the size stays stable (within 15%
// of its mean, probes aside) and near the knee.
func TestS6StableWithTenPercentSlowOutliers(t *testing.T) {
	d := base(constant(knee))
	d.outliers = 0.1
	rs := simulate(scenario{down: d, window: win, windows: 200, seed: 5})
	st := steady(rs, 30, len(rs))
	lo, hi, sum := 1<<30, 0, 0
	for _, r := range st {
		lo, hi, sum = min(lo, r.limit), max(hi, r.limit), sum+r.limit
	}
	mean := float64(sum) / float64(len(st))
	if float64(hi) > 1.15*mean || float64(lo) < 0.85*mean || mean < knee || mean > 1.5*knee {
		t.Fatalf("size in [%d, %d], mean %.1f: not stable near the knee %v\n%s", lo, hi, mean, knee, trace(rs))
	}
	t.Logf("sizes in [%d, %d], mean %.1f, over %d windows", lo, hi, mean, len(st))
}

// S7: a downstream whose throughput falls past its knee: the size settles
// near the peak, at 0.9 of the peak throughput or better.
func TestS7SettlesNearThePeakOfARetrogradeDownstream(t *testing.T) {
	d := base(constant(knee))
	d.retro = true
	peak := knee / s0.Seconds()
	for seed := uint64(1); seed <= 5; seed++ {
		rs := simulate(scenario{down: d, window: win, windows: 120, seed: seed})
		for i, r := range steady(rs, 20, len(rs)) {
			if r.limit < int(0.8*knee) || r.limit > int(1.3*knee) {
				t.Fatalf("seed %d: window %d ran at %d, not near the peak %v\n%s", seed, i+20, r.limit, knee, trace(rs))
			}
		}
		if got := meanThroughput(rs[20:]); got < 0.9*peak {
			t.Fatalf("seed %d: throughput %.0f/s below 0.9 of the peak %.0f/s\n%s", seed, got, peak, trace(rs))
		}
		t.Logf("seed %d: sizes %s; %.3f of the peak", seed, span(steady(rs, 20, len(rs))), meanThroughput(rs[20:])/peak)
	}
}

// A pause of two windows (every call three times slower, as when the
// consumer's process is starved of CPU) shrinks the pool, which grows back
// to where it was within 5 windows instead of a tenth per window.
func TestAfterAPauseTheSizeComesBackQuickly(t *testing.T) {
	d := base(constant(knee))
	d.pauseFrom, d.pauseTo, d.pauseFactor = 30*win, 32*win, 3
	rs := simulate(scenario{down: d, window: win, windows: 60, seed: 9})
	before := rs[29].limit
	if rs[33].limit > before*2/3 {
		t.Fatalf("the pause did not shrink the pool (%d -> %d): the scenario tests nothing\n%s", before, rs[33].limit, trace(rs))
	}
	back := firstAtLeast(rs[33:], float64(before)*0.9)
	if back > 5 {
		t.Fatalf("size %d before the pause, below 0.9 of it for %d windows after\n%s", before, back, trace(rs[25:50]))
	}
	t.Logf("size %d before the pause, %d after it, back to 0.9 of it in %d windows", before, rs[33].limit, back)
}

// A capacity drop to 30 (a shrink the recovery tries to undo once) does
// not make the size oscillate between the old and the new knee.
func TestRecoveryAfterARealDropDoesNotOscillate(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rs := simulate(scenario{down: base(step(40, 30, 40*win)), window: win, windows: 120, seed: seed})
		recovers := 0
		for _, r := range rs[40:] {
			if r.reason == adaptive.ReasonRecover {
				recovers++
			}
		}
		st := steady(rs, 50, len(rs))
		above := 0
		for _, r := range st {
			if r.limit > 40 {
				above++
			}
		}
		// One recovery step may try the old size once.
		if recovers > 1 || above > 1 {
			t.Fatalf("seed %d: %d recovery steps, %d windows above 40, sizes %s after the drop to 30\n%s", seed, recovers, above, span(st), trace(rs[38:80]))
		}
	}
}
