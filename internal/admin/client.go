package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// Client is an admin client of one RocketMQ deployment, reached through its
// name servers. It is safe for concurrent use. Close it when done.
type Client struct {
	nameServers []string
	opts        options
	dialer      net.Dialer
	opaque      atomic.Int32

	mu     sync.Mutex
	conns  map[string]*connSlot // by address
	closed bool
	// masters caches the master address of each broker by name, for
	// requests on the consumption path (consume.go).
	masters map[string]string
}

// connSlot holds the one connection to an address, reused by every request.
type connSlot struct {
	mu sync.Mutex // held while dialing
	cn *conn
}

// New returns a Client of the name servers at nameServers ("host:port"
// each). It connects lazily, on the first request to each address.
func New(nameServers []string, opts ...Option) (*Client, error) {
	if len(nameServers) == 0 {
		return nil, errors.New("admin: New: no name server address")
	}
	addrs := make([]string, 0, len(nameServers))
	for _, a := range nameServers {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("admin: New: name server address %q: %w", a, err)
		}
		addrs = append(addrs, a)
	}
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Client{nameServers: addrs, opts: o, conns: make(map[string]*connSlot)}, nil
}

// Close closes the client's connections; requests in flight fail with
// ErrClosed. Further calls return ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, slot := range conns {
		slot.mu.Lock()
		if slot.cn != nil {
			slot.cn.close(ErrClosed)
		}
		slot.mu.Unlock()
	}
	return nil
}

// connTo returns the connection to addr, dialing it if there is none or the
// one there broke. Concurrent callers for the same address share one dial.
func (c *Client) connTo(ctx context.Context, addr string) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	slot := c.conns[addr]
	if slot == nil {
		slot = &connSlot{}
		c.conns[addr] = slot
	}
	c.mu.Unlock()

	slot.mu.Lock()
	defer slot.mu.Unlock()
	if slot.cn != nil && !slot.cn.broken() {
		return slot.cn, nil
	}
	nc, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	fresh := newConn(nc, addr)
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		fresh.close(ErrClosed)
		return nil, ErrClosed
	}
	if slot.cn != nil {
		slot.cn.close(errors.New("replaced")) // broken: only waits for its reader
	}
	slot.cn = fresh
	return fresh, nil
}

// invoke sends a request with the ext fields (the request header) and body
// to addr and returns the response. A response code other than SUCCESS is
// returned as a *ResponseError, along with the response. ext may be modified
// (signing adds fields).
func (c *Client) invoke(ctx context.Context, addr string, code int, ext map[string]string, body []byte) (*command, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	if ext == nil {
		ext = make(map[string]string)
	}
	if c.opts.credentials != nil {
		c.opts.credentials.signRequest(ext, body)
	}
	req := &command{
		Code:      code,
		Language:  "GO",
		Version:   protocolVersion,
		Opaque:    c.opaque.Add(1),
		ExtFields: ext,
		Body:      body,
	}
	cn, err := c.connTo(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("request %d to %s: %w", code, addr, err)
	}
	resp, err := cn.roundTrip(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("request %d: %w", code, err)
	}
	if resp.Code != codeSuccess {
		return resp, &ResponseError{Addr: addr, RequestCode: code, Code: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

// invokeNameServer sends the request to the name servers in turn until one
// answers; an error response is an answer.
func (c *Client) invokeNameServer(ctx context.Context, code int, ext map[string]string, body []byte) (*command, error) {
	var errs []error
	for _, addr := range c.nameServers {
		resp, err := c.invoke(ctx, addr, code, maps.Clone(ext), body)
		if err == nil || errors.Is(err, ErrBrokerResponse) || errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return resp, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
