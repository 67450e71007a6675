// Package connlimit bounds the connections an HTTP server holds open, in
// total and per client address, closing idle keep-alive connections first
// when a bound is reached.
//
// Wrap the server's listener with New and pass the Listener's ConnState to
// http.Server.ConnState, so that it knows which connections are idle
// (between requests). When a new connection would pass a bound:
//
//   - over the per-address bound, the longest-idle connection of that
//     address is closed to make room; with none idle, the new connection
//     is answered with Config.Reject (if set) and closed;
//   - over the total bound, the longest-idle connection of any address is
//     closed; with none idle, Accept waits until a connection closes or
//     goes idle. New connections then wait in the kernel's accept queue:
//     probes should use another listener.
//
// A connection is idle only between requests (http.StateIdle): one that is
// reading a request, being answered, or was hijacked is never closed here.
package connlimit

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config bounds a Listener. Zero fields are no bound.
type Config struct {
	// Max is the most connections open at once.
	Max int
	// PerIP is the most connections open at once from one client address
	// (an IPv6 client: its /64).
	PerIP int
	// Reject, when set, is written to a connection refused for its
	// address's bound before it is closed (e.g. a plain HTTP 429 answer).
	Reject []byte
}

// Stats are a Listener's counts.
type Stats struct {
	Open       int   // connections open now
	Idle       int   // of which idle (between requests)
	Peak       int   // most connections open at once so far
	IdleClosed int64 // idle connections closed to make room
	Rejected   int64 // connections refused for their address's bound
	Waits      int64 // accepted connections that waited for room
}

// Listener is a net.Listener with bounds; see the package comment.
type Listener struct {
	net.Listener
	cfg Config

	mu     sync.Mutex
	cond   *sync.Cond
	closed bool
	open   map[*conn]struct{}
	byKey  map[string]int
	stats  Stats

	rejecting chan struct{} // bounds the goroutines answering refused connections
}

// maxRejecting bounds the refused connections being answered at once;
// past it they are closed without an answer.
const maxRejecting = 64

// rejectTimeout bounds answering one refused connection.
const rejectTimeout = time.Second

// New wraps l with the bounds of cfg.
func New(l net.Listener, cfg Config) *Listener {
	ln := &Listener{Listener: l, cfg: cfg, open: map[*conn]struct{}{}, byKey: map[string]int{},
		rejecting: make(chan struct{}, maxRejecting)}
	ln.cond = sync.NewCond(&ln.mu)
	return ln
}

// conn is one admitted connection.
type conn struct {
	net.Conn
	l     *Listener
	key   string
	state http.ConnState
	since time.Time // when it last changed state
	done  bool      // released: no longer counted
}

// Close releases the connection's place and closes it.
func (c *conn) Close() error {
	c.l.mu.Lock()
	c.l.release(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// Accept waits for a connection within the bounds; see the package
// comment.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// Close closes the listener; a waiting Accept returns.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// ConnState follows the state of the connections; set it as the
// http.Server's ConnState (or call it from there).
func (l *Listener) ConnState(c net.Conn, s http.ConnState) {
	lc := unwrap(c)
	if lc == nil || lc.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.done {
		return
	}
	lc.state, lc.since = s, time.Now()
	if s == http.StateIdle {
		l.cond.Broadcast() // a waiting Accept may close it
	}
}

// Bounds returns the listener's configuration.
func (l *Listener) Bounds() Config { return l.cfg }

// Stats returns the counts so far.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Open = len(l.open)
	for c := range l.open {
		if c.state == http.StateIdle {
			st.Idle++
		}
	}
	return st
}

// admit returns c wrapped once it fits the bounds, or nil when c was
// refused (or the listener closed meanwhile).
func (l *Listener) admit(c net.Conn) *conn {
	key := clientKey(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	waited := false
	for {
		if l.closed {
			_ = c.Close()
			return nil
		}
		if l.cfg.PerIP > 0 && l.byKey[key] >= l.cfg.PerIP {
			if v := l.idlest(key); v != nil {
				l.evict(v)
				continue
			}
			l.stats.Rejected++
			l.reject(c)
			return nil
		}
		if l.cfg.Max > 0 && len(l.open) >= l.cfg.Max {
			if v := l.idlest(""); v != nil {
				l.evict(v)
				continue
			}
			if !waited {
				waited = true
				l.stats.Waits++
			}
			l.cond.Wait()
			continue
		}
		break
	}
	lc := &conn{Conn: c, l: l, key: key, state: http.StateNew, since: time.Now()}
	l.open[lc] = struct{}{}
	l.byKey[key]++
	l.stats.Peak = max(l.stats.Peak, len(l.open))
	return lc
}

// idlest returns the connection idle the longest (of address key, or of
// any when key is empty), or nil. l.mu is held.
func (l *Listener) idlest(key string) *conn {
	var best *conn
	for c := range l.open {
		if c.state != http.StateIdle || (key != "" && c.key != key) {
			continue
		}
		if best == nil || c.since.Before(best.since) {
			best = c
		}
	}
	return best
}

// evict closes an idle connection to make room. The server's read on it
// fails and the server forgets it. l.mu is held.
func (l *Listener) evict(c *conn) {
	l.release(c)
	l.stats.IdleClosed++
	_ = c.Conn.Close()
}

// release stops counting c. l.mu is held.
func (l *Listener) release(c *conn) {
	if c.done {
		return
	}
	c.done = true
	delete(l.open, c)
	if l.byKey[c.key]--; l.byKey[c.key] <= 0 {
		delete(l.byKey, c.key)
	}
	l.cond.Broadcast()
}

// reject answers a refused connection with cfg.Reject, if set, and closes
// it, without holding up Accept.
func (l *Listener) reject(c net.Conn) {
	if len(l.cfg.Reject) == 0 {
		_ = c.Close()
		return
	}
	select {
	case l.rejecting <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(rejectTimeout))
		if _, err := c.Write(l.cfg.Reject); err != nil {
			return
		}
		// Closing with the request unread would reset the connection and
		// could destroy the answer before the client reads it: end our
		// side, then read what the client sent until it closes (or the
		// deadline).
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// unwrap finds the *conn under c (a *tls.Conn, for one, has NetConn).
func unwrap(c net.Conn) *conn {
	for range 4 {
		switch x := c.(type) {
		case *conn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// clientKey is what the per-address bound counts by: the IP, or an IPv6
// address's /64 (one host usually holds a whole /64).
func clientKey(a net.Addr) string {
	var ip net.IP
	switch x := a.(type) {
	case *net.TCPAddr:
		ip = x.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
