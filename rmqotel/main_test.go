package rmqotel_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func TestMain(m *testing.M) {
	// The client's own log, errors only (integration tests start clients).
	rmqlog.Install(slog.New(slog.NewTextHandler(os.Stderr, nil)), rmqlog.WithLevel(slog.LevelError))
	os.Exit(m.Run())
}
