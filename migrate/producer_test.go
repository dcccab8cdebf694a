package migrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func keyed(key string) *primitive.Message {
	m := primitive.NewMessage("T", []byte(key))
	if key != "" {
		m.WithShardingKey(key)
	}
	return m
}

func send(t *testing.T, p *Producer, msgs ...*primitive.Message) Result {
	t.Helper()
	r, err := p.Send(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// For a given weight, every message of a key goes to the same cluster, and
// a key that moved to the new cluster never moves back as the weight grows.
func TestSameKeyGoesToTheSameSideForAWeight(t *testing.T) {
	p, _, _ := newFakeProducer(t)
	keys := make([]string, 500)
	for i := range keys {
		keys[i] = fmt.Sprintf("order-%d", i)
	}
	prev := make(map[string]Side)
	for w := 0; w <= 100; w++ {
		if err := p.SetWeight(w); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			first := send(t, p, keyed(k)).Side
			for range 3 {
				if s := send(t, p, keyed(k)).Side; s != first {
					t.Fatalf("weight %d: key %q went to %v, then %v", w, k, first, s)
				}
			}
			if first != KeySide(k, w) {
				t.Fatalf("weight %d: key %q sent to %v, KeySide says %v", w, k, first, KeySide(k, w))
			}
			if prev[k] == New && first == Old {
				t.Fatalf("key %q moved back to old at weight %d", k, w)
			}
			prev[k] = first
		}
	}
	for _, k := range keys {
		if prev[k] != New {
			t.Fatalf("key %q not on new at weight 100", k)
		}
	}
}

// Keyless messages follow the weight exactly over every 100 sends
// (smooth weighted counter), also with concurrent senders.
func TestKeylessMessagesAreSpreadByWeight(t *testing.T) {
	for _, w := range []int{0, 1, 10, 33, 50, 77, 99, 100} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			p, old, nw := newFakeProducer(t, WithWeight(w))
			const senders, each = 8, 500 // 4000 = 40 x 100
			var wg sync.WaitGroup
			for range senders {
				wg.Go(func() {
					for range each {
						if _, err := p.SendSync(context.Background(), keyed("")); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			total := senders * each
			if got, want := nw.count(), total*w/100; got != want {
				t.Errorf("new got %d of %d keyless messages, want exactly %d", got, total, want)
			}
			if old.count()+nw.count() != total {
				t.Errorf("sent %d+%d, want %d", old.count(), nw.count(), total)
			}
			st := p.Stats()
			if st.Sent[Old] != uint64(old.count()) || st.Sent[New] != uint64(nw.count()) || st.Weight != w {
				t.Errorf("stats %+v disagree with the senders (%d, %d)", st, old.count(), nw.count())
			}
		})
	}
}

// Keys are spread by their hash: the share of keys on the new cluster is
// close to the weight.
func TestKeyedMessagesAreSpreadByWeight(t *testing.T) {
	const keys = 20000
	for _, w := range []int{10, 50, 90} {
		n := 0
		for i := range keys {
			if KeySide(fmt.Sprintf("user-%d", i), w) == New {
				n++
			}
		}
		if got := float64(n) / keys * 100; math.Abs(got-float64(w)) > 2 {
			t.Errorf("weight %d: %.1f%% of keys on new, want within 2 points", w, got)
		}
	}
}

func TestWeightIsValidated(t *testing.T) {
	p, _, _ := newFakeProducer(t, WithWeight(40))
	for _, w := range []int{-1, 101, 1000} {
		if err := p.SetWeight(w); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("SetWeight(%d) = %v, want ErrInvalidOption", w, err)
		}
	}
	if p.Weight() != 40 {
		t.Errorf("weight = %d after rejected values, want 40", p.Weight())
	}
	for _, w := range []int{0, 100} {
		if err := p.SetWeight(w); err != nil || p.Weight() != w {
			t.Errorf("SetWeight(%d) = %v, weight %d", w, err, p.Weight())
		}
	}
	if _, err := NewProducer(Cluster{NameServers: []string{"a:1"}}, Cluster{NameServers: []string{"b:1"}}, WithWeight(101)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("NewProducer with weight 101 = %v", err)
	}
	if _, err := NewProducer(Cluster{}, Cluster{NameServers: []string{"b:1"}}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("NewProducer without old name server = %v", err)
	}
	if _, err := NewProducer(Cluster{NameServers: []string{"a:1"}}, Cluster{NameServers: []string{"b:1"}, AccessKey: "ak"}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("NewProducer with half credentials = %v", err)
	}
}

// A batch is routed once, by its first message's key.
func TestBatchGoesToOneSideByItsFirstKey(t *testing.T) {
	p, old, nw := newFakeProducer(t, WithWeight(50))
	var a, b string // a key on each side at 50
	for i := 0; a == "" || b == ""; i++ {
		k := fmt.Sprint("k", i)
		if KeySide(k, 50) == Old && a == "" {
			a = k
		} else if KeySide(k, 50) == New && b == "" {
			b = k
		}
	}
	r := send(t, p, keyed(a), keyed(b), keyed(""))
	if r.Side != Old || len(old.calls) != 1 || len(old.calls[0]) != 3 || len(nw.calls) != 0 {
		t.Errorf("batch led by an old key: side %v, old calls %d, new calls %d", r.Side, len(old.calls), len(nw.calls))
	}
}

func TestFailedSendReturnsTheErrorWithoutFallback(t *testing.T) {
	p, old, nw := newFakeProducer(t)
	old.fail = errors.New("broker down")
	if _, err := p.SendSync(context.Background(), keyed("")); err == nil || err.Error() != "broker down" {
		t.Errorf("SendSync = %v, want the client's error", err)
	}
	if nw.count() != 0 {
		t.Error("the message was re-routed without WithFallback")
	}
	if st := p.Stats(); st.Failed[Old] != 1 || st.Fallbacks != [2]uint64{} {
		t.Errorf("stats %+v", st)
	}
}

func TestFallbackTriesTheOtherSideAndSaysSo(t *testing.T) {
	var hooked []Side
	p, old, nw := newFakeProducer(t, WithFallback(true), WithWeight(0),
		WithOnFallback(func(from, to Side, err error) { hooked = append(hooked, from, to) }))
	old.fail = errors.New("broker down")
	r, err := p.Send(context.Background(), keyed("k"))
	if err != nil || !r.FellBack || r.Side != New || nw.count() != 1 {
		t.Fatalf("Send = %+v, %v; new has %d", r, err, nw.count())
	}
	st := p.Stats()
	if st.Fallbacks[Old] != 1 || st.Sent[New] != 1 || st.Failed[Old] != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(hooked) != 2 || hooked[0] != Old || hooked[1] != New {
		t.Errorf("hook saw %v", hooked)
	}
	nw.fail = errors.New("also down")
	if _, err := p.Send(context.Background(), keyed("k")); err == nil ||
		!errors.Is(err, old.fail) || !errors.Is(err, nw.fail) {
		t.Errorf("both down: %v, want both errors", err)
	}
}

func TestShutdownStopsBothClients(t *testing.T) {
	p, old, nw := newFakeProducer(t)
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if !old.shutdown || !nw.shutdown {
		t.Error("a client was not shut down")
	}
	if _, err := p.SendSync(context.Background(), keyed("")); !errors.Is(err, ErrClosed) {
		t.Errorf("send after Shutdown = %v", err)
	}
	if err := p.Shutdown(); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}
