package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
)

// conn is one TCP connection to a name server or broker. Requests are written
// whole under wmu; a single reader goroutine hands each response to the
// request waiting for its opaque number, so any number of requests can be in
// flight at once.
type conn struct {
	addr string
	nc   net.Conn

	wmu sync.Mutex // serializes frame writes

	mu      sync.Mutex
	pending map[int32]chan *command // requests waiting for their response
	err     error                   // why the connection is unusable; set once
	done    chan struct{}           // closed when err is set

	readDone chan struct{} // closed when readLoop has returned
}

func newConn(nc net.Conn, addr string) *conn {
	c := &conn{
		addr:     addr,
		nc:       nc,
		pending:  make(map[int32]chan *command),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	go c.readLoop()
	return c
}

func (c *conn) readLoop() {
	defer close(c.readDone)
	r := bufio.NewReader(c.nc)
	for {
		cmd, err := readFrame(r)
		if err != nil {
			c.fail(fmt.Errorf("connection to %s: read: %w", c.addr, err))
			return
		}
		if !cmd.isResponse() {
			// A request from the server (this client registers no handler): ignore it.
			continue
		}
		c.mu.Lock()
		ch := c.pending[cmd.Opaque]
		delete(c.pending, cmd.Opaque)
		c.mu.Unlock()
		if ch != nil {
			ch <- cmd // buffered: never blocks
		}
		// No waiter: the request timed out or was canceled; drop the response.
	}
}

// fail marks the connection broken (the first error wins) and closes it.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
	c.mu.Unlock()
	c.nc.Close()
}

// broken reports whether the connection can no longer be used.
func (c *conn) broken() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close closes the connection and waits for its reader to return.
func (c *conn) close(err error) {
	c.fail(err)
	<-c.readDone
}

// roundTrip sends req and waits for the response with the same opaque
// number. ctx must have a deadline: it bounds the write too. A write error
// breaks the connection (a partly written frame cannot be taken back).
func (c *conn) roundTrip(ctx context.Context, req *command) (*command, error) {
	frame, err := encodeFrame(req)
	if err != nil {
		return nil, err
	}
	ch := make(chan *command, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[req.Opaque] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.Opaque)
		c.mu.Unlock()
	}()

	deadline, _ := ctx.Deadline() // zero: none
	c.wmu.Lock()
	if err := ctx.Err(); err != nil {
		c.wmu.Unlock()
		return nil, fmt.Errorf("before writing to %s: %w", c.addr, err)
	}
	n := 0
	err = c.nc.SetWriteDeadline(deadline)
	if err == nil {
		n, err = c.nc.Write(frame)
	}
	c.wmu.Unlock()
	if err != nil {
		err = fmt.Errorf("connection to %s: write: %w", c.addr, err)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			c.fail(err) // part of a frame went out: the stream is out of step
		}
		return nil, err
	}

	select {
	case resp := <-ch:
		return resp, nil
	case <-c.done:
		select {
		case resp := <-ch: // the response came in just before the connection broke
			return resp, nil
		default:
			return nil, c.err
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the response from %s: %w", c.addr, ctx.Err())
	}
}
