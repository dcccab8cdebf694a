package broadcast

import (
	"log/slog"
	"os"
	"testing"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	run(m)
}

// helperModeEnv selects the mode of a helper process
// (killrestart_integration_test.go).
const helperModeEnv = "RMQKIT_BROADCAST_HELPER"
