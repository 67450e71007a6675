package notifier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/redact"
)

// MailerConfig configures a Mailer.
type MailerConfig struct {
	Host     string
	Port     int // 0: 25 for none, 587 for starttls, 465 for tls
	Username string
	Password string
	// TLS is "none", "starttls" (required, the default) or "tls"
	// (implicit TLS).
	TLS string
	// TLSConfig overrides the TLS settings (e.g. a private CA); its
	// ServerName defaults to Host.
	TLSConfig *tls.Config
	// Pool is the number of SMTP connections kept open and reused;
	// 0 means 4.
	Pool int
	// Timeout bounds dialing and each step of a send; 0 means 30s.
	Timeout time.Duration
	// IdleTimeout closes a pooled connection unused for this long instead
	// of reusing it; 0 means 30s.
	IdleTimeout time.Duration
	// Clock measures IdleTimeout; nil means the real clock. Timeout and
	// the context's deadline always use real time.
	Clock clock.Clock
	// HELO is the name sent in EHLO; empty means the host name.
	HELO string
	// DKIM signs every message when Domain is set.
	DKIM DKIMConfig
	// Metrics, if set, times each send (jobalert_smtp_send_duration_seconds).
	Metrics *Metrics
}

// DKIMConfig is the DKIM key messages are signed with (go-mail's signer,
// relaxed/relaxed, RSA or Ed25519 keys in PKCS#1 or PKCS#8 PEM).
type DKIMConfig struct {
	Domain        string
	Selector      string
	PrivateKeyPEM string
}

// dkimSignedHeaders are the header fields a DKIM signature covers.
//
// go-mail v0.8.1 signs the DKIM-Signature field unfolded but emits it folded
// at 76 columns, mid-token when a tag is longer than a line; under relaxed
// canonicalisation such a fold adds a space and the signature no longer
// verifies. The list is kept short enough for the h= tag to fit on one line
// (TestDKIMSignature verifies the signature independently).
var dkimSignedHeaders = [...]string{
	"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
}

// ErrMailerClosed is returned by Send after Close.
var ErrMailerClosed = errors.New("notifier: mailer closed")

// TemporaryError is a send that failed for now: a 4xx reply, a timeout, a
// refused, reset or dropped connection, or a canceled context. Nothing was
// delivered, except possibly when MaybeDelivered is set. The caller retries
// later.
type TemporaryError struct {
	Stage string // connect, mail, rcpt, data or data-end (the reply to the final ".")
	Code  int    // the SMTP reply code; 0 when the connection failed
	// MaybeDelivered is set when the connection was lost after the whole
	// message was sent and before the server's reply: a retry may deliver
	// it twice (the documented duplicate window).
	MaybeDelivered bool
	Err            error
}

// Error never shows an email address: a server's reply often quotes the
// recipient's, and this text is logged (internal/redact).
func (e *TemporaryError) Error() string {
	return fmt.Sprintf("smtp %s: temporary failure: %s", e.Stage, redact.Error(e.Err))
}

func (e *TemporaryError) Unwrap() error { return e.Err }

// PermanentError is a hard bounce: the server refused the message for
// Recipients with a 5xx reply (to RCPT, or to DATA or its end, in which case
// every recipient is named). Nothing was delivered to anyone: a message is
// sent to all its recipients or to none. Its text, which is logged, shows
// the recipients and the server's reply redacted (internal/redact); the
// addresses themselves are in Recipients.
type PermanentError struct {
	Recipients []string
	Stage      string
	Code       int
	Err        error
}

func (e *PermanentError) Error() string {
	rcpts := make([]string, len(e.Recipients))
	for i, r := range e.Recipients {
		rcpts[i] = redact.Email(r)
	}
	return fmt.Sprintf("smtp %s: rejected for %s: %s", e.Stage, strings.Join(rcpts, ", "), redact.Error(e.Err))
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsTemporary reports whether err is a TemporaryError: retrying later may
// succeed. An error that is neither temporary nor a PermanentError is a
// configuration or message problem (a refused sender or login, a TLS
// failure, a message without recipients).
func IsTemporary(err error) bool {
	var t *TemporaryError
	return errors.As(err, &t)
}

// MailerStats are counters over a Mailer's life.
type MailerStats struct {
	Dials int64 // connections opened
	Sent  int64 // messages accepted by the server
}

// Mailer sends go-mail messages over a pool of reused SMTP connections. It is
// safe for concurrent use; at most Pool sends run at once. It does not retry
// beyond one immediate redial when a pooled connection turns out stale: the
// caller keeps the work and retries temporary failures.
type Mailer struct {
	cfg    MailerConfig
	client *mail.Client // dial settings only; connections live in the pool
	dkim   *mail.DKIMSigner
	slots  chan struct{}

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool

	dials, sent atomic.Int64
}

// smtpConn is one pooled connection.
type smtpConn struct {
	c        *smtp.Client
	raw      net.Conn
	lastUsed time.Time
}

type rawConnKey struct{}

// NewMailer checks cfg and prepares the pool; connections are opened on
// first use.
func NewMailer(cfg MailerConfig) (*Mailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("notifier: SMTP host is required")
	}
	if cfg.Pool <= 0 {
		cfg.Pool = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	var tlsConf *tls.Config
	if cfg.TLSConfig != nil {
		tlsConf = cfg.TLSConfig.Clone()
	} else {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = cfg.Host
	}
	opts := []mail.Option{mail.WithTimeout(cfg.Timeout), mail.WithTLSConfig(tlsConf)}
	switch cfg.TLS {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
		if cfg.Port == 0 {
			cfg.Port = 25
		}
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
		if cfg.Port == 0 {
			cfg.Port = 587
		}
	case "tls":
		// The dialer below does the TLS handshake; no STARTTLS on top.
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
		if cfg.Port == 0 {
			cfg.Port = 465
		}
	default:
		return nil, fmt.Errorf("notifier: SMTP TLS mode %q: want none, starttls or tls", cfg.TLS)
	}
	opts = append(opts, mail.WithPort(cfg.Port))
	if cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		// go-mail's PLAIN and LOGIN refuse to send a password in clear
		// text except to localhost.
		opts = append(opts, mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password),
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthCramMD5, mail.SMTPAuthPlain, mail.SMTPAuthLogin))
	}
	implicitTLS := cfg.TLS == "tls"
	opts = append(opts, mail.WithDialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		var c net.Conn
		var err error
		if implicitTLS {
			c, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, network, addr)
		} else {
			c, err = d.DialContext(ctx, network, addr)
		}
		if slot, ok := ctx.Value(rawConnKey{}).(*net.Conn); ok && err == nil {
			*slot = c
		}
		return c, err
	}))
	client, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("notifier: SMTP client: %w", err)
	}
	m := &Mailer{cfg: cfg, client: client, slots: make(chan struct{}, cfg.Pool)}
	if cfg.DKIM.Domain != "" {
		if m.dkim, err = newDKIMSigner(cfg.DKIM); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func newDKIMSigner(c DKIMConfig) (*mail.DKIMSigner, error) {
	key, err := mail.PrivKeyFromPEM([]byte(c.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("notifier: DKIM private key: %w", err)
	}
	s := mail.NewDKIMSigner(c.Domain, c.Selector, key)
	s.SignHeaders(dkimSignedHeaders[:]...)
	if err := s.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("notifier: DKIM: %w", err)
	}
	// The signer picks its algorithm on first use, unsynchronised: sign
	// once here so that concurrent sends only read it.
	if _, err := s.Sign([]byte("From: x@example.com\r\n"), []byte("x\r\n")); err != nil {
		return nil, fmt.Errorf("notifier: DKIM: %w", err)
	}
	return s, nil
}

// Stats returns the mailer's counters.
func (m *Mailer) Stats() MailerStats {
	return MailerStats{Dials: m.dials.Load(), Sent: m.sent.Load()}
}

// Send delivers msg to all its recipients over a pooled connection, dialing
// one when none is idle, and DKIM-signs it when configured (it sets msg's
// signer). It waits for a free connection slot until ctx ends. The error, if
// any, is a *TemporaryError (retry later), a *PermanentError (hard bounce,
// naming the recipients), or another error (configuration or message
// problem). A connection that failed is closed; a pooled connection found
// stale before anything was sent is replaced once at once.
func (m *Mailer) Send(ctx context.Context, msg *mail.Msg) error {
	if msg == nil {
		return errors.New("notifier: nil message")
	}
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return &TemporaryError{Stage: "connect", Err: ctx.Err()}
	}
	defer func() { <-m.slots }()
	start := time.Now()
	defer func() { m.cfg.Metrics.smtpSend(time.Since(start)) }()

	sc, reused, err := m.take()
	if err != nil {
		return err
	}
	if sc == nil {
		if sc, err = m.dial(ctx); err != nil {
			return err
		}
	}
	err = m.sendOn(ctx, sc, msg)
	if err != nil && reused && ctxError(ctx) == nil && isStale(err) {
		m.discard(sc)
		if sc, err = m.dial(ctx); err != nil {
			return err
		}
		err = m.sendOn(ctx, sc, msg)
	}
	var perm *PermanentError
	if err == nil || (errors.As(err, &perm) && perm.Stage == "rcpt") || isMessageError(err) {
		m.put(sc) // the transaction was reset; the connection is fine
	} else {
		m.discard(sc)
	}
	return err
}

// Close closes the idle connections politely (QUIT) and makes later sends
// fail with ErrMailerClosed; connections in use close when their send ends.
func (m *Mailer) Close() error {
	m.mu.Lock()
	idle := m.idle
	m.idle, m.closed = nil, true
	m.mu.Unlock()
	var errs []error
	for _, sc := range idle {
		errs = append(errs, m.quit(sc))
	}
	return errors.Join(errs...)
}

// take returns the most recently used idle connection that has not been idle
// too long, or nil.
func (m *Mailer) take() (*smtpConn, bool, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, false, ErrMailerClosed
	}
	var stale []*smtpConn
	var sc *smtpConn
	for len(m.idle) > 0 {
		last := m.idle[len(m.idle)-1]
		m.idle = m.idle[:len(m.idle)-1]
		if m.cfg.Clock.Now().Sub(last.lastUsed) > m.cfg.IdleTimeout {
			stale = append(stale, last)
			continue
		}
		sc = last
		break
	}
	m.mu.Unlock()
	for _, s := range stale {
		_ = s.raw.Close()
	}
	return sc, sc != nil, nil
}

func (m *Mailer) put(sc *smtpConn) {
	sc.lastUsed = m.cfg.Clock.Now()
	m.mu.Lock()
	if !m.closed {
		m.idle = append(m.idle, sc)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	_ = m.quit(sc)
}

func (m *Mailer) discard(sc *smtpConn) { _ = sc.raw.Close() }

func (m *Mailer) quit(sc *smtpConn) error {
	_ = sc.raw.SetDeadline(time.Now().Add(min(m.cfg.Timeout, 5*time.Second)))
	err := sc.c.Quit()
	_ = sc.raw.Close()
	return err
}

// dial opens, greets, secures and authenticates a new connection.
func (m *Mailer) dial(ctx context.Context) (*smtpConn, error) {
	var raw net.Conn
	c, err := m.client.DialToSMTPClientWithContext(context.WithValue(ctx, rawConnKey{}, &raw))
	if err != nil {
		if raw != nil {
			_ = raw.Close() // go-mail leaves it open when EHLO, STARTTLS or AUTH fails
		}
		return nil, classify(ctx, "connect", err, nil)
	}
	if raw == nil {
		_ = c.Close()
		return nil, errors.New("notifier: dialer did not record the connection")
	}
	m.dials.Add(1)
	return &smtpConn{c: c, raw: raw}, nil
}

// sendOn runs one SMTP transaction for msg on sc.
func (m *Mailer) sendOn(ctx context.Context, sc *smtpConn, msg *mail.Msg) error {
	from, err := msg.GetSender(false)
	if err != nil {
		return &messageError{fmt.Errorf("notifier: message sender: %w", err)}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil || len(rcpts) == 0 {
		return &messageError{fmt.Errorf("notifier: message without recipients: %w", err)}
	}
	bare := make([]string, len(rcpts)) // go-mail gives "<addr>"
	for i, r := range rcpts {
		bare[i] = strings.TrimSuffix(strings.TrimPrefix(r, "<"), ">")
	}
	if m.dkim != nil {
		msg.SetDKIM(m.dkim)
	}
	// A canceled context cuts the connection short through its deadline.
	stop := context.AfterFunc(ctx, func() { _ = sc.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	step := func() error {
		d := time.Now().Add(m.cfg.Timeout)
		if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
			d = cd
		}
		_ = sc.raw.SetDeadline(d)
		return ctx.Err()
	}

	if err := step(); err != nil {
		return classify(ctx, "mail", err, bare)
	}
	if err := sc.c.Mail(from); err != nil {
		return classify(ctx, "mail", err, bare)
	}
	var rejected []string
	var rejectErr, tempErr error
	for i, r := range rcpts {
		err := sc.c.Rcpt(r)
		if err == nil {
			continue
		}
		var tp *textproto.Error
		if !errors.As(err, &tp) {
			return classify(ctx, "rcpt", err, bare)
		}
		if tp.Code >= 500 {
			rejected, rejectErr = append(rejected, bare[i]), err
		} else {
			tempErr = err
		}
	}
	if rejectErr != nil || tempErr != nil {
		// No partial delivery: abort the transaction for everyone.
		if err := sc.c.Reset(); err != nil {
			return classify(ctx, "rcpt", err, bare)
		}
		if tempErr != nil {
			return classify(ctx, "rcpt", tempErr, bare)
		}
		return classify(ctx, "rcpt", rejectErr, rejected)
	}
	if err := step(); err != nil {
		return classify(ctx, "data", err, bare)
	}
	w, err := sc.c.Data()
	if err != nil {
		return classify(ctx, "data", err, bare)
	}
	if _, err := msg.WriteTo(w); err != nil {
		return classify(ctx, "data", err, bare)
	}
	if err := step(); err != nil {
		return classify(ctx, "data", err, bare)
	}
	if err := w.Close(); err != nil {
		return classify(ctx, "data-end", err, bare)
	}
	m.sent.Add(1)
	return nil
}

// messageError is a problem with the message itself, found before anything
// was sent.
type messageError struct{ err error }

func (e *messageError) Error() string { return e.err.Error() }
func (e *messageError) Unwrap() error { return e.err }

func isMessageError(err error) bool {
	var me *messageError
	return errors.As(err, &me)
}

// isStale reports whether a failure on a reused connection happened on its
// first command with nothing sent: a connection the server had dropped, or
// one it was about to drop (421). A timeout is not staleness but a slow
// server, and is not retried.
func isStale(err error) bool {
	var t *TemporaryError
	if !errors.As(err, &t) || t.Stage != "mail" {
		return false
	}
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return t.Code == 421 || (t.Code == 0 && !timedOut)
}

// classify turns an error at stage into a TemporaryError, a PermanentError
// naming rcpts, or a plain wrapped error.
func classify(ctx context.Context, stage string, err error, rcpts []string) error {
	if ctxErr := ctxError(ctx); ctxErr != nil {
		return &TemporaryError{Stage: stage, MaybeDelivered: stage == "data-end", Err: errors.Join(ctxErr, err)}
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		switch {
		case tp.Code >= 400 && tp.Code < 500:
			return &TemporaryError{Stage: stage, Code: tp.Code, Err: err}
		case tp.Code >= 500 && (stage == "rcpt" || stage == "data" || stage == "data-end"):
			return &PermanentError{Recipients: rcpts, Stage: stage, Code: tp.Code, Err: err}
		}
		return redact.Wrap(fmt.Errorf("smtp %s: refused: %w", stage, err))
	}
	if isConfigError(err) {
		return redact.Wrap(fmt.Errorf("smtp %s: %w", stage, err))
	}
	if isNetError(err) {
		return &TemporaryError{Stage: stage, MaybeDelivered: stage == "data-end", Err: err}
	}
	return redact.Wrap(fmt.Errorf("smtp %s: %w", stage, err))
}

// ctxError is ctx.Err(), or DeadlineExceeded once the deadline has passed:
// a connection deadline taken from ctx can fire a moment before ctx itself
// reports it.
func ctxError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// isConfigError spots TLS failures that retrying will not cure.
func isConfigError(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) ||
		errors.As(err, &ci) || errors.As(err, &rhe)
}

// isNetError reports a failure of the connection rather than of the
// conversation: refused, reset, closed, timed out, name lookup.
func isNetError(err error) bool {
	for _, target := range []error{
		io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, os.ErrDeadlineExceeded,
		context.DeadlineExceeded, context.Canceled,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var ne net.Error
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &ne) || errors.As(err, &op) || errors.As(err, &dns)
}
