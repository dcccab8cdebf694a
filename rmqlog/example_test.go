package rmqlog_test

import (
	"log/slog"
	"os"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqkit/rmqkit/rmqlog"
)

func ExampleInstall() {
	// Drop the time so that the output below is deterministic.
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})

	// Install once, before creating producers or consumers; it replaces
	// the RocketMQ client's logger for the whole process.
	rmqlog.Install(slog.New(h))
	defer rmqlog.Install(slog.New(slog.DiscardHandler)) // rlog has no getter to restore

	// What the client does when a broadcast consume fails: the body is
	// summarised, never printed.
	rlog.Info("rebalance done", nil) // below the default Warn minimum
	rlog.Warning("BROADCASTING, the message consume failed, drop it", map[string]interface{}{
		"message": &primitive.MessageExt{
			Message: primitive.Message{Topic: "orders", Body: []byte(`{"card":"4111..."}`)},
			MsgId:   "7F000001000A",
		},
	})
	// Output:
	// level=WARN msg="BROADCASTING, the message consume failed, drop it" component=rocketmq-client message.topic=orders message.msgId=7F000001000A message.queueOffset=0 message.reconsumeTimes=0 message.body_bytes=18
}
