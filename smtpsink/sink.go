// Package smtpsink is an in-process SMTP server that keeps every message it
// accepts in memory. Tests, `jobalert demo` and the fault suite use it as the
// far end of the mail path: it records envelopes, raw bytes, parsed headers
// and decoded text/HTML parts, can be told at run time to misbehave (answer
// 4xx/5xx, stall, drop the connection), counts connections to prove reuse,
// and serves a small web inbox.
package smtpsink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Sink. The zero value listens on 127.0.0.1 on a free
// port and accepts mail without authentication.
type Options struct {
	// Addr is the address to listen on; empty means "127.0.0.1:0".
	Addr string
	// Domain is the name the server greets with; empty means "smtpsink.test".
	Domain string
	// MaxMessageBytes limits the size of one message; 0 means 32 MiB.
	MaxMessageBytes int64
	// Username and Password, when Username is set, make the sink offer AUTH
	// PLAIN (over plain text) and refuse MAIL before a successful login.
	Username, Password string
	// Now is the clock that stamps received messages; nil means time.Now.
	Now func() time.Time
}

// Message is one message the sink read in full. Its fields must not be
// modified: the sink hands the same slices and maps to every caller.
type Message struct {
	ID         int         // 1, 2, ... in order of arrival
	ConnID     int         // the connection it came over, 1, 2, ...
	From       string      // envelope sender (MAIL FROM)
	To         []string    // envelope recipients (RCPT TO)
	Raw        []byte      // the message as received, CRLF line ends
	Header     mail.Header // parsed header fields
	Subject    string      // Subject with RFC 2047 words decoded
	MessageID  string      // Message-ID, angle brackets included
	Text       string      // first text/plain part, transfer-decoded
	HTML       string      // first text/html part, transfer-decoded
	ReceivedAt time.Time   // when the final "." was read
	Acked      bool        // false when the sink dropped the connection instead of answering 250
	ParseError error       // set when the message could not be parsed as MIME
}

// Stats are counters over the life of a Sink (Reset clears them too).
type Stats struct {
	// Connections is the number of TCP connections accepted.
	Connections int
	// Messages is the number of messages acknowledged with 250.
	Messages int
	// Unacknowledged is the number of messages read in full whose
	// connection was dropped before the reply (ResetNext(StageData, ...)).
	Unacknowledged int
	// Rejected counts MAIL, RCPT and end-of-data commands answered with an
	// injected error.
	Rejected int
	// PerConnection maps a connection id to the messages acknowledged on it.
	PerConnection map[int]int
}

// Sink is a running in-process SMTP server. All its methods are safe for
// concurrent use.
type Sink struct {
	opts   Options
	server *smtp.Server
	ln     net.Listener
	done   chan struct{}
	served chan struct{}

	mu        sync.Mutex
	msgs      []*Message // every message read in full, acked or not
	nextMsg   int
	nextConn  int
	connBase  int // nextConn at the last Reset
	perConn   map[int]int
	rejected  int
	faults    []*fault
	nextFault FaultID
	changed   chan struct{} // closed and replaced whenever msgs changes
	closeOnce sync.Once
}

// New starts a sink listening on opts.Addr. Close stops it.
func New(opts Options) (*Sink, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Domain == "" {
		opts.Domain = "smtpsink.test"
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 32 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: listen: %w", err)
	}
	s := &Sink{
		opts:    opts,
		ln:      ln,
		done:    make(chan struct{}),
		served:  make(chan struct{}),
		perConn: make(map[int]int),
		changed: make(chan struct{}),
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = opts.Domain
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = 1000
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = discardLogger{}
	s.server = srv
	go func() {
		defer close(s.served)
		_ = srv.Serve(&countingListener{Listener: ln, sink: s})
	}()
	return s, nil
}

// Addr returns the address the sink listens on, as host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Host returns the host part of Addr.
func (s *Sink) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port returns the port part of Addr.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server, drops every open connection and wakes any stalled
// command. The messages stay readable.
func (s *Sink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.server.Close()
		<-s.served
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// Messages returns the messages acknowledged with 250, in order of arrival.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot(func(m *Message) bool { return m.Acked })
}

// Unacknowledged returns the messages read in full whose connection the sink
// dropped before answering (the documented duplicate window).
func (s *Sink) Unacknowledged() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot(func(m *Message) bool { return !m.Acked })
}

// To returns the acknowledged messages with addr among their envelope
// recipients, compared case-insensitively.
func (s *Sink) To(addr string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot(func(m *Message) bool { return m.Acked && hasRcpt(m, addr) })
}

// Message returns the message with the given id, acknowledged or not.
func (s *Sink) Message(id int) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.ID == id {
			return *m, true
		}
	}
	return Message{}, false
}

// Count returns the number of acknowledged messages.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m.Acked {
			n++
		}
	}
	return n
}

// Wait blocks until cond, given the acknowledged messages, returns true, and
// then returns those messages. It returns ctx's error, with the messages
// seen so far, when ctx ends first.
func (s *Sink) Wait(ctx context.Context, cond func([]Message) bool) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs := s.snapshot(func(m *Message) bool { return m.Acked })
		ch := s.changed
		s.mu.Unlock()
		if cond(msgs) {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("smtpsink: waiting with %d messages: %w", len(msgs), ctx.Err())
		}
	}
}

// WaitFor blocks until at least n messages were acknowledged and returns
// them all.
func (s *Sink) WaitFor(ctx context.Context, n int) ([]Message, error) {
	return s.Wait(ctx, func(m []Message) bool { return len(m) >= n })
}

// WaitTo blocks until at least n acknowledged messages went to addr and
// returns those.
func (s *Sink) WaitTo(ctx context.Context, addr string, n int) ([]Message, error) {
	var got []Message
	_, err := s.Wait(ctx, func(all []Message) bool {
		got = got[:0]
		for i := range all {
			if hasRcpt(&all[i], addr) {
				got = append(got, all[i])
			}
		}
		return len(got) >= n
	})
	return got, err
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Connections: s.nextConn - s.connBase, Rejected: s.rejected, PerConnection: make(map[int]int, len(s.perConn))}
	for k, v := range s.perConn {
		st.PerConnection[k] = v
	}
	for _, m := range s.msgs {
		if m.Acked {
			st.Messages++
		} else {
			st.Unacknowledged++
		}
	}
	return st
}

// Reset forgets every message and zeroes the counters (connection ids keep
// counting up). Faults are left alone; see ClearFaults.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
	s.perConn = make(map[int]int)
	s.rejected = 0
	s.connBase = s.nextConn
	s.notifyLocked()
}

func (s *Sink) snapshot(keep func(*Message) bool) []Message {
	out := make([]Message, 0, len(s.msgs))
	for _, m := range s.msgs {
		if keep(m) {
			out = append(out, *m)
		}
	}
	return out
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sink) record(connID int, from string, to []string, raw []byte, acked bool) {
	m := &Message{
		ConnID:     connID,
		From:       from,
		To:         slices.Clone(to),
		Raw:        raw,
		ReceivedAt: s.opts.Now(),
		Acked:      acked,
	}
	parseInto(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextMsg++
	m.ID = s.nextMsg
	s.msgs = append(s.msgs, m)
	if acked {
		s.perConn[connID]++
	}
	s.notifyLocked()
}

func hasRcpt(m *Message, addr string) bool {
	for _, r := range m.To {
		if strings.EqualFold(r, addr) {
			return true
		}
	}
	return false
}

// countingListener numbers the connections it accepts.
type countingListener struct {
	net.Listener
	sink *Sink
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.sink.mu.Lock()
	l.sink.nextConn++
	id := l.sink.nextConn
	l.sink.mu.Unlock()
	return &idConn{Conn: c, id: id}, nil
}

type idConn struct {
	net.Conn
	id int
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	id := 0
	if ic, ok := c.Conn().(*idConn); ok {
		id = ic.id
	}
	return &session{sink: s, conn: c, connID: id, authed: s.opts.Username == ""}, nil
}

// session is one SMTP connection's state, driven by go-smtp.
type session struct {
	sink   *Sink
	conn   *smtp.Conn
	connID int
	authed bool
	from   string
	to     []string
}

var errConnDropped = errors.New("smtpsink: connection dropped by fault")

func (ss *session) AuthMechanisms() []string {
	if ss.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.sink.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.sink.opts.Username || password != ss.sink.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from, ss.to = from, nil
	return ss.sink.applyFaults(ss, StageMail, nil)
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.sink.applyFaults(ss, StageRcpt, []string{to}); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	v := ss.sink.decide(StageData, ss.to)
	if !ss.sink.stall(v.delay) {
		return errConnDropped
	}
	switch {
	case v.reset:
		// Read in full but never acknowledged: the sender cannot know
		// whether it was delivered.
		ss.sink.record(ss.connID, ss.from, ss.to, raw, false)
		_ = ss.conn.Conn().Close()
		return errConnDropped
	case v.err != nil:
		return v.err
	}
	ss.sink.record(ss.connID, ss.from, ss.to, raw, true)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// discardLogger drops go-smtp's own error log (a dropped connection is
// expected here).
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
