//go:build integration

package broadcast

import (
	"os"
	"testing"
)

// run runs the tests. Integration tests do not check for leaks: the
// client's goroutines outlive Shutdown by minutes (a cleanExpiredMsg loop
// sleeps ConsumeTimeout before looking at the shutdown signal).
func run(m *testing.M) { os.Exit(m.Run()) }
