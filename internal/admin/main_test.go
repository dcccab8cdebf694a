package admin

import (
	"os"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func TestMain(m *testing.M) {
	// rocketmq-client-go (used by some tests to compare with, or to produce
	// and consume) logs at info level by default.
	rlog.SetLogLevel("error")
	os.Exit(m.Run())
}
