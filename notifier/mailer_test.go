package notifier_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/smtpsink"
)

// mustMailer returns a mailer to sink with cfg's other settings, closed when
// the test ends.
func mustMailer(tb testing.TB, sink *smtpsink.Sink, cfg notifier.MailerConfig) *notifier.Mailer {
	tb.Helper()
	cfg.Host, cfg.Port, cfg.TLS, cfg.HELO = sink.Host(), sink.Port(), "none", "jobalert.test"
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	m, err := notifier.NewMailer(cfg)
	if err != nil {
		tb.Fatalf("NewMailer: %v", err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

func simpleMsg(tb testing.TB, to string) *mail.Msg {
	tb.Helper()
	m := mail.NewMsg()
	if err := m.From("alerts@jobalert.test"); err != nil {
		tb.Fatal(err)
	}
	if err := m.To(to); err != nil {
		tb.Fatal(err)
	}
	m.Subject("hello " + to)
	m.SetBodyString(mail.TypeTextPlain, "hello")
	return m
}

func TestPoolReusesConnections(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{Pool: 2})
	const workers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- m.Send(context.Background(), simpleMsg(t, fmt.Sprintf("u%d-%d@example.com", w, i)))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	st := sink.Stats()
	if st.Messages != workers*each {
		t.Errorf("sink got %d messages, want %d", st.Messages, workers*each)
	}
	if st.Connections < 1 || st.Connections > 2 {
		t.Errorf("sink saw %d connections, want 1 or 2 (Pool=2)", st.Connections)
	}
	total := 0
	for _, n := range st.PerConnection {
		total += n
	}
	if total != workers*each {
		t.Errorf("per-connection counts add up to %d, want %d", total, workers*each)
	}
	if got := m.Stats(); got.Dials != int64(st.Connections) || got.Sent != workers*each {
		t.Errorf("mailer stats = %+v, sink connections = %d", got, st.Connections)
	}
}

func TestTemporaryThenSuccess(t *testing.T) {
	for _, stage := range []smtpsink.Stage{smtpsink.StageMail, smtpsink.StageRcpt, smtpsink.StageData} {
		t.Run(stage.String(), func(t *testing.T) {
			sink := mustSink(t)
			m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1})
			id := sink.FailUntil(stage, 421, time.Now().Add(time.Hour))
			for range 2 { // a fresh connection, then a pooled one
				err := m.Send(context.Background(), simpleMsg(t, "a@example.com"))
				var te *notifier.TemporaryError
				if !notifier.IsTemporary(err) || !errors.As(err, &te) || te.Code != 421 {
					t.Fatalf("err = %v, want a temporary 421", err)
				}
				var pe *notifier.PermanentError
				if errors.As(err, &pe) {
					t.Fatalf("a 421 is a PermanentError")
				}
			}
			sink.Remove(id)
			if err := m.Send(context.Background(), simpleMsg(t, "a@example.com")); err != nil {
				t.Fatalf("after the fault cleared: %v", err)
			}
			if got := len(sink.To("a@example.com")); got != 1 {
				t.Errorf("delivered %d times, want 1", got)
			}
		})
	}
}

// A server's reply that quotes the recipient, temporary or permanent, is
// logged by the callers: the error text never holds the address.
func TestErrorTextRedactsServerReplies(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1})
	for _, code := range []int{450, 550} {
		sink.Inject(smtpsink.Fault{Stage: smtpsink.StageRcpt, Action: smtpsink.ActionReply, Code: code, Times: 1,
			Message: "5.1.1 <jane.doe@example.com>: Recipient address rejected"})
		err := m.Send(context.Background(), simpleMsg(t, "jane.doe@example.com"))
		if err == nil || strings.Contains(err.Error(), "jane.doe") || !strings.Contains(err.Error(), "<j***@example.com>: Recipient address rejected") {
			t.Errorf("%d: got %v, want the reply with the address as j***@example.com", code, err)
		}
	}
}

func TestPermanentRecipient(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1})
	sink.RejectRecipients(550, "gone@example.com")

	if err := m.Send(context.Background(), simpleMsg(t, "ok@example.com")); err != nil {
		t.Fatal(err)
	}
	err := m.Send(context.Background(), simpleMsg(t, "gone@example.com"))
	var pe *notifier.PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a PermanentError", err)
	}
	if !slices.Equal(pe.Recipients, []string{"gone@example.com"}) || pe.Code != 550 || notifier.IsTemporary(err) {
		t.Errorf("PermanentError = %+v, temporary = %v", pe, notifier.IsTemporary(err))
	}
	// The text is logged: the address is redacted, in the list and in the
	// server's reply alike.
	if got := err.Error(); strings.Contains(got, "gone@") || !strings.Contains(got, "rejected for g***@example.com") {
		t.Errorf("error text: got %q, want the recipient as g***@example.com only", got)
	}

	// Several recipients, one refused: nobody gets it, the refused one is named.
	msg := simpleMsg(t, "ok@example.com")
	if err := msg.AddTo("gone@example.com"); err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), msg)
	if !errors.As(err, &pe) || !slices.Equal(pe.Recipients, []string{"gone@example.com"}) {
		t.Fatalf("err = %v, want a PermanentError naming gone@example.com", err)
	}

	if err := m.Send(context.Background(), simpleMsg(t, "ok@example.com")); err != nil {
		t.Fatalf("send after a bounce: %v", err)
	}
	if got := len(sink.To("ok@example.com")); got != 2 {
		t.Errorf("ok@ got %d messages, want 2", got)
	}
	if st := sink.Stats(); st.Connections != 1 {
		t.Errorf("a bounce cost a connection: %d connections, want 1", st.Connections)
	}
}

func TestConnectionResetIsTemporary(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1})

	sink.ResetNext(smtpsink.StageRcpt, 1)
	err := m.Send(context.Background(), simpleMsg(t, "a@example.com"))
	var te *notifier.TemporaryError
	if !errors.As(err, &te) || te.MaybeDelivered {
		t.Fatalf("reset before DATA: err = %v, want temporary, not maybe-delivered", err)
	}

	sink.ResetNext(smtpsink.StageData, 1)
	err = m.Send(context.Background(), simpleMsg(t, "a@example.com"))
	if !errors.As(err, &te) || !te.MaybeDelivered || te.Stage != "data-end" {
		t.Fatalf("reset after the final dot: err = %v, want temporary and maybe-delivered", err)
	}
	if got := len(sink.Unacknowledged()); got != 1 {
		t.Errorf("sink kept %d unacknowledged messages, want 1", got)
	}

	if err := m.Send(context.Background(), simpleMsg(t, "a@example.com")); err != nil {
		t.Fatalf("send after resets: %v", err)
	}
	if got := len(sink.To("a@example.com")); got != 1 {
		t.Errorf("acknowledged %d, want 1", got)
	}
}

func TestStalePooledConnectionRetried(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1})
	if err := m.Send(context.Background(), simpleMsg(t, "a@example.com")); err != nil {
		t.Fatal(err)
	}
	// The pooled connection dies on its next MAIL: Send redials once.
	sink.ResetNext(smtpsink.StageMail, 1)
	if err := m.Send(context.Background(), simpleMsg(t, "b@example.com")); err != nil {
		t.Fatalf("send over a stale connection: %v", err)
	}
	if st := sink.Stats(); st.Connections != 2 || st.Messages != 2 {
		t.Errorf("stats = %+v, want 2 connections and 2 messages", st)
	}
	// Idle too long (by the mailer's clock): replaced without a failed
	// attempt.
	clk := clock.NewFake(time.Now())
	m2 := mustMailer(t, sink, notifier.MailerConfig{Pool: 1, IdleTimeout: time.Minute, Clock: clk})
	for i, idle := range []time.Duration{0, time.Minute, time.Minute + time.Millisecond} {
		clk.Advance(idle)
		if err := m2.Send(context.Background(), simpleMsg(t, "c@example.com")); err != nil {
			t.Fatal(err)
		}
		want := int64(1) // reused while idle for no more than IdleTimeout
		if idle > time.Minute {
			want = 2
		}
		if got := m2.Stats().Dials; got != want {
			t.Errorf("send %d, after %v idle: %d dials, want %d", i, idle, got, want)
		}
	}
}

func TestStallLongerThanTimeout(t *testing.T) {
	for _, stage := range []smtpsink.Stage{smtpsink.StageMail, smtpsink.StageData} {
		t.Run(stage.String(), func(t *testing.T) {
			sink := mustSink(t)
			m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1, Timeout: 200 * time.Millisecond})
			// Were the timeout not applied, the send would succeed once
			// the stall is over, not fail with a timeout.
			sink.StallNext(stage, 3*time.Second, 1)
			err := m.Send(context.Background(), simpleMsg(t, "slow@example.com"))
			if !notifier.IsTemporary(err) {
				t.Fatalf("err = %v, want temporary", err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v, want a timeout inside", err)
			}
			var te *notifier.TemporaryError
			if errors.As(err, &te) && te.MaybeDelivered != (stage == smtpsink.StageData) {
				t.Errorf("MaybeDelivered = %v at %v", te.MaybeDelivered, stage)
			}
			if err := m.Send(context.Background(), simpleMsg(t, "fast@example.com")); err != nil {
				t.Fatalf("send after the stall: %v", err)
			}
		})
	}
}

func TestContextCancelsSend(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{Pool: 1, Timeout: 10 * time.Second})
	sink.StallNext(smtpsink.StageRcpt, 5*time.Second, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := m.Send(ctx, simpleMsg(t, "a@example.com"))
	if !notifier.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want temporary with context.DeadlineExceeded", err)
	}
	// The context's end cut the stalled RCPT short: a send that waited
	// for the stall to end would fail later, at DATA, without a timed-out
	// read.
	var te *notifier.TemporaryError
	if !errors.As(err, &te) || te.Stage != "rcpt" || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err = %v, want the stalled RCPT cut short by the deadline", err)
	}
}

func TestRefusedConnectionIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	m, err := notifier.NewMailer(notifier.MailerConfig{Host: "127.0.0.1", Port: port, TLS: "none", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Send(context.Background(), simpleMsg(t, "a@example.com"))
	var te *notifier.TemporaryError
	if !errors.As(err, &te) || te.Stage != "connect" {
		t.Fatalf("err = %v, want a temporary connect failure", err)
	}
}

func TestMailerConfigAndClose(t *testing.T) {
	if _, err := notifier.NewMailer(notifier.MailerConfig{Host: "x", TLS: "ssl"}); err == nil {
		t.Error("bad TLS mode accepted")
	}
	if _, err := notifier.NewMailer(notifier.MailerConfig{}); err == nil {
		t.Error("missing host accepted")
	}
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	if err := m.Send(context.Background(), simpleMsg(t, "a@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Send(context.Background(), simpleMsg(t, "a@example.com")); !errors.Is(err, notifier.ErrMailerClosed) {
		t.Errorf("send after Close: %v", err)
	}
}

func TestAuth(t *testing.T) {
	sink, err := smtpsink.New(smtpsink.Options{Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	m := mustMailer(t, sink, notifier.MailerConfig{Username: "u", Password: "p"})
	if err := m.Send(context.Background(), simpleMsg(t, "a@example.com")); err != nil {
		t.Fatalf("send with auth: %v", err)
	}
	bad := mustMailer(t, sink, notifier.MailerConfig{Username: "u", Password: "wrong"})
	err = bad.Send(context.Background(), simpleMsg(t, "a@example.com"))
	var pe *notifier.PermanentError
	if err == nil || notifier.IsTemporary(err) || errors.As(err, &pe) {
		t.Errorf("bad password: err = %v, want a configuration error", err)
	}
}

func TestDKIMSignature(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{DKIM: notifier.DKIMConfig{Domain: "jobalert.test", Selector: "s1", PrivateKeyPEM: keyPEM}})
	msg, err := mustRenderer(t, "https://jobalert.test").Digest(sampleDigest("dkim@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	e := sink.To("dkim@example.com")[0]
	sig := e.Header.Get("Dkim-Signature")
	if sig == "" {
		t.Fatalf("no DKIM-Signature header:\n%s", e.Raw)
	}
	tags := dkimTags(sig)
	if tags["d"] != "jobalert.test" || tags["s"] != "s1" || tags["a"] != "ed25519-sha256" {
		t.Errorf("DKIM tags = %v", tags)
	}
	signed := strings.Split(strings.ToLower(tags["h"]), ":")
	for _, h := range []string{"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} {
		if !slices.Contains(signed, h) {
			t.Errorf("DKIM h= %q lacks %s", tags["h"], h)
		}
	}
	if err := verifyDKIMEd25519(e.Raw, pub); err != nil {
		t.Errorf("DKIM signature does not verify: %v", err)
	}
	tampered := strings.Replace(string(e.Raw), "List-Unsubscribe: <https://", "List-Unsubscribe: <http://", 1)
	if err := verifyDKIMEd25519([]byte(tampered), pub); err == nil {
		t.Errorf("DKIM signature verifies with a changed List-Unsubscribe")
	}

	if _, err := notifier.NewMailer(notifier.MailerConfig{Host: "x", DKIM: notifier.DKIMConfig{Domain: "d", Selector: "s", PrivateKeyPEM: "junk"}}); err == nil {
		t.Error("bad DKIM key accepted")
	}
}

func dkimTags(v string) map[string]string {
	tags := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		if ok {
			tags[strings.TrimSpace(k)] = strings.Join(strings.Fields(val), "")
		}
	}
	return tags
}

var wsp = regexp.MustCompile(`[ \t]+`)

// verifyDKIMEd25519 checks an ed25519-sha256 relaxed/relaxed signature
// (RFC 6376 §3.4.2, §3.4.4; RFC 8463).
func verifyDKIMEd25519(raw []byte, pub ed25519.PublicKey) error {
	s := string(raw)
	i := strings.Index(s, "\r\n\r\n")
	if i < 0 {
		return errors.New("no header/body split")
	}
	head, body := s[:i+2], s[i+4:]

	// Body: relaxed.
	lines := strings.Split(body, "\r\n")
	for j, l := range lines {
		lines[j] = strings.TrimRight(wsp.ReplaceAllString(l, " "), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	cb := ""
	if len(lines) > 0 {
		cb = strings.Join(lines, "\r\n") + "\r\n"
	}
	bh := sha256.Sum256([]byte(cb))

	// Header fields, unfolded.
	var fields []string
	for _, l := range strings.SplitAfter(head, "\r\n") {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += l
		} else {
			fields = append(fields, l)
		}
	}
	relaxed := func(f string) string {
		name, val, _ := strings.Cut(f, ":")
		val = strings.ReplaceAll(val, "\r\n", "")
		val = strings.TrimSpace(wsp.ReplaceAllString(val, " "))
		return strings.ToLower(strings.TrimSpace(name)) + ":" + val
	}
	var sigField string
	for _, f := range fields {
		if strings.HasPrefix(strings.ToLower(f), "dkim-signature:") {
			sigField = f
		}
	}
	_, sigVal, _ := strings.Cut(sigField, ":")
	tags := dkimTags(sigVal)
	if tags["bh"] != base64.StdEncoding.EncodeToString(bh[:]) {
		return fmt.Errorf("body hash %s, computed %s", tags["bh"], base64.StdEncoding.EncodeToString(bh[:]))
	}
	used := make([]bool, len(fields))
	var in strings.Builder
	for _, h := range strings.Split(tags["h"], ":") {
		for j := len(fields) - 1; j >= 0; j-- {
			name, _, _ := strings.Cut(fields[j], ":")
			if !used[j] && strings.EqualFold(strings.TrimSpace(name), h) {
				used[j] = true
				in.WriteString(relaxed(fields[j]) + "\r\n")
				break
			}
		}
	}
	noB := regexp.MustCompile(`b=[^;]*$`).ReplaceAllString(strings.TrimRight(sigField, "\r\n"), "b=")
	in.WriteString(relaxed(noB))
	sig, err := base64.StdEncoding.DecodeString(tags["b"])
	if err != nil {
		return err
	}
	hash := sha256.Sum256([]byte(in.String()))
	if !ed25519.Verify(pub, hash[:], sig) {
		return errors.New("bad signature")
	}
	return nil
}
