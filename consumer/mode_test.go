package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// recordingMode renames the group and records its calls.
type recordingMode struct {
	calls       []string
	setup       ModeSetup
	beforeStart error
}

func (m *recordingMode) Setup(s *ModeSetup) error {
	m.calls = append(m.calls, "setup")
	m.setup = *s
	s.Group = s.Group + "-instance"
	s.Instance = "mode-instance"
	s.Start = StartFromEarliest
	return nil
}

func (m *recordingMode) BeforeStart(_ context.Context, st ModeStart) error {
	m.calls = append(m.calls, "before-start "+strings.Join(st.Topics, ","))
	return m.beforeStart
}

func (m *recordingMode) AfterStart(context.Context, ModeStart) error {
	m.calls = append(m.calls, "after-start")
	return nil
}

func (m *recordingMode) AfterStop(context.Context) { m.calls = append(m.calls, "after-stop") }

// A mode sees the consumer's connection in Setup and may choose its group,
// instance name and start position; it is called before the client starts
// (an error leaves the consumer startable) and at the end of Stop.
func TestModeAttachesToTheConsumersLifeCycle(t *testing.T) {
	m := &recordingMode{beforeStart: errors.New("not yet")}
	c, err := New("orders", WithNameServer("127.0.0.1:1"), WithNamespace("prod"), WithCredentials("ak", "sk"),
		WithLogger(slog.New(slog.DiscardHandler)), WithMode(m))
	if err != nil {
		t.Fatal(err)
	}
	conn := m.setup.Connection
	if m.setup.Group != "orders" || conn.Namespace != "prod" || conn.AccessKey != "ak" || conn.SecretKey != "sk" || conn.NameServers[0] != "127.0.0.1:1" {
		t.Fatalf("Setup saw %+v", m.setup)
	}
	if strings.Contains(conn.String(), "sk") {
		t.Fatalf("Connection.String() shows the secret: %s", conn)
	}
	if c.Group() != "orders-instance" || c.cfg.instance != "mode-instance" || c.cfg.start != StartFromEarliest || c.Mode() != m {
		t.Fatalf("group %q, instance %q, start %v, mode %v: the mode's choices were not applied", c.Group(), c.cfg.instance, c.cfg.start, c.Mode())
	}
	if err := c.Subscribe("b", All, func(context.Context, *Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("a", All, func(context.Context, *Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != m.beforeStart {
		t.Fatalf("Start = %v, want the mode's error", err)
	}
	if c.state != stateNew {
		t.Fatalf("state after the mode refused the start: %v, want new (startable)", c.state)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.calls, "; "); got != "setup; before-start a,b; after-stop" {
		t.Fatalf("calls: %s", got)
	}
}

func TestSecondModeIsRejected(t *testing.T) {
	_, err := New("orders", WithNameServer("127.0.0.1:1"), WithMode(&recordingMode{}), WithMode(&recordingMode{}))
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("New with two modes = %v, want ErrInvalidOption", err)
	}
}
