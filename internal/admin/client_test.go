package admin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

func echoHandler(req *command) *command {
	time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond) // answers overtake each other
	return &command{Code: codeSuccess, ExtFields: map[string]string{"echo": req.ExtFields["n"]}}
}

func TestConcurrentRequestsShareOneConnectionAndGetTheirOwnResponses(t *testing.T) {
	srv := newFakeServer(t, echoHandler)
	c, err := New([]string{srv.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.invoke(context.Background(), srv.addr(), reqGetMaxOffset, map[string]string{"n": strconv.Itoa(i)}, nil)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if got := resp.ExtFields["echo"]; got != strconv.Itoa(i) {
				t.Errorf("request %d got the response to request %s", i, got)
			}
		}()
	}
	wg.Wait()
	if got := srv.acceptedConns(); got != 1 {
		t.Errorf("the server accepted %d connections, want 1", got)
	}
}

func TestRequestTimesOutAndTheConnectionStaysUsable(t *testing.T) {
	srv := newFakeServer(t, func(req *command) *command {
		if req.ExtFields["n"] == "slow" {
			time.Sleep(300 * time.Millisecond) // answered after the caller gave up
		}
		return echoHandler(req)
	})
	c, err := New([]string{srv.addr()}, WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	_, err = c.invoke(context.Background(), srv.addr(), 1, map[string]string{"n": "slow"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow request: %v, want context.DeadlineExceeded", err)
	}
	time.Sleep(300 * time.Millisecond) // let the late answer arrive
	resp, err := c.invoke(context.Background(), srv.addr(), 1, map[string]string{"n": "fast"}, nil)
	if err != nil || resp.ExtFields["echo"] != "fast" {
		t.Fatalf("request after a timeout: %+v, %v; want the echo of fast", resp, err)
	}
	if got := srv.acceptedConns(); got != 1 {
		t.Errorf("the server accepted %d connections, want 1", got)
	}
}

func TestCanceledContextStopsTheWait(t *testing.T) {
	srv := newFakeServer(t, func(*command) *command { return nil })
	c, err := New([]string{srv.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := c.invoke(ctx, srv.addr(), 1, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("invoke: %v, want context.Canceled", err)
	}
}

func TestABrokenConnectionIsRedialed(t *testing.T) {
	srv := newFakeServer(t, echoHandler)
	c, err := New([]string{srv.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.invoke(ctx, srv.addr(), 1, map[string]string{"n": "1"}, nil); err != nil {
		t.Fatal(err)
	}
	srv.dropConnections()
	// The reader notices the close; until then a request may still fail.
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := c.invoke(ctx, srv.addr(), 1, map[string]string{"n": "2"}, nil)
		if err == nil && resp.ExtFields["echo"] == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request after the server dropped the connection: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.acceptedConns(); got != 2 {
		t.Errorf("the server accepted %d connections, want 2", got)
	}
}

func TestPendingRequestFailsWhenTheConnectionBreaks(t *testing.T) {
	srv := newFakeServer(t, func(*command) *command { return nil })
	c, err := New([]string{srv.addr()}, WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.AfterFunc(100*time.Millisecond, srv.dropConnections)
	start := time.Now()
	_, err = c.invoke(context.Background(), srv.addr(), 1, nil, nil)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("invoke: %v after %v, want a connection error at once", err, time.Since(start))
	}
}

func TestCloseFailsPendingAndLaterCalls(t *testing.T) {
	srv := newFakeServer(t, func(*command) *command { return nil })
	c, err := New([]string{srv.addr()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.invoke(context.Background(), srv.addr(), 1, nil, nil)
		done <- err
	}()
	for len(srv.received()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("request in flight at Close: %v, want ErrClosed", err)
	}
	if _, err := c.ClusterInfo(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("ClusterInfo after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestErrorResponseIsAResponseErrorMatchingItsSentinel(t *testing.T) {
	for _, tc := range []struct {
		code     int
		sentinel error
	}{
		{codeTopicNotExist, ErrNotFound},
		{codeQueryNotFound, ErrNotFound},
		{codeSubscriptionGroupNotExist, ErrNotFound},
		{codeConsumerNotOnline, ErrConsumerNotOnline},
		{codeSystemError, nil},
		{29, nil}, // INVALID_PARAMETER
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			srv := newFakeServer(t, func(*command) *command {
				return &command{Code: tc.code, Remark: "the remark"}
			})
			c, err := New([]string{srv.addr()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.invoke(context.Background(), srv.addr(), reqGetConsumeStats, nil, nil)
			var re *ResponseError
			if !errors.As(err, &re) || re.Code != tc.code || re.Remark != "the remark" || re.RequestCode != reqGetConsumeStats || re.Addr != srv.addr() {
				t.Fatalf("invoke: %#v, want a *ResponseError with code %d", err, tc.code)
			}
			if !errors.Is(err, ErrBrokerResponse) {
				t.Errorf("%v does not match ErrBrokerResponse", err)
			}
			for _, s := range []error{ErrNotFound, ErrConsumerNotOnline} {
				if got, want := errors.Is(err, s), s == tc.sentinel; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
				}
			}
			want := fmt.Sprintf("request %d to %s: response code %d: the remark", reqGetConsumeStats, srv.addr(), tc.code)
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestNameServerRequestsFailOverToTheNextNameServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now

	srv := newFakeServer(t, func(req *command) *command {
		return &command{Code: codeTopicNotExist, Remark: "no route"}
	})
	c, err := New([]string{dead, srv.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.TopicRoute(context.Background(), "t")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("TopicRoute: %v, want ErrNotFound from the second name server", err)
	}
	if got := len(srv.received()); got != 1 {
		t.Errorf("the live name server got %d requests, want 1", got)
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   []string
		opts []Option
	}{
		{"no name server", nil, nil},
		{"address without port", []string{"127.0.0.1"}, nil},
		{"zero timeout", []string{"127.0.0.1:9876"}, []Option{WithTimeout(0)}},
		{"empty secret key", []string{"127.0.0.1:9876"}, []Option{WithCredentials("ak", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := New(tc.ns, tc.opts...); err == nil {
				c.Close()
				t.Errorf("New(%q): no error", tc.ns)
			}
		})
	}
}
