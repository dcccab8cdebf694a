package consumer_test

import (
	"fmt"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

func TestMain(m *testing.M) {
	// The client's errors go to stderr; tests may watch its warnings.
	rmqtest.InstallClientLog(os.Stderr, slog.LevelError)
	goleak.VerifyTestMain(m, leakOptions()...)
}

// leakOptions makes goleak check rmqkit's own goroutines (pool workers,
// lease renewal, handlers) while passing over rocketmq-client-go's.
// ants starts a default pool at import. The client's background loops
// sleep (1 s, 10 s, a minute, an hour, ConsumeTimeout) before their first
// look at the shutdown signal, its statistics goroutines sleep until the
// next minute, hour or month, and connection readers of clients it shares
// per process stay: all of them outlive Shutdown upstream. None of these
// goroutines ever calls rmqkit.
//
// The client's per-queue consume loop (pullMessage.func1) does call
// rmqkit: it runs the orderly callback in place, so a goroutine of it
// blocked inside rmqkit must be reported. Only its idle waits are passed
// over, by the frame that waits: getMessages (concurrent mode: a select on
// the queue's batch channel, the top frame), takeMessages (orderly mode:
// time.Sleep polls of an empty queue for up to 5 s, the frame below
// time.Sleep; matching the top frame, time.Sleep, would hide every
// sleeping goroutine) and the orderly lock retries. None of them is on the
// stack while the callback runs.
func leakOptions() []goleak.Option {
	const (
		client   = "github.com/apache/rocketmq-client-go/v2/internal."
		consumer = "github.com/apache/rocketmq-client-go/v2/consumer."
	)
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		// The pull loop (it never calls the callback; the consume loop is
		// pullMessage.func1, another function for goleak).
		goleak.IgnoreAnyFunction(consumer + "(*pushConsumer).pullMessage"),
		goleak.IgnoreTopFunction(consumer + "(*processQueue).getMessages"),
		goleak.IgnoreAnyFunction(consumer + "(*processQueue).takeMessages"),
		goleak.IgnoreAnyFunction(consumer + "(*pushConsumer).tryLockLaterAndReconsume"),
		goleak.IgnoreAnyFunction(consumer + "(*pushConsumer).submitConsumeRequestLater"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*remotingClient).receiveResponse"),
	}
	for i := 1; i <= 8; i++ {
		opts = append(opts,
			goleak.IgnoreAnyFunction(fmt.Sprintf("%s(*rmqClient).Start.func1.%d", client, i)),
			goleak.IgnoreAnyFunction(fmt.Sprintf("%s(*pushConsumer).Start.func1.%d", consumer, i)),
			goleak.IgnoreAnyFunction(fmt.Sprintf("%s(*statsItemSet).init.func%d", consumer, i)),
		)
	}
	return opts
}
