package smtpsink_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/smtpsink"
)

func mustSink(tb testing.TB) *smtpsink.Sink {
	tb.Helper()
	s, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// send delivers raw over one new plain-text connection.
func send(s *smtpsink.Sink, from string, to []string, raw string) error {
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n"))); err != nil {
		return err
	}
	return c.Quit()
}

const multipartMsg = `From: a@example.com
To: b@example.com
Subject: =?UTF-8?q?Caf=C3=A9_jobs?=
Message-ID: <m1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 =E2=80=93 a long line that is soft-=
wrapped
--inner
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: base64

PHA+Q2Fmw6k8L3A+
--inner--
--outer
Content-Type: text/plain
Content-Disposition: attachment; filename="x.txt"

attached
--outer--
`

func TestParse(t *testing.T) {
	s := mustSink(t)
	if err := send(s, "a@example.com", []string{"b@example.com", "C@example.com"}, multipartMsg); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	checks := []struct{ name, got, want string }{
		{"subject", m.Subject, "Café jobs"},
		{"message-id", m.MessageID, "<m1@example.com>"},
		{"text", m.Text, "Café – a long line that is soft-wrapped"},
		{"html", m.HTML, "<p>Café</p>"},
		{"from", m.From, "a@example.com"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if m.ParseError != nil || !m.Acked || m.ID != 1 || m.ConnID != 1 {
		t.Errorf("message = %+v", m)
	}
	if len(s.To("c@EXAMPLE.com")) != 1 || len(s.To("d@example.com")) != 0 {
		t.Errorf("To() does not match envelope recipients case-insensitively")
	}
}

func TestWaitFor(t *testing.T) {
	s := mustSink(t)
	go func() {
		for range 3 {
			_ = send(s, "a@example.com", []string{"w@example.com"}, "Subject: x\n\nbody\n")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.WaitTo(ctx, "w@example.com", 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("WaitTo: %d messages, %v", len(got), err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.WaitFor(short, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor beyond what arrived: %v", err)
	}
	if st := s.Stats(); st.Connections != 3 || st.Messages != 3 {
		t.Errorf("stats = %+v", st)
	}
	s.Reset()
	if st := s.Stats(); st.Connections != 0 || st.Messages != 0 || s.Count() != 0 {
		t.Errorf("after Reset: stats = %+v", st)
	}
}

func TestFaults(t *testing.T) {
	s := mustSink(t)
	msg := "Subject: f\n\nbody\n"
	code := func(err error) int {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se.Code
		}
		return 0
	}

	s.FailNext(smtpsink.StageMail, 421, 2)
	for range 2 {
		if err := send(s, "a@example.com", []string{"x@example.com"}, msg); code(err) != 421 {
			t.Errorf("FailNext(MAIL): err = %v, want 421", err)
		}
	}
	if err := send(s, "a@example.com", []string{"x@example.com"}, msg); err != nil {
		t.Errorf("after FailNext ran out: %v", err)
	}

	id := s.RejectRecipients(550, "bad@example.com")
	if err := send(s, "a@example.com", []string{"bad@example.com"}, msg); code(err) != 550 {
		t.Errorf("RejectRecipients: err = %v, want 550", err)
	}
	if err := send(s, "a@example.com", []string{"good@example.com"}, msg); err != nil {
		t.Errorf("other recipient: %v", err)
	}
	s.Remove(id)
	if err := send(s, "a@example.com", []string{"bad@example.com"}, msg); err != nil {
		t.Errorf("after Remove: %v", err)
	}

	s.FailUntil(smtpsink.StageData, 451, time.Now().Add(time.Hour))
	if err := send(s, "a@example.com", []string{"y@example.com"}, msg); code(err) != 451 {
		t.Errorf("FailUntil(DATA): err = %v, want 451", err)
	}
	s.ClearFaults()

	s.ResetNext(smtpsink.StageData, 1)
	if err := send(s, "a@example.com", []string{"z@example.com"}, msg); err == nil {
		t.Errorf("ResetNext(DATA): no error")
	}
	if u := s.Unacknowledged(); len(u) != 1 || u[0].Acked || u[0].Subject != "f" {
		t.Errorf("unacknowledged = %+v", u)
	}
	if len(s.To("z@example.com")) != 0 {
		t.Errorf("an unacknowledged message is listed as delivered")
	}

	s.ResetNext(smtpsink.StageRcpt, 1)
	if err := send(s, "a@example.com", []string{"r@example.com"}, msg); err == nil {
		t.Errorf("ResetNext(RCPT): no error")
	}

	s.StallNext(smtpsink.StageMail, 200*time.Millisecond, 1)
	start := time.Now()
	if err := send(s, "a@example.com", []string{"s@example.com"}, msg); err != nil {
		t.Errorf("stalled send: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("stall lasted %v", d)
	}
	if st := s.Stats(); st.Rejected != 4 || st.Unacknowledged != 1 {
		t.Errorf("stats = %+v, want 4 rejected, 1 unacknowledged", st)
	}
}

func TestFaultsConcurrent(t *testing.T) {
	s := mustSink(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				_ = send(s, "a@example.com", []string{"c@example.com"}, "Subject: c\n\nx\n")
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			id := s.FailNext(smtpsink.StageRcpt, 421, 1)
			s.Remove(id)
			_ = s.Stats()
		}
	})
	wg.Wait()
	if st := s.Stats(); st.Messages+st.Rejected != 40 {
		t.Errorf("stats = %+v, want 40 messages and rejections", st)
	}
}

func TestCloseWakesStall(t *testing.T) {
	s, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.StallNext(smtpsink.StageMail, time.Hour, 0)
	done := make(chan error, 1)
	go func() { done <- send(s, "a@example.com", []string{"b@example.com"}, "Subject: s\n\nx\n") }()
	testenv.Eventually(t, 5*time.Second, func() bool { return s.Stats().Connections == 1 }, "client did not connect")
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("send through a closed sink succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled session outlived Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestInbox(t *testing.T) {
	s := mustSink(t)
	if err := send(s, "a@example.com", []string{"b@example.com"}, multipartMsg); err != nil {
		t.Fatal(err)
	}
	if err := send(s, "a@example.com", []string{"b@example.com"}, "Subject: <second>\n\nplain only\n"); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/inbox/", http.StripPrefix("/inbox", s.InboxHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/inbox/")
	if resp.StatusCode != 200 || !strings.Contains(body, `href="m/1"`) || !strings.Contains(body, "&lt;second&gt;") {
		t.Fatalf("list page: %d\n%s", resp.StatusCode, body)
	}
	if strings.Index(body, "m/2") > strings.Index(body, "m/1") {
		t.Errorf("list is not newest first")
	}
	resp, body = get("/inbox/m/1")
	if resp.StatusCode != 200 || !strings.Contains(body, `<iframe sandbox="allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"`) || !strings.Contains(body, `src="1/html"`) ||
		!strings.Contains(body, "Café – a long line") || !strings.Contains(body, "Message-Id") {
		t.Errorf("message page: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("message page CSP = %q", csp)
	}
	resp, body = get("/inbox/m/1/html")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox allow-popups") || body != `<base target="_blank"><p>Café</p>` {
		t.Errorf("html part: CSP %q, body %q", csp, body)
	}
	resp, body = get("/inbox/m/2/raw")
	if resp.StatusCode != 200 || !strings.Contains(body, "plain only") {
		t.Errorf("raw: %d %q", resp.StatusCode, body)
	}
	if resp, _ = get("/inbox/m/99"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown message: %d", resp.StatusCode)
	}
}
