//go:build integration

package consumer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
)

// Settings of the key-ordered kill test's helper process.
const (
	killHelperPool = 8
	killHelperWork = 4 * time.Millisecond
	// killPersist is the client's offset persist interval; its first
	// persist comes 10 s after start.
	killPersist = 5 * time.Second
)

// A key-ordered consumer process killed with SIGKILL mid-backlog and
// started again loses nothing, keeps every key in order (a key starts over
// from its queue's committed offset, never past it), and handles again
// only what was settled in the last offset persist interval before the
// kill, or was in flight.
func TestKeyOrderedProcessKilledAndRestartedLosesNoneAndKeepsOrder(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := cl.NewTopic(t, rmqtest.Queues(8))
	group := cl.NewGroup(t)
	msgs := keyedMsgs("kk", 400, 100)
	cl.ProduceKeyed(t, topic, msgs)
	out := filepath.Join(t.TempDir(), "handled.txt")

	first := startKeyedHelper(t, cl, topic, group, out)
	// Past the client's first offset persist (10 s after start) and
	// mid-backlog.
	if !waitSlowly(90*time.Second, func() bool {
		recs := readHandled(t, out)
		return len(recs) > 0 && time.Since(recs[0].at) > 2*killPersist+3*time.Second
	}) {
		t.Fatal("helper did not consume for 13 s")
	}
	killedAt := time.Now()
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	before := readHandled(t, out)
	if len(before) >= len(msgs) {
		t.Fatalf("the helper handled all %d messages before the kill: the test proves nothing", len(msgs))
	}

	second := startKeyedHelper(t, cl, topic, group, out)
	defer func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() }()
	ids := idsOf(msgs)
	var got *rmqtest.Collector
	// The restarted instance waits for the broker's locks of the killed
	// one's queues to expire (60 s): the price of orderly intake.
	waitSlowly(150*time.Second, func() bool {
		got = rmqtest.NewCollector()
		for _, r := range readHandled(t, out) {
			got.Add(r.id)
		}
		return len(got.Check(ids).Lost) == 0
	})
	rep := got.RequireAll(t, ids, time.Second)

	// Order per key in each run; across the kill a key resumes at or
	// before where it stopped, never after.
	after := readHandled(t, out)[len(before):]
	checkRun := func(name string, recs []handledRec, last map[string]int) map[string]int {
		next := map[string]int{}
		for _, r := range recs {
			key, seq := splitID(r.id)
			want, seen := next[key]
			switch {
			case seen && seq != want:
				t.Fatalf("%s run: %s after %s-%06d", name, r.id, key, want-1)
			case !seen && last != nil && seq > last[key]+1:
				t.Fatalf("%s run: key %s resumed at %d, after %d was the last handled: skipped messages", name, key, seq, last[key])
			}
			next[key] = seq + 1
		}
		return next
	}
	lastBefore := map[string]int{}
	for k, n := range checkRun("first", before, nil) {
		lastBefore[k] = n - 1
	}
	checkRun("second", after, lastBefore)

	// Duplicates: handled before the kill and again after it. Each must
	// have been handled (first) in the last persist interval before the
	// kill, with a second of slack for the persist's own trip.
	firstAt := map[string]time.Time{}
	for _, r := range before {
		firstAt[r.id] = r.at
	}
	window := killedAt.Add(-killPersist - time.Second)
	var dup, late, recent int
	for _, r := range before {
		if r.at.After(window) {
			recent++
		}
	}
	seenAfter := map[string]bool{}
	for _, r := range after {
		at, ok := firstAt[r.id]
		if !ok || seenAfter[r.id] {
			continue
		}
		seenAfter[r.id] = true
		dup++
		if at.Before(window) {
			late++
		}
	}
	t.Logf("key-ordered SIGKILL after %d messages and restart: lost=0 dup=%d (handled in the last %v before the kill: %d)", len(before), dup, killPersist+time.Second, recent)
	if dup != rep.Duplicates {
		t.Fatalf("counted %d duplicates across the kill, the collector %d: some message came twice in one run", dup, rep.Duplicates)
	}
	if late > 0 {
		t.Fatalf("%d duplicates were handled before the last persist interval (%v before the kill): their offsets were never committed", late, killPersist+time.Second)
	}
}

// waitSlowly is rmqtest.WaitUntil polling every 250 ms: the condition
// reads a file of tens of thousands of lines.
func waitSlowly(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
	return true
}

type handledRec struct {
	id string
	at time.Time
}

// readHandled reads the helper's file: "id unixnanos" per handled message.
func readHandled(t *testing.T, path string) []handledRec {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []handledRec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, ns, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue // a line cut by the kill
		}
		n, err := strconv.ParseInt(ns, 10, 64)
		if err != nil {
			continue
		}
		recs = append(recs, handledRec{id: id, at: time.Unix(0, n)})
	}
	return recs
}

// TestKeyedHelperProcess is the key-ordered consumer that the kill test
// runs in a child process; it does nothing in a normal test run.
func TestKeyedHelperProcess(t *testing.T) {
	out := os.Getenv("RMQKIT_KEYED_HELPER_OUT")
	if out == "" {
		t.Skip("helper process only")
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New(os.Getenv("RMQKIT_KEYED_HELPER_GROUP"),
		consumer.WithNameServer(os.Getenv("RMQKIT_KEYED_HELPER_NAMESRV")),
		consumer.WithStartPosition(consumer.StartFromEarliest), quiet())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	err = c.Subscribe(os.Getenv("RMQKIT_KEYED_HELPER_TOPIC"), consumer.All, func(_ context.Context, m *consumer.Message) error {
		time.Sleep(killHelperWork)
		mu.Lock()
		defer mu.Unlock()
		// One write per message, before it is acknowledged: what the file
		// holds was handled, and survives the kill.
		_, err := fmt.Fprintf(f, "%s %d\n", m.Property(rmqtest.IDProperty), time.Now().UnixNano())
		return err
	}, consumer.WithKeyOrdered(), consumer.WithPoolSize(killHelperPool))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Minute) // until killed
}

func startKeyedHelper(t *testing.T, cl *rmqtest.Cluster, topic, group, out string) *exec.Cmd {
	t.Helper()
	return startChild(t, "TestKeyedHelperProcess", "RMQKIT_KEYED_HELPER_OUT="+out, "RMQKIT_KEYED_HELPER_GROUP="+group,
		"RMQKIT_KEYED_HELPER_TOPIC="+topic, "RMQKIT_KEYED_HELPER_NAMESRV="+cl.NameServer)
}
