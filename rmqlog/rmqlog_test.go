package rmqlog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqkit/rmqkit/rmqlog"
)

const (
	secretBody = "SECRET-BODY-42"
	secretProp = "SECRET-PROP"
)

// capture is a JSON slog sink whose handler accepts every level, so that
// only the adapter's own filtering decides what is written.
type capture struct {
	buf bytes.Buffer
}

func (c *capture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *capture) raw() string { return c.buf.String() }

func (c *capture) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("output line is not JSON: %v: %q", err, line)
		}
		out = append(out, rec)
	}
	return out
}

func (c *capture) only(t *testing.T) map[string]any {
	t.Helper()
	recs := c.records(t)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1:\n%s", len(recs), c.raw())
	}
	return recs[0]
}

// logFunc selects one rlog.Logger method.
type logFunc func(l rlog.Logger, msg string, fields map[string]any)

var (
	debugf   logFunc = func(l rlog.Logger, m string, f map[string]any) { l.Debug(m, f) }
	infof    logFunc = func(l rlog.Logger, m string, f map[string]any) { l.Info(m, f) }
	warningf logFunc = func(l rlog.Logger, m string, f map[string]any) { l.Warning(m, f) }
	errorf   logFunc = func(l rlog.Logger, m string, f map[string]any) { l.Error(m, f) }
	fatalf   logFunc = func(l rlog.Logger, m string, f map[string]any) { l.Fatal(m, f) }
)

var methods = []struct {
	name string
	call logFunc
}{
	{"Debug", debugf},
	{"Info", infof},
	{"Warning", warningf},
	{"Error", errorf},
	{"Fatal", fatalf},
}

func TestNew_MapsEachRlogLevelToItsSlogLevel(t *testing.T) {
	want := map[string]string{
		"Debug":   "DEBUG",
		"Info":    "INFO",
		"Warning": "WARN",
		"Error":   "ERROR",
		"Fatal":   "ERROR",
	}
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			var c capture
			m.call(rmqlog.New(c.logger(), rmqlog.WithLevel(slog.LevelDebug)), "hello", nil)
			rec := c.only(t)
			if rec["level"] != want[m.name] {
				t.Errorf("level = %v, want %v", rec["level"], want[m.name])
			}
			if rec["msg"] != "hello" {
				t.Errorf("msg = %v, want hello", rec["msg"])
			}
		})
	}
}

func TestNew_ForwardsOnlyLevelsAtOrAboveMinimum(t *testing.T) {
	tests := []struct {
		name string
		opts []rmqlog.Option
		want map[string]bool // method name -> forwarded
	}{
		{
			name: "default drops Debug and Info",
			want: map[string]bool{"Debug": false, "Info": false, "Warning": true, "Error": true, "Fatal": true},
		},
		{
			name: "WithLevel(Debug) forwards everything",
			opts: []rmqlog.Option{rmqlog.WithLevel(slog.LevelDebug)},
			want: map[string]bool{"Debug": true, "Info": true, "Warning": true, "Error": true, "Fatal": true},
		},
		{
			name: "WithLevel(Info) drops only Debug",
			opts: []rmqlog.Option{rmqlog.WithLevel(slog.LevelInfo)},
			want: map[string]bool{"Debug": false, "Info": true, "Warning": true, "Error": true, "Fatal": true},
		},
		{
			name: "WithLevel(Error) keeps Error and Fatal",
			opts: []rmqlog.Option{rmqlog.WithLevel(slog.LevelError)},
			want: map[string]bool{"Debug": false, "Info": false, "Warning": false, "Error": true, "Fatal": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range methods {
				var c capture
				m.call(rmqlog.New(c.logger(), tt.opts...), "x", nil)
				if got := c.raw() != ""; got != tt.want[m.name] {
					t.Errorf("%s forwarded = %v, want %v", m.name, got, tt.want[m.name])
				}
			}
		})
	}
}

func TestNew_HandlerLevelStillApplies(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})
	l := rmqlog.New(slog.New(h), rmqlog.WithLevel(slog.LevelDebug))
	l.Warning("dropped by handler", nil)
	if buf.Len() != 0 {
		t.Fatalf("handler at Error level received a Warn record: %s", buf.String())
	}
}

func TestLevel_ChangesMinimumAtRunTime(t *testing.T) {
	tests := []struct {
		level string
		want  map[string]bool
	}{
		{"debug", map[string]bool{"Debug": true, "Info": true, "Warning": true, "Error": true, "Fatal": true}},
		{"info", map[string]bool{"Debug": false, "Info": true, "Warning": true, "Error": true, "Fatal": true}},
		{"warn", map[string]bool{"Debug": false, "Info": false, "Warning": true, "Error": true, "Fatal": true}},
		{"WARNING", map[string]bool{"Debug": false, "Info": false, "Warning": true, "Error": true, "Fatal": true}},
		{"error", map[string]bool{"Debug": false, "Info": false, "Warning": false, "Error": true, "Fatal": true}},
		{"fatal", map[string]bool{"Debug": false, "Info": false, "Warning": false, "Error": false, "Fatal": true}},
		// Unknown names keep the current (default Warn) level instead of
		// falling back to info as rlog's logrus logger does.
		{"verbose", map[string]bool{"Debug": false, "Info": false, "Warning": true, "Error": true, "Fatal": true}},
		{"", map[string]bool{"Debug": false, "Info": false, "Warning": true, "Error": true, "Fatal": true}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			for _, m := range methods {
				var c capture
				l := rmqlog.New(c.logger())
				l.Level(tt.level)
				m.call(l, "x", nil)
				if got := c.raw() != ""; got != tt.want[m.name] {
					t.Errorf("after Level(%q) %s forwarded = %v, want %v", tt.level, m.name, got, tt.want[m.name])
				}
			}
		})
	}
}

func TestFatal_LogsAtErrorWithFatalMarkAndReturns(t *testing.T) {
	var c capture
	l := rmqlog.New(c.logger())
	l.Fatal("boom", map[string]any{"path": "/x"})
	// Reaching this line is the "does not exit" assertion.
	rec := c.only(t)
	if rec["level"] != "ERROR" {
		t.Errorf("level = %v, want ERROR", rec["level"])
	}
	if rec["rocketmq.fatal"] != true {
		t.Errorf("rocketmq.fatal = %v, want true", rec["rocketmq.fatal"])
	}
}

func TestError_HasNoFatalMark(t *testing.T) {
	var c capture
	rmqlog.New(c.logger()).Error("boom", nil)
	if _, ok := c.only(t)["rocketmq.fatal"]; ok {
		t.Error("Error record carries rocketmq.fatal")
	}
}

func TestNew_TagsEveryRecordWithComponent(t *testing.T) {
	var c capture
	l := rmqlog.New(c.logger(), rmqlog.WithLevel(slog.LevelDebug))
	for _, m := range methods {
		m.call(l, "x", map[string]any{"k": 1})
	}
	recs := c.records(t)
	if len(recs) != len(methods) {
		t.Fatalf("got %d records, want %d", len(recs), len(methods))
	}
	for _, rec := range recs {
		if rec["component"] != "rocketmq-client" {
			t.Errorf("component = %v, want rocketmq-client", rec["component"])
		}
	}
}

func TestNew_IgnoresEmptyCalls(t *testing.T) {
	var c capture
	l := rmqlog.New(c.logger(), rmqlog.WithLevel(slog.LevelDebug))
	for _, m := range methods {
		m.call(l, "", nil)
	}
	if c.raw() != "" {
		t.Fatalf("empty calls produced output: %s", c.raw())
	}
}

func TestNew_NilLoggerUsesSlogDefault(t *testing.T) {
	var c capture
	prev := slog.Default()
	slog.SetDefault(c.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })

	rmqlog.New(nil).Warning("via default", nil)
	if rec := c.only(t); rec["msg"] != "via default" {
		t.Fatalf("msg = %v", rec["msg"])
	}
}

func TestOutputPath_IsANoOp(t *testing.T) {
	var c capture
	l := rmqlog.New(c.logger())
	if err := l.OutputPath(t.TempDir() + "/rocketmq.log"); err != nil {
		t.Fatalf("OutputPath returned %v", err)
	}
	l.Warning("still here", nil)
	if rec := c.only(t); rec["msg"] != "still here" {
		t.Fatalf("record not written to the slog handler after OutputPath: %v", rec)
	}
}

func TestFields_AreWrittenInSortedKeyOrder(t *testing.T) {
	var c capture
	rmqlog.New(c.logger()).Warning("x", map[string]any{
		"zeta": 1, "alpha": 2, "mid": 3, "Beta": 4, "gamma": 5,
	})
	out := c.raw()
	keys := []string{`"Beta"`, `"alpha"`, `"gamma"`, `"mid"`, `"zeta"`}
	last := -1
	for _, k := range keys {
		i := strings.Index(out, k)
		if i < 0 {
			t.Fatalf("key %s missing from %s", k, out)
		}
		if i < last {
			t.Fatalf("key %s out of order in %s", k, out)
		}
		last = i
	}
}

// Test value types for the sanitising tests.
type opaque struct{ Body string }

type level int

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type nilStringer struct{ s string }

func (n *nilStringer) String() string { return n.s } // panics on nil receiver

type panicStringer struct{}

func (panicStringer) String() string { panic("nope") }

func TestFields_ConvertNonMessageValuesSafely(t *testing.T) {
	mq := &primitive.MessageQueue{Topic: "orders", BrokerName: "b1", QueueId: 3}
	tests := []struct {
		name  string
		value any
		want  any // decoded JSON value
	}{
		{"string passes through", "v", "v"},
		{"int passes through", 42, float64(42)},
		{"bool passes through", true, true},
		{"named int logs its number", level(7), float64(7)},
		{"error logs Error()", errors.New("broker busy"), "broker busy"},
		{"Stringer logs String()", stringer{"s!"}, "s!"},
		{"nil-pointer Stringer does not panic", (*nilStringer)(nil), "<nil>"},
		{"panicking Stringer does not panic", panicStringer{}, "rmqlog_test.panicStringer(PANIC=nope)"},
		{"MessageQueue pointer logs String()", mq, mq.String()},
		{"MessageQueue slice logs each String()", []*primitive.MessageQueue{mq}, []any{mq.String()}},
		{"string slice passes through", []string{"a", "b"}, []any{"a", "b"}},
		{"int slice passes through", []int{1, 2}, []any{float64(1), float64(2)}},
		{"nil logs null", nil, nil},
		{"unknown struct logs its type only", opaque{Body: secretBody}, "rmqlog_test.opaque"},
		{"unknown pointer logs its type only", &opaque{Body: secretBody}, "*rmqlog_test.opaque"},
		{"string map logs its type only", map[string]string{"KEYS": secretProp}, "map[string]string"},
		{"struct slice logs its type only", []opaque{{Body: secretBody}}, "[]rmqlog_test.opaque"},
		{"bytes are redacted", []byte(secretBody), "[redacted 14 bytes]"},
		{"nested map becomes a group", map[string]any{"b": 1, "a": "x"}, map[string]any{"a": "x", "b": float64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c capture
			rmqlog.New(c.logger()).Warning("x", map[string]any{"v": tt.value})
			if strings.Contains(c.raw(), secretBody) || strings.Contains(c.raw(), secretProp) {
				t.Fatalf("secret leaked: %s", c.raw())
			}
			if got := c.only(t)["v"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("v = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestFields_RedactNonMessageValuesUnderBodyKeys(t *testing.T) {
	for _, key := range []string{"message", "messages", "msgs", "body", "traceData", "Message"} {
		t.Run(key, func(t *testing.T) {
			var c capture
			rmqlog.New(c.logger()).Warning("x", map[string]any{
				key: fmt.Sprintf("[topic=orders, body=%s, properties=KEYS%s]", secretBody, secretProp),
			})
			if strings.Contains(c.raw(), secretBody) || strings.Contains(c.raw(), secretProp) {
				t.Fatalf("secret leaked: %s", c.raw())
			}
			if got := c.only(t)[key]; got != "[redacted]" {
				t.Errorf("%s = %v, want [redacted]", key, got)
			}
		})
	}
}

// newExt builds a received message carrying a secret body and a secret in
// both a system property (keys) and a user property.
func newExt(id string) *primitive.MessageExt {
	m := &primitive.MessageExt{
		Message: primitive.Message{
			Topic: "orders",
			Body:  []byte(secretBody),
			Queue: &primitive.MessageQueue{Topic: "orders", BrokerName: "b1", QueueId: 3},
		},
		MsgId:          id,
		QueueOffset:    17,
		ReconsumeTimes: 2,
	}
	m.WithKeys([]string{secretProp})
	m.WithProperty("user", secretProp)
	return m
}

// newMsg builds an outgoing message whose client-side unique key is id.
func newMsg(id string) *primitive.Message {
	m := primitive.NewMessage("orders", []byte(secretBody))
	m.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, id)
	m.WithTag(secretProp)
	m.WithProperty("user", secretProp)
	return m
}

// valueOf returns *p as an interface without a vet-visible copy of the
// message's mutex; the client never logs message values, but callers could.
func valueOf(p any) any { return reflect.ValueOf(p).Elem().Interface() }

// valueSlice returns []primitive.MessageExt holding copies of ps, built
// through reflect for the same reason as valueOf.
func valueSlice(ps ...*primitive.MessageExt) any {
	s := reflect.MakeSlice(reflect.TypeFor[[]primitive.MessageExt](), 0, len(ps))
	for _, p := range ps {
		s = reflect.Append(s, reflect.ValueOf(p).Elem())
	}
	return s.Interface()
}

// newProducerCtx builds a producer context whose message carries secrets.
func newProducerCtx() *primitive.ProducerCtx {
	c := &primitive.ProducerCtx{
		ProducerGroup: "g",
		MQ:            primitive.MessageQueue{Topic: "orders", BrokerName: "b1", QueueId: 1},
		Props:         map[string]string{"user": secretProp},
	}
	c.Message.Topic = "orders"
	c.Message.Body = []byte(secretBody)
	c.Message.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, "MSGID-PC")
	c.Message.WithProperty("user", secretProp)
	return c
}

func TestFields_SummariseMessagesWithoutBodyOrProperties(t *testing.T) {
	pull := &primitive.PullResult{Status: primitive.PullFound, NextBeginOffset: 18}
	pull.SetMessageExts([]*primitive.MessageExt{newExt("MSGID-PULL")})
	pull.SetBody([]byte(secretBody))

	tests := []struct {
		name   string
		key    string
		value  any
		msgIDs []string
	}{
		{"MessageExt pointer", "message", newExt("MSGID-1"), []string{"MSGID-1"}},
		{"MessageExt value", "message", valueOf(newExt("MSGID-1")), []string{"MSGID-1"}},
		{"MessageExt pointer slice", rlog.LogKeyMessages, []*primitive.MessageExt{newExt("MSGID-1"), newExt("MSGID-2")}, []string{"MSGID-1", "MSGID-2"}},
		{"MessageExt value slice", "msgs", valueSlice(newExt("MSGID-1")), []string{"MSGID-1"}},
		{"Message pointer", "message", newMsg("MSGID-P"), []string{"MSGID-P"}},
		{"Message value", "message", valueOf(newMsg("MSGID-P")), []string{"MSGID-P"}},
		{"Message pointer slice", "messages", []*primitive.Message{newMsg("MSGID-P")}, []string{"MSGID-P"}},
		{"message under an unrelated key", "whatever", newExt("MSGID-1"), []string{"MSGID-1"}},
		{"message nested in a map", "nested", map[string]any{"inner": newExt("MSGID-1")}, []string{"MSGID-1"}},
		{"PullResult", "result", pull, nil},
		{"ConsumeMessageContext", "ctx", &primitive.ConsumeMessageContext{
			ConsumerGroup: "g", Msgs: []*primitive.MessageExt{newExt("MSGID-1")},
			Properties: map[string]string{"user": secretProp},
		}, []string{"MSGID-1"}},
		{"ProducerCtx", "ctx", newProducerCtx(), []string{"MSGID-PC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c capture
			rmqlog.New(c.logger()).Warning("consume failed", map[string]any{tt.key: tt.value})
			out := c.raw()
			if strings.Contains(out, secretBody) {
				t.Errorf("body leaked: %s", out)
			}
			if strings.Contains(out, secretProp) {
				t.Errorf("property leaked: %s", out)
			}
			if tt.name != "PullResult" && !strings.Contains(out, `"orders"`) {
				t.Errorf("topic missing: %s", out)
			}
			for _, id := range tt.msgIDs {
				if !strings.Contains(out, `"`+id+`"`) {
					t.Errorf("msgId %s missing: %s", id, out)
				}
			}
			c.only(t) // exactly one well-formed JSON record
		})
	}
}

func TestFields_MessageExtSummaryHasDocumentedFields(t *testing.T) {
	var c capture
	rmqlog.New(c.logger()).Warning("x", map[string]any{"message": newExt("MSGID-1")})
	got := c.only(t)["message"]
	want := map[string]any{
		"topic":          "orders",
		"msgId":          "MSGID-1",
		"queueId":        float64(3),
		"queueOffset":    float64(17),
		"reconsumeTimes": float64(2),
		"body_bytes":     float64(len(secretBody)),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary = %#v\nwant %#v", got, want)
	}
}

func TestFields_BatchSummaryCountsAllAndListsAtMost32(t *testing.T) {
	msgs := make([]*primitive.MessageExt, 40)
	for i := range msgs {
		msgs[i] = newExt(fmt.Sprintf("MSGID-%d", i))
	}
	var c capture
	rmqlog.New(c.logger()).Warning("x", map[string]any{rlog.LogKeyMessages: msgs})
	got, _ := c.only(t)[rlog.LogKeyMessages].(map[string]any)
	if got["count"] != float64(40) {
		t.Errorf("count = %v, want 40", got["count"])
	}
	if items, _ := got["items"].([]any); len(items) != 32 {
		t.Errorf("len(items) = %d, want 32", len(items))
	}
}

// countingStringer records whether the adapter asked for its String.
type countingStringer struct{ calls *int }

func (c countingStringer) String() string { *c.calls++; return "s" }

func TestNew_DisabledLevelsDoNotBuildAttributes(t *testing.T) {
	calls := 0
	var c capture
	l := rmqlog.New(c.logger())
	l.Info("dropped", map[string]any{"v": countingStringer{&calls}})
	l.Debug("dropped", map[string]any{"v": countingStringer{&calls}})
	if calls != 0 || c.raw() != "" {
		t.Fatalf("disabled records built attributes: %d String calls, output %q", calls, c.raw())
	}
}

func TestInstall_RoutesGlobalRlogToSlog(t *testing.T) {
	// rlog has no getter, so the previous logger cannot be restored; leave
	// a discarding adapter behind instead of this test's buffer.
	t.Cleanup(func() { rmqlog.Install(slog.New(slog.DiscardHandler)) })

	var c capture
	rmqlog.Install(c.logger())
	rlog.Info("dropped at default level", nil)
	rlog.Warning("via rlog", map[string]any{rlog.LogKeyMessages: []*primitive.MessageExt{newExt("MSGID-G")}})

	rec := c.only(t)
	if rec["msg"] != "via rlog" || rec["component"] != "rocketmq-client" {
		t.Errorf("unexpected record %v", rec)
	}
	if strings.Contains(c.raw(), secretBody) {
		t.Errorf("body leaked through the global logger: %s", c.raw())
	}

	// rlog.SetLogLevel reaches the installed adapter.
	rlog.SetLogLevel("debug")
	rlog.Debug("now visible", nil)
	if n := len(c.records(t)); n != 2 {
		t.Errorf("after rlog.SetLogLevel(debug) got %d records, want 2", n)
	}
}

func TestNew_ConcurrentLevelAndLoggingAreRaceFree(t *testing.T) {
	var c capture
	l := rmqlog.New(c.logger())
	levels := []string{"debug", "info", "warn", "error", "fatal"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Level(levels[(g+i)%len(levels)])
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 200 {
				methods[(g+i)%len(methods)].call(l, "x", map[string]any{"i": i})
			}
		}()
	}
	wg.Wait()
	c.records(t) // every line written is complete JSON
}
