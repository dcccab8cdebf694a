package admin

import (
	"bufio"
	"net"
	"sync"
	"testing"
)

// fakeServer is a remoting server for unit tests. handle answers a request;
// a nil answer sends nothing. The server sets the response flag and the
// opaque number of the request.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	handle func(req *command) *command

	mu       sync.Mutex
	requests []*command
	accepted int
	conns    []net.Conn
	wg       sync.WaitGroup
}

func newFakeServer(t *testing.T, handle func(req *command) *command) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &fakeServer{t: t, ln: ln, handle: handle}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.accepted++
		s.conns = append(s.conns, nc)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(nc)
	}
}

func (s *fakeServer) serve(nc net.Conn) {
	defer s.wg.Done()
	defer nc.Close()
	r := bufio.NewReader(nc)
	var wmu sync.Mutex
	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		req, err := readFrame(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		handlers.Add(1)
		go func() { // answer concurrently, so answers can overtake each other
			defer handlers.Done()
			resp := s.handle(req)
			if resp == nil {
				return
			}
			resp.Opaque = req.Opaque
			resp.Flag |= flagResponse
			if resp.Language == "" {
				resp.Language = "JAVA"
			}
			frame, err := encodeFrame(resp)
			if err != nil {
				s.t.Errorf("fake server: %v", err)
				return
			}
			wmu.Lock()
			nc.Write(frame)
			wmu.Unlock()
		}()
	}
}

// dropConnections closes the connections accepted so far.
func (s *fakeServer) dropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.dropConnections()
	s.wg.Wait()
}

func (s *fakeServer) received() []*command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*command(nil), s.requests...)
}

func (s *fakeServer) acceptedConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}
