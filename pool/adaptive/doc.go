// Package adaptive decides the size of a worker pool from what its tasks
// measure: it finds the concurrency at which a downstream (a database, an
// HTTP service) gives its full throughput, and keeps the pool there, at the
// lowest latency that reaches it.
//
// The controller is a pure function, Next, of its State and one Window of
// samples; it does no I/O, reads no clock and starts no goroutine, so that
// it is tested against a simulated downstream with a virtual clock. The
// consumer package drives it once per window for a subscription opened with
// consumer.WithAdaptivePool, and applies the size through pool.Pool.Resize.
//
// # Algorithm
//
// A window's sample is the task's own run time (never time spent waiting for
// a rate limit or a worker); r is the window's median. The baseline b is the
// median run time without queueing at the downstream, measured by a probe: a
// window run at a low size (the minimum at start, half the size every
// ProbeEvery windows after), so that b follows a downstream whose unloaded
// latency changes. With L the size:
//
//   - more than 5% of the window's tasks failed (errors, timeouts): L shrinks
//     by a tenth (a downstream that times out at constant latency is not
//     mistaken for one that has room);
//   - start: L grows by half each window while r stays within 10% of b and
//     the pool is saturated (slow start); the first window with r above that
//     ends it;
//   - then L becomes L·b/r + h, with h = max(2, L/10): below the knee r ≈ b
//     and L grows by h; above it, r grows with the queue the downstream
//     builds and L falls back to the knee in one window (Little's law: the
//     downstream serves L·b/r at once without queueing). The fixed point is
//     the knee plus at most h: full throughput with at most a tenth (two
//     workers for small pools) more latency than the knee's; the headroom
//     also covers the gaps between one handler returning and the next
//     message reaching its worker. A shrink for queueing needs two windows in a
//     row that ask for it (one slow window may be a pause, or a neighbour
//     on the CPU), except right after slow start, whose overshoot is
//     corrected at once. After a shrink from a settled size, while no
//     queueing shows, L grows back by half per window toward that size (a
//     pause should not cost minutes of additive growth); one recovery step
//     that meets queueing is undone at once and the old size forgotten.
//   - L never grows while the pool is not saturated (the load, not the
//     downstream, bounds throughput: no upward drift), nor while a rate
//     limit made tasks wait in the window (the limit, not concurrency,
//     bounds it).
//
// L stays in [Min, Max]. After 5 windows at Min without errors the baseline
// is measured again, so that a pool is not stuck at its floor once the load
// that drove it there has gone.
//
// # When not to use it
//
// Do not use it when the handler's run time does not grow with concurrency
// (CPU-bound handlers on a machine the pool does not saturate, or a
// downstream that rejects rather than queues: use a rate limit), when
// windows see fewer than 20 tasks (the controller holds the size), or when
// the order of handling matters more than throughput.
package adaptive
