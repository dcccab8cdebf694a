package rmqlog

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

const (
	// componentKey and componentValue tag every record so that users can
	// route or filter the client's records in their handler.
	componentKey   = "component"
	componentValue = "rocketmq-client"

	// fatalKey marks records that the client logged with rlog.Fatal. They
	// are emitted at slog.LevelError because slog has no fatal level.
	fatalKey = "rocketmq.fatal"

	// redacted replaces values that are known to carry message bodies but
	// that cannot be summarised (for example pre-formatted strings).
	redacted = "[redacted]"

	// levelFatal ranks rlog.Fatal above Error so that Level("fatal") can
	// drop Error records while still passing Fatal ones.
	levelFatal = slog.LevelError + 4

	// maxItems bounds how many per-message summaries a batch contributes to
	// one record; the total is still reported as "count".
	maxItems = 32

	// maxDepth bounds recursion into nested map[string]any fields so that
	// a self-referencing map cannot hang the logger.
	maxDepth = 4
)

// Option configures the logger returned by New and installed by Install.
type Option func(*options)

type options struct {
	level slog.Level
}

// WithLevel sets the minimum level of client records that are forwarded;
// rlog.Logger.Level can change it later at run time. The default is
// slog.LevelWarn because the client logs routine rebalancing and pulling at
// Info. The slog handler's own level applies in addition to this one.
func WithLevel(level slog.Level) Option {
	return func(o *options) { o.level = level }
}

// New returns an rlog.Logger that forwards the RocketMQ client's records to
// logger (slog.Default() when logger is nil).
//
// Levels map as Debug→Debug, Info→Info, Warning→Warn, Error→Error and
// Fatal→Error with the attribute rocketmq.fatal=true. Fatal never exits the
// process: a library must not decide to terminate its host.
//
// Every record carries component=rocketmq-client. Fields become attributes
// in sorted key order, sanitised as follows:
//   - messages (*primitive.MessageExt, primitive.MessageExt,
//     *primitive.Message, primitive.Message and slices of them) become a
//     summary: topic, msgId, queueId, queueOffset, reconsumeTimes and
//     body_bytes. Slices become {count, items}, with at most 32 items. The
//     body and the properties (including tags and keys) are never logged.
//   - *primitive.PullResult, primitive.ConsumeMessageContext and
//     *primitive.ProducerCtx, which embed messages, become summaries too.
//   - any other value under a key the client uses for message content
//     ("message", "messages", "msgs", "msg", "body", "traceData") becomes
//     "[redacted]"; traceData is the trace payload, which holds the
//     messages' keys and tags.
//   - []byte anywhere is redacted, since it is most likely a body.
//   - errors log Error(), fmt.Stringer values log String(), slog.LogValuer
//     values log themselves, basic values (including named ones such as
//     primitive.LocalTransactionState) pass through, map[string]any is
//     logged as a group of sanitised attributes.
//   - anything else (structs, pointers, other maps, slices of non-basic
//     types) logs only its type name, fmt.Sprintf("%T"). Dumping unknown
//     values field by field is how bodies leak, so the safe default is to
//     say what was there without printing it.
//
// Records below the minimum level, or that logger is not Enabled for, are
// dropped before any attribute is built, so disabled levels cost a few
// comparisons.
func New(logger *slog.Logger, opts ...Option) rlog.Logger {
	if logger == nil {
		logger = slog.Default()
	}
	o := options{level: slog.LevelWarn}
	for _, opt := range opts {
		opt(&o)
	}
	a := &adapter{logger: logger.With(componentKey, componentValue)}
	a.min.Store(int64(o.level))
	return a
}

// Install makes New(logger, opts...) the RocketMQ client's process-wide
// logger via rlog.SetLogger. Call it before creating producers or consumers:
// rlog.SetLogger is not synchronised, so swapping the logger while clients
// are logging is a data race. It replaces the logger for every client in the
// process, and rlog offers no way to read the previous one back.
func Install(logger *slog.Logger, opts ...Option) {
	rlog.SetLogger(New(logger, opts...))
}

// adapter implements rlog.Logger on top of a *slog.Logger.
type adapter struct {
	logger *slog.Logger
	// min is the minimum slog.Level, atomic because rlog.SetLogLevel may be
	// called while clients log from their own goroutines.
	min atomic.Int64
}

// Debug implements rlog.Logger.
func (a *adapter) Debug(msg string, fields map[string]interface{}) {
	a.log(slog.LevelDebug, slog.LevelDebug, msg, fields)
}

// Info implements rlog.Logger.
func (a *adapter) Info(msg string, fields map[string]interface{}) {
	a.log(slog.LevelInfo, slog.LevelInfo, msg, fields)
}

// Warning implements rlog.Logger.
func (a *adapter) Warning(msg string, fields map[string]interface{}) {
	a.log(slog.LevelWarn, slog.LevelWarn, msg, fields)
}

// Error implements rlog.Logger.
func (a *adapter) Error(msg string, fields map[string]interface{}) {
	a.log(slog.LevelError, slog.LevelError, msg, fields)
}

// Fatal implements rlog.Logger. It logs at slog.LevelError with
// rocketmq.fatal=true and returns; it never exits the process.
func (a *adapter) Fatal(msg string, fields map[string]interface{}) {
	a.log(levelFatal, slog.LevelError, msg, fields)
}

// Level implements rlog.Logger by changing the minimum level at run time.
// It accepts rlog's names ("debug", "info", "warn", "error", "fatal",
// case-insensitive, plus "warning"). Unlike rlog's default logger, which
// falls back to info, an unknown name leaves the level unchanged so that a
// typo cannot turn on the client's noisy Info logging.
func (a *adapter) Level(level string) {
	var l slog.Level
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	case "fatal":
		l = levelFatal
	default:
		return
	}
	a.min.Store(int64(l))
}

// OutputPath implements rlog.Logger. It does nothing and returns nil:
// where records go is the slog handler's business, and letting the client
// redirect them to a file would bypass the application's logging setup.
func (a *adapter) OutputPath(string) error { return nil }

// log drops the record unless both the minimum level (compared with rank,
// the rlog level) and the handler (compared with level, the emitted slog
// level) accept it, and only then builds attributes.
func (a *adapter) log(rank, level slog.Level, msg string, fields map[string]interface{}) {
	// rlog's default logger ignores empty calls; so do we.
	if msg == "" && len(fields) == 0 {
		return
	}
	if int64(rank) < a.min.Load() {
		return
	}
	ctx := context.Background()
	if !a.logger.Enabled(ctx, level) {
		return
	}
	// For handlers with AddSource, attribute the record to whoever called
	// the rlog.Logger method (skipping runtime.Callers, log and the method)
	// rather than to this file. For client records that is rlog's package
	// function, usually inlined into the client code that logged.
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	if rank == levelFatal {
		r.AddAttrs(slog.Bool(fatalKey, true))
	}
	r.AddAttrs(fieldAttrs(fields, 0)...)
	_ = a.logger.Handler().Handle(ctx, r)
}

// fieldAttrs sanitises fields into attributes in sorted key order, so that
// output is deterministic despite Go's random map iteration.
func fieldAttrs(fields map[string]interface{}, depth int) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		attrs = append(attrs, slog.Attr{Key: k, Value: fieldValue(k, fields[k], depth)})
	}
	return attrs
}

// fieldValue sanitises the value of one field; the key matters because the
// client logs message content under a few well-known keys.
func fieldValue(key string, v any, depth int) slog.Value {
	if v == nil {
		return slog.AnyValue(nil)
	}
	if sv, ok := summarise(v); ok {
		return sv
	}
	if isBodyKey(key) {
		return slog.StringValue(redacted)
	}
	return sanitise(v, depth)
}

// isBodyKey reports whether the client (or a caller imitating it) uses key
// for message content: rlog.LogKeyMessages, "message" in the consumers and
// the transactional producer, and "traceData" for the trace payload, which
// holds user messages' keys and tags. A switch rather than a map keeps the
// package free of package-level variables.
func isBodyKey(key string) bool {
	switch strings.ToLower(key) {
	case rlog.LogKeyMessages, "message", "msgs", "msg", "body", "tracedata":
		return true
	}
	return false
}

// summarise turns values that are, or embed, RocketMQ messages into
// summaries without body or properties. ok is false for other values.
func summarise(v any) (_ slog.Value, ok bool) {
	switch x := v.(type) {
	case *primitive.MessageExt:
		if x == nil {
			return slog.AnyValue(nil), true
		}
		return slog.GroupValue(extAttrs(x)...), true
	case *primitive.Message:
		if x == nil {
			return slog.AnyValue(nil), true
		}
		return slog.GroupValue(msgAttrs(x)...), true
	case primitive.MessageExt, primitive.Message:
		// Values embed a sync.RWMutex; take an addressable copy through
		// reflect instead of copying the lock in a type-switch binding.
		return summarise(addressable(v))
	case []*primitive.MessageExt:
		return batchValue(len(x), func(i int) []slog.Attr {
			if x[i] == nil {
				return nil
			}
			return extAttrs(x[i])
		}), true
	case []*primitive.Message:
		return batchValue(len(x), func(i int) []slog.Attr {
			if x[i] == nil {
				return nil
			}
			return msgAttrs(x[i])
		}), true
	case []primitive.MessageExt:
		return batchValue(len(x), func(i int) []slog.Attr { return extAttrs(&x[i]) }), true
	case []primitive.Message:
		return batchValue(len(x), func(i int) []slog.Attr { return msgAttrs(&x[i]) }), true
	case *primitive.PullResult:
		if x == nil {
			return slog.AnyValue(nil), true
		}
		return slog.GroupValue(
			slog.Int("status", int(x.Status)),
			slog.Int64("nextBeginOffset", x.NextBeginOffset),
			slog.Int64("minOffset", x.MinOffset),
			slog.Int64("maxOffset", x.MaxOffset),
			slog.Int("messages", len(x.GetMessageExts())),
		), true
	case primitive.PullResult:
		return summarise(&x)
	case *primitive.ConsumeMessageContext:
		if x == nil {
			return slog.AnyValue(nil), true
		}
		attrs := []slog.Attr{
			slog.String("consumerGroup", x.ConsumerGroup),
			slog.Bool("success", x.Success),
			slog.String("status", x.Status),
		}
		if x.MQ != nil {
			attrs = append(attrs, slog.String("mq", x.MQ.String()))
		}
		msgs, _ := summarise(x.Msgs)
		attrs = append(attrs, slog.Attr{Key: "messages", Value: msgs})
		return slog.GroupValue(attrs...), true
	case primitive.ConsumeMessageContext:
		return summarise(&x)
	case *primitive.ProducerCtx:
		if x == nil {
			return slog.AnyValue(nil), true
		}
		attrs := []slog.Attr{
			slog.String("producerGroup", x.ProducerGroup),
			slog.String("mq", x.MQ.String()),
			slog.String("brokerAddr", x.BrokerAddr),
			slog.String("communicationMode", string(x.CommunicationMode)),
			slog.Group("message", anySlice(msgAttrs(&x.Message))...),
		}
		if x.SendResult != nil {
			attrs = append(attrs, slog.String("sendResult", x.SendResult.String()))
		}
		return slog.GroupValue(attrs...), true
	case primitive.ProducerCtx:
		return summarise(addressable(v))
	}
	return slog.Value{}, false
}

// addressable returns a pointer to a copy of v, for value types that hold a
// lock and so must not be copied by ordinary assignment.
func addressable(v any) any {
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	return p.Interface()
}

// anySlice converts attributes for slog.Group, which takes ...any.
func anySlice(attrs []slog.Attr) []any {
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// msgAttrs summarises a message being produced. msgId is the client-side
// unique key, an identifier rather than user data; other properties (tags,
// keys, user properties) are left out on purpose.
func msgAttrs(m *primitive.Message) []slog.Attr {
	attrs := []slog.Attr{slog.String("topic", m.Topic)}
	if id := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex); id != "" {
		attrs = append(attrs, slog.String(rlog.LogKeyMessageId, id))
	}
	if m.Queue != nil {
		attrs = append(attrs, slog.Int(rlog.LogKeyQueueId, m.Queue.QueueId))
	}
	return append(attrs, slog.Int("body_bytes", len(m.Body)))
}

// extAttrs summarises a message received from a broker.
func extAttrs(m *primitive.MessageExt) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("topic", m.Topic),
		slog.String(rlog.LogKeyMessageId, m.MsgId),
	}
	if m.Queue != nil {
		attrs = append(attrs, slog.Int(rlog.LogKeyQueueId, m.Queue.QueueId))
	}
	return append(attrs,
		slog.Int64(rlog.LogKeyQueueOffset, m.QueueOffset),
		slog.Int("reconsumeTimes", int(m.ReconsumeTimes)),
		slog.Int("body_bytes", len(m.Body)),
	)
}

// batchValue summarises a batch as {count, items}. slog has no list kind,
// so items is a []map[string]any, which JSON and text handlers both render
// deterministically (sorted map keys). At most maxItems are listed to keep
// records bounded; count is always the full length.
func batchValue(n int, item func(i int) []slog.Attr) slog.Value {
	items := make([]map[string]any, 0, min(n, maxItems))
	for i := 0; i < n && i < maxItems; i++ {
		attrs := item(i)
		if attrs == nil {
			items = append(items, nil)
			continue
		}
		m := make(map[string]any, len(attrs))
		for _, a := range attrs {
			m[a.Key] = a.Value.Any()
		}
		items = append(items, m)
	}
	return slog.GroupValue(slog.Int("count", n), slog.Any("items", items))
}

// sanitise handles values that are not messages and not under a body key.
func sanitise(v any, depth int) slog.Value {
	switch x := v.(type) {
	case string, bool, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, uintptr, float32, float64,
		time.Time, time.Duration:
		return slog.AnyValue(x)
	case []byte:
		return slog.StringValue(fmt.Sprintf("[redacted %d bytes]", len(x)))
	case error:
		return slog.StringValue(safeCall(x, x.Error))
	case slog.LogValuer:
		return slog.AnyValue(x)
	case map[string]any:
		if depth >= maxDepth {
			return slog.StringValue(fmt.Sprintf("%T", v))
		}
		return slog.GroupValue(fieldAttrs(x, depth+1)...)
	case []string:
		return slog.AnyValue(slices.Clone(x))
	case []*primitive.MessageQueue:
		out := make([]string, len(x))
		for i, mq := range x {
			out[i] = safeCall(mq, mq.String)
		}
		return slog.AnyValue(out)
	case []primitive.MessageQueue:
		out := make([]string, len(x))
		for i := range x {
			out[i] = x[i].String()
		}
		return slog.AnyValue(out)
	case primitive.MessageQueue:
		return slog.StringValue(x.String())
	case fmt.Stringer:
		return slog.StringValue(safeCall(x, x.String))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return slog.BoolValue(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return slog.Int64Value(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return slog.Uint64Value(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return slog.Float64Value(rv.Float())
	case reflect.String:
		return slog.StringValue(rv.String())
	case reflect.Slice, reflect.Array:
		if isBasic(rv.Type().Elem().Kind()) && rv.Type().Elem().Kind() != reflect.Uint8 {
			return slog.AnyValue(v)
		}
	}
	// Unknown structs, pointers, maps, channels, funcs and slices of them:
	// the type name says what was there without risking a body dump.
	return slog.StringValue(fmt.Sprintf("%T", v))
}

// isBasic reports whether values of kind k are plain scalars.
func isBasic(k reflect.Kind) bool {
	switch k {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// safeCall calls a String or Error method, tolerating nil pointers and
// panics the way fmt does, because a logger must never crash the client.
func safeCall(v any, f func() string) (s string) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return "<nil>"
	}
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("%T(PANIC=%v)", v, r)
		}
	}()
	return f()
}
