package rmqtest

import "time"

// WaitUntil polls cond every 10 ms until it holds or timeout passes, and
// reports whether it held.
func WaitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
