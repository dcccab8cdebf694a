//go:build !integration

package config_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// ants starts a default pool at import; only goroutines the tests leave
	// behind count.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}
