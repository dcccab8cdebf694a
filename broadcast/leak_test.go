//go:build !integration

package broadcast

import (
	"testing"

	"go.uber.org/goleak"
)

// run runs the unit tests and checks that they leave no goroutine behind.
func run(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
