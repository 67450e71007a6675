package connlimit_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/connlimit"
	"github.com/jobalert/jobalert/internal/testenv"
)

// server is an HTTP server behind a connlimit.Listener on loopback. GET /
// answers at once; GET /block answers once release is closed, and counts
// the requests in progress.
type server struct {
	ln      *connlimit.Listener
	addr    string
	release chan struct{}
	active  atomic.Int64
}

func newServer(t *testing.T, cfg connlimit.Config) *server {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: connlimit.New(raw, cfg), addr: raw.Addr().String(), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /block", func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "released")
	})
	srv := &http.Server{Handler: mux, ConnState: s.ln.ConnState, ReadHeaderTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(s.ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// client is one raw keep-alive connection, from a chosen loopback address.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr, from string) *client {
	t.Helper()
	c := testenv.DialFrom(t, addr, from)
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(path string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads one response: its status and body, or the read error.
func (c *client) answer() (int, string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	c.send(path)
	code, body, err := c.answer()
	if err != nil {
		c.t.Fatalf("GET %s: got %v, want an answer", path, err)
	}
	return code, body
}

// closedByServer reports whether the server has closed the connection: a
// request on it gets no answer (EOF or a reset, at once). On an open one
// it is an ordinary request.
func (c *client) closedByServer() bool {
	if _, err := fmt.Fprintf(c.c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		return true
	}
	code, _, err := c.answer()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("probe: got a timeout, want an answer or the connection closed")
		}
		return true
	}
	if code != 200 {
		c.t.Fatalf("probe: got %d, want 200", code)
	}
	return false
}

// With 20 connections open and idle, a 21st closes the one idle longest;
// with 20 busy, a 21st waits, and never more than 20 are open, until one
// ends.
func TestTotalCapClosesIdleFirstThenWaits(t *testing.T) {
	s := newServer(t, connlimit.Config{Max: 20})
	var cs []*client
	for i := range 20 {
		c := dial(t, s.addr, "127.0.0.1")
		if code, body := c.get("/"); code != 200 || body != "ok" {
			t.Fatalf("client %d: got %d %q, want 200 ok", i, code, body)
		}
		cs = append(cs, c)
		// One at a time, so that they went idle in this order.
		testenv.Eventually(t, 5*time.Second, func() bool { return s.ln.Stats().Idle == i+1 }, "want %d idle connections, got %+v", i+1, s.ln.Stats())
	}

	// A 21st: the first client, idle the longest, makes room.
	extra := dial(t, s.addr, "127.0.0.1")
	if code, _ := extra.get("/"); code != 200 {
		t.Fatalf("21st connection: got %d, want 200", code)
	}
	if !cs[0].closedByServer() {
		t.Fatal("the connection idle the longest: got it still open, want it closed")
	}
	if st := s.ln.Stats(); st.IdleClosed != 1 || st.Open != 20 || st.Peak != 20 {
		t.Fatalf("stats: got %+v, want 1 idle closed, 20 open, peak 20", st)
	}
	cs = append(cs[1:], extra)
	// The others were not touched: each still answers on its connection.
	for i, c := range cs {
		if code, _ := c.get("/"); code != 200 {
			t.Fatalf("client %d after the eviction: got %d, want 200", i, code)
		}
	}

	// All 20 busy: a 21st is accepted by the kernel but waits.
	for _, c := range cs {
		c.send("/block")
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return s.active.Load() == 20 }, "want 20 requests in progress, got %d", s.active.Load())
	waiting := dial(t, s.addr, "127.0.0.1")
	waiting.send("/")
	testenv.Eventually(t, 5*time.Second, func() bool { return s.ln.Stats().Waits == 1 }, "want the 21st connection waiting, got %+v", s.ln.Stats())
	if st := s.ln.Stats(); st.Open != 20 || st.Peak != 20 || st.IdleClosed != 1 {
		t.Fatalf("at the cap: got %+v, want 20 open, peak 20, no more idle closed", st)
	}

	// One busy connection ends its request: it goes idle, and the waiting
	// connection takes its place.
	close(s.release)
	if code, body := waiting.get("/"); code != 200 || body != "ok" {
		t.Fatalf("waiting connection: got %d %q, want 200 ok once room was made", code, body)
	}
	for i, c := range cs {
		if code, body, err := c.answer(); err != nil || code != 200 || body != "released" {
			t.Fatalf("busy client %d: got %d %q %v, want 200 released", i, code, body, err)
		}
	}
	if st := s.ln.Stats(); st.Peak != 20 || st.Open != 20 || st.IdleClosed != 2 {
		t.Fatalf("after: got %+v, want peak 20, 20 open, 2 idle closed", st)
	}
}

// Five connections from one address are its share: a sixth closes one of
// its idle ones, or is refused with the reject answer when none is idle;
// another address is not affected.
func TestPerAddressCap(t *testing.T) {
	const reject = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
	s := newServer(t, connlimit.Config{Max: 20, PerIP: 5, Reject: []byte(reject)})
	var busy []*client
	for range 5 {
		c := dial(t, s.addr, "127.0.0.2")
		c.send("/block")
		busy = append(busy, c)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return s.active.Load() == 5 }, "want 5 requests in progress, got %d", s.active.Load())

	sixth := dial(t, s.addr, "127.0.0.2")
	sixth.send("/")
	if code, body, err := sixth.answer(); err != nil || code != 429 || body != "busy" {
		t.Fatalf("sixth connection from 127.0.0.2: got %d %q %v, want 429 busy", code, body, err)
	}
	other := dial(t, s.addr, "127.0.0.3")
	if code, _ := other.get("/"); code != 200 {
		t.Fatalf("connection from 127.0.0.3: got %d, want 200", code)
	}
	if st := s.ln.Stats(); st.Rejected != 1 || st.Open != 6 {
		t.Fatalf("stats: got %+v, want 1 rejected, 6 open", st)
	}

	// The five finish and go idle: a new one from 127.0.0.2 closes the one
	// idle the longest instead of being refused.
	close(s.release)
	for i, c := range busy {
		if code, body, err := c.answer(); err != nil || code != 200 || body != "released" {
			t.Fatalf("busy client %d: got %d %q %v, want 200 released", i, code, body, err)
		}
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return s.ln.Stats().Idle == 6 }, "want 6 idle, got %+v", s.ln.Stats())
	again := dial(t, s.addr, "127.0.0.2")
	if code, _ := again.get("/"); code != 200 {
		t.Fatalf("new connection from 127.0.0.2 with idle ones: got %d, want 200", code)
	}
	if st := s.ln.Stats(); st.Rejected != 1 || st.IdleClosed != 1 || st.Open != 6 {
		t.Fatalf("stats: got %+v, want still 1 rejected, 1 idle closed, 6 open", st)
	}
	closed := 0
	for _, c := range busy {
		if c.closedByServer() {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("127.0.0.2's idle connections closed: got %d, want 1", closed)
	}
	if other.closedByServer() {
		t.Fatal("127.0.0.3's idle connection: got closed, want it kept")
	}
}

func TestCloseEndsAWaitingAccept(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := connlimit.New(raw, connlimit.Config{Max: 1})
	c1 := dial(t, raw.Addr().String(), "127.0.0.1")
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_ = dial(t, raw.Addr().String(), "127.0.0.1")
	var wg sync.WaitGroup
	var acceptErr error
	wg.Go(func() { _, acceptErr = ln.Accept() })
	testenv.Eventually(t, 5*time.Second, func() bool { return ln.Stats().Waits == 1 }, "want the second connection waiting")
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(acceptErr, net.ErrClosed) {
		t.Fatalf("Accept after Close: got %v, want net.ErrClosed", acceptErr)
	}
	_ = c1
	if st := ln.Stats(); st.Open != 1 {
		t.Fatalf("stats: got %+v, want the first connection still counted", st)
	}
}
