package consumer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// recordingPlugin sets a pool size for one topic and records its calls.
type recordingPlugin struct {
	attachErr error
	topic     string
	pool      int
	calls     []string
}

func (p *recordingPlugin) attach(c *Consumer) (Plugin, error) {
	p.calls = append(p.calls, "attach "+c.Group())
	return p, p.attachErr
}

func (p *recordingPlugin) SubscribeOptions(topic string) ([]SubscribeOption, error) {
	p.calls = append(p.calls, "options "+topic)
	if topic == "bad" {
		return nil, errors.New("no such topic in the plugin")
	}
	if topic != p.topic {
		return nil, nil
	}
	return []SubscribeOption{WithPoolSize(p.pool)}, nil
}

func (p *recordingPlugin) Start(context.Context) error {
	p.calls = append(p.calls, "start")
	return nil
}
func (p *recordingPlugin) Stop(context.Context) { p.calls = append(p.calls, "stop") }

// A plugin attaches in New, and its subscription options win over the
// code's, with each replaced value logged.
func TestPluginOptionsWinOverTheCodesAndAreLogged(t *testing.T) {
	var log bytes.Buffer
	p := &recordingPlugin{topic: "orders", pool: 12}
	c, err := New("g", WithNameServer("127.0.0.1:1"), WithLogger(slog.New(slog.NewTextHandler(&log, nil))), WithPlugin(p.attach))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	h := func(context.Context, *Message) error { return nil }
	if err := c.Subscribe("orders", All, h, WithPoolSize(3)); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("other", All, h, WithPoolSize(3)); err != nil {
		t.Fatal(err)
	}
	set := c.Settings().Subscriptions
	if set[0].PoolSize != 12 || set[1].PoolSize != 3 {
		t.Fatalf("pool sizes %d, %d; want the plugin's 12 for orders, the code's 3 for other", set[0].PoolSize, set[1].PoolSize)
	}
	if !strings.Contains(log.String(), `option="pool size" code=3 plugin=12`) {
		t.Fatalf("log does not show the replaced pool size:\n%s", log.String())
	}
	if err := c.Subscribe("bad", All, h); err == nil || !strings.Contains(err.Error(), `topic "bad": no such topic in the plugin`) {
		t.Fatalf("Subscribe(bad) = %v, want the plugin's error naming the topic", err)
	}
	if got := strings.Join(p.calls, ", "); got != "attach g, options orders, options other, options bad" {
		t.Fatalf("calls: %s", got)
	}
	// Stop of a consumer that never started does not stop its plugins.
	_ = c.Stop(context.Background())
	if p.calls[len(p.calls)-1] == "stop" {
		t.Fatal("Stop stopped a plugin that never started")
	}
}

func TestPluginAttachErrorFailsNew(t *testing.T) {
	boom := errors.New("boom")
	if _, err := New("g", WithNameServer("127.0.0.1:1"), WithPlugin((&recordingPlugin{attachErr: boom}).attach)); !errors.Is(err, boom) {
		t.Fatalf("New = %v, want the plugin's error", err)
	}
}

// One option may build several consumers: each gets a plugin of its own.
func TestOneOptionAttachesAPluginPerConsumer(t *testing.T) {
	var made []*recordingPlugin
	opt := WithPlugin(func(c *Consumer) (Plugin, error) {
		p := &recordingPlugin{}
		made = append(made, p)
		return p, nil
	})
	for range 2 {
		c, err := New("g", WithNameServer("127.0.0.1:1"), opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
		if ps := c.Plugins(); len(ps) != 1 || ps[0] != Plugin(made[len(made)-1]) {
			t.Fatalf("Plugins() = %v, want the consumer's own", ps)
		}
	}
	if len(made) != 2 || made[0] == made[1] {
		t.Fatalf("made %d plugins, want one per consumer", len(made))
	}
}
