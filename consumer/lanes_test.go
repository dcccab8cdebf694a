package consumer

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/rmqkit/rmqkit/throttle"
)

// The workers of a callback take its next messages themselves (lanes,
// intake.go): after SetPoolSize shrinks the pool mid-callback, they stop
// as their handlers return until the pool is within its new size, and no
// handler starts beyond it.
func TestLanesKeepThePoolSizeAfterSetPoolSize(t *testing.T) {
	release := make(chan struct{})
	var cur, over atomic.Int32
	var shrunk atomic.Bool
	c := running(t, func(context.Context, *Message) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		if shrunk.Load() && n > 2 {
			over.Add(1)
		}
		<-release
		time.Sleep(200 * time.Microsecond)
		return nil
	}, nil, WithPoolSize(4))
	res := make(chan rmq.ConsumeResult, 1)
	go func() {
		ctx, _ := concurrentCtx()
		r, _ := c.consume(ctx, exts(ids(32)...)...)
		res <- r
	}()
	waitFor(t, "four handlers to run", func() bool { return cur.Load() == 4 })
	if err := c.SetPoolSize("t", 2); err != nil {
		t.Fatal(err)
	}
	shrunk.Store(true)
	close(release)
	if r := <-res; r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v", r)
	}
	if n, st := over.Load(), c.Stats()[0]; n != 0 || st.Succeeded != 32 {
		t.Fatalf("%d handlers started with more than 2 running after SetPoolSize(2); %d succeeded, want 0 and 32", n, st.Succeeded)
	}
}

// Every message a worker takes itself passes the rate limits first, and a
// limit set while a callback runs holds the messages it has not started.
func TestLanesPassTheRateLimitBeforeEveryMessage(t *testing.T) {
	var started atomic.Int32
	rateSet := make(chan struct{})
	var c *Consumer
	c = running(t, func(_ context.Context, m *Message) error {
		started.Add(1)
		if m.ID != "m0" {
			<-rateSet // no worker takes another message before the limit
			return nil
		}
		// From now on at most one more message (the burst) starts.
		if err := c.SetRate("t", throttle.Limit{Rate: 0.001, Burst: 1}); err != nil {
			t.Error(err)
		}
		close(rateSet)
		return nil
	}, nil, WithPoolSize(4))
	res := make(chan rmq.ConsumeResult, 1)
	go func() {
		ctx, _ := concurrentCtx()
		r, _ := c.consume(ctx, exts(ids(20)...)...)
		res <- r
	}()
	waitFor(t, "a message to wait for the limit", func() bool { return c.Stats()[0].Throttle.Waiting >= 1 })
	time.Sleep(50 * time.Millisecond)
	// Up to one message per worker started before the limit was set (m0
	// among them), and the burst lets one more through.
	if n := started.Load(); n > 4+1 {
		t.Fatalf("%d of 20 messages started under a limit set by the first; want at most 5", n)
	}
	if err := c.SetRate("t", throttle.Limit{}); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v", r)
	}
	if st := c.Stats()[0]; st.Succeeded != 20 || st.Failed != 0 {
		t.Fatalf("stats = %+v, want 20 succeeded", st)
	}
}

// A callback's messages each have their own outcome when workers take them
// one after another: failures are handed back one by one, and the
// callback is acknowledged.
func TestLanesSettleEachMessageOnItsOwn(t *testing.T) {
	c := running(t, func(_ context.Context, m *Message) error {
		if m.QueueOffset%5 == 0 {
			return errFail
		}
		return nil
	}, nil, WithPoolSize(3))
	ctx, _ := concurrentCtx()
	if r, _ := c.consume(ctx, exts(ids(32)...)...); r != rmq.ConsumeSuccess {
		t.Fatalf("consume = %v", r)
	}
	back := broker(c).handedBack()
	if len(back) != 7 {
		t.Fatalf("handed back %d messages, want 7 (offsets 0, 5, ..., 30)", len(back))
	}
	for _, b := range back {
		if n, _ := strconv.Atoi(b.OriginMsgID[1:]); n%5 != 0 {
			t.Fatalf("handed back %s, which succeeded", b.OriginMsgID)
		}
	}
	if st := c.Stats()[0]; st.Succeeded != 25 || st.Failed != 7 || st.Queued != 0 {
		t.Fatalf("stats = %+v, want 25 succeeded, 7 failed, 0 queued", st)
	}
}

var errFail = errString("fails")

type errString string

func (e errString) Error() string { return string(e) }
