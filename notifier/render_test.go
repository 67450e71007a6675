package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/smtpsink"
)

func mustRenderer(tb testing.TB, publicURL string) *notifier.Renderer {
	tb.Helper()
	r, err := notifier.NewRenderer(notifier.RenderConfig{
		From:      "jobalert <alerts@jobalert.test>",
		PublicURL: publicURL,
		Now:       func() time.Time { return time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		tb.Fatalf("NewRenderer: %v", err)
	}
	return r
}

func sampleJobs() []matcher.Job {
	return []matcher.Job{
		{
			ID: "sbux-1042", Title: "Backend Engineer II", Company: "Starbucks",
			Locations: []string{"Seattle, WA, US"}, Workplace: "hybrid",
			VisaTypes: []string{"H-1B", "TN", "O-1A"},
			Salary:    &matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"},
			URL:       "https://careers.example.com/sbux-1042?ref=alert&x=1",
			PostedAt:  time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		},
		{
			ID: "acme-7", Title: "Senior Backend Engineer", Company: "Acme <Rockets>",
			Locations: []string{"Austin, TX, US", "Remote, US"}, Workplace: "remote",
			VisaTypes: []string{"H-1B"},
			Salary:    &matcher.Salary{Min: 80, Max: 95, Period: "hour"},
			URL:       "https://jobs.example.org/acme-7",
		},
		{
			ID: "init-3", Title: "Backend Engineer (Platform)", Company: "Initech",
			VisaTypes: []string{"H-1B", "GREEN-CARD"},
			URL:       "https://initech.example/jobs/3",
		},
	}
}

func sampleDigest(to string) notifier.DigestEmail {
	return notifier.DigestEmail{
		ID:             "d-42",
		SubscriptionID: "sub-7",
		To:             to,
		Frequency:      "daily",
		Filter:         matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}},
		Jobs:           sampleJobs(),
		UnsubscribeURL: "https://jobalert.test/v1/unsubscribe?token=unsub-T&x=1",
		ManageURL:      "https://jobalert.test/manage?token=manage-T",
		MoreURL:        "https://jobalert.test/manage?token=manage-T#more",
	}
}

func TestDigestArrives(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	r := mustRenderer(t, "https://jobalert.test")

	msg, err := r.Digest(sampleDigest("ana@example.com"))
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := sink.To("ana@example.com")
	if len(got) != 1 {
		t.Fatalf("got %d messages to ana, want 1", len(got))
	}
	e := got[0]
	if e.From != "alerts@jobalert.test" {
		t.Errorf("envelope from = %q", e.From)
	}
	headers := map[string]string{
		"Subject":                 `3 new "backend engineer" jobs sponsoring H-1B`,
		"Message-Id":              "<digest-d-42@jobalert.test>",
		"List-Unsubscribe":        "<https://jobalert.test/v1/unsubscribe?token=unsub-T&x=1>",
		"List-Unsubscribe-Post":   "List-Unsubscribe=One-Click",
		"X-Jobalert-Digest":       "d-42",
		"X-Jobalert-Subscription": "sub-7",
		"To":                      "<ana@example.com>",
	}
	for k, want := range headers {
		if got := e.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if e.Subject != headers["Subject"] {
		t.Errorf("decoded subject = %q", e.Subject)
	}
	if ct := e.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	for _, want := range []string{
		"Backend Engineer II - Starbucks", "Seattle, WA, US · Hybrid", "$115,000–$160,000 a year",
		"Sponsors: H-1B, TN, O-1A", "https://careers.example.com/sbux-1042?ref=alert&x=1",
		"$80–$95 an hour", "Acme <Rockets>", "Austin, TX, US; Remote, US · Remote",
		"Unsubscribe: https://jobalert.test/v1/unsubscribe?token=unsub-T&x=1",
		"Manage this alert: https://jobalert.test/manage?token=manage-T",
	} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, e.Text)
		}
	}
	if a, b := strings.Index(e.Text, "Backend Engineer II"), strings.Index(e.Text, "Backend Engineer (Platform)"); a < 0 || b < a {
		t.Errorf("jobs out of the given (newest first) order in text")
	}
	for _, want := range []string{
		`href="https://careers.example.com/sbux-1042?ref=alert&amp;x=1"`, ">Backend Engineer II</a>",
		"Acme &lt;Rockets&gt;", "$115,000–$160,000 a year",
		`href="https://jobalert.test/v1/unsubscribe?token=unsub-T&amp;x=1"`, "Manage this alert",
		`name="viewport"`,
	} {
		if !strings.Contains(e.HTML, want) {
			t.Errorf("html part lacks %q", want)
		}
	}
	if strings.Contains(e.HTML, "<Rockets>") {
		t.Errorf("html part has an unescaped company name")
	}
}

func TestDigestSubject(t *testing.T) {
	r := mustRenderer(t, "https://jobalert.test")
	tests := []struct {
		name   string
		filter matcher.Filter
		jobs   int
		more   int
		want   string
	}{
		{"one", matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"h1b"}}, 1, 0, `1 new "backend engineer" job sponsoring H-1B`},
		{"more counts", matcher.Filter{Keywords: "  Backend   Engineer "}, 2, 10, `12 new "Backend Engineer" jobs`},
		{"places", matcher.Filter{Keywords: "go", Locations: []string{"Seattle, WA", "remote"}}, 2, 0, `2 new "go" jobs in Seattle, WA or remote`},
		{"remote only", matcher.Filter{Locations: []string{"Remote"}, MinSalary: 150000}, 2, 0, `2 new jobs remote paying $150,000+`},
		{"visas", matcher.Filter{VisaTypes: []string{"H-1B", "tn", "O-1"}}, 3, 0, `3 new jobs sponsoring H-1B, TN or O-1`},
		{"seniority companies tags", matcher.Filter{Seniority: []string{"Senior", "staff"}, Companies: []string{"Starbucks"}, Tags: []string{"java"}}, 1, 0, `1 new senior or staff job at Starbucks tagged java`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sampleDigest("a@example.com")
			d.Filter, d.Jobs, d.More = tt.filter, sampleJobs()[:tt.jobs], tt.more
			msg, err := r.Digest(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.GetGenHeader("Subject"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("subject = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDigestCapAndMore(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	r := mustRenderer(t, "https://jobalert.test")
	d := sampleDigest("cap@example.com")
	d.Jobs = nil
	for i := range 30 {
		d.Jobs = append(d.Jobs, matcher.Job{ID: fmt.Sprint(i), Title: fmt.Sprintf("Backend Engineer %02d", i), Company: "Co"})
	}
	d.More = 3
	msg, err := r.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	e := sink.To("cap@example.com")[0]
	if !strings.HasPrefix(e.Subject, "33 new ") {
		t.Errorf("subject = %q, want the total 33", e.Subject)
	}
	if !strings.Contains(e.Text, "Backend Engineer 24") || strings.Contains(e.Text, "Backend Engineer 25") {
		t.Errorf("text does not list exactly the first 25 jobs")
	}
	if !strings.Contains(e.Text, "And 8 more jobs: https://jobalert.test/manage?token=manage-T#more") {
		t.Errorf("text lacks the 'and 8 more' line:\n%s", e.Text)
	}
	if !strings.Contains(e.HTML, "And 8 more jobs matched") || !strings.Contains(e.HTML, "See all 33 jobs") {
		t.Errorf("html lacks the 'and 8 more' block")
	}
}

func TestDigestErrors(t *testing.T) {
	r := mustRenderer(t, "https://jobalert.test")
	d := sampleDigest("a@example.com")
	d.Jobs = nil
	if _, err := r.Digest(d); !errors.Is(err, notifier.ErrEmptyDigest) {
		t.Errorf("empty digest: err = %v, want ErrEmptyDigest", err)
	}
	d = sampleDigest("a@example.com")
	d.UnsubscribeURL = "http://jobalert.test/v1/unsubscribe?token=T"
	if _, err := r.Digest(d); err == nil {
		t.Errorf("http unsubscribe URL with an https PublicURL: no error")
	}
	d = sampleDigest("not an address")
	if _, err := r.Digest(d); err == nil {
		t.Errorf("bad recipient: no error")
	}
	if _, err := notifier.NewRenderer(notifier.RenderConfig{From: "alerts@x.test", PublicURL: "/relative"}); err == nil {
		t.Errorf("relative PublicURL: no error")
	}
	if _, err := notifier.NewRenderer(notifier.RenderConfig{From: "nope", PublicURL: "https://x.test"}); err == nil {
		t.Errorf("bad From: no error")
	}
}

func TestDigestPlainHTTPDemo(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	r := mustRenderer(t, "http://localhost:8080")
	d := sampleDigest("demo@example.com")
	d.UnsubscribeURL = "http://localhost:8080/v1/unsubscribe?token=T"
	msg, err := r.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	e := sink.To("demo@example.com")[0]
	if got := e.Header.Get("List-Unsubscribe"); got != "<http://localhost:8080/v1/unsubscribe?token=T>" {
		t.Errorf("List-Unsubscribe = %q", got)
	}
	if got := e.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	if got := e.Header.Get("Message-Id"); got != "<digest-d-42@localhost>" {
		t.Errorf("Message-ID = %q", got)
	}
}

func TestConfirmAndWebhookDisabled(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	r := mustRenderer(t, "https://jobalert.test")
	f := matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"TN"}}
	summary := matcher.Summary(f)
	msg, err := r.Confirm(notifier.ConfirmEmail{To: "new@example.com", ConfirmURL: "https://jobalert.test/v1/confirm?token=C&a=b",
		Summary: summary, Keywords: f.Keywords})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	msg, err = r.WebhookDisabled("new@example.com", "https://hooks.example.net/jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := sink.To("new@example.com")
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2", len(got))
	}
	c, w := got[0], got[1]
	if c.Subject != "Confirm your job alert: backend engineer" {
		t.Errorf("confirm subject = %q, want %q", c.Subject, "Confirm your job alert: backend engineer")
	}
	if !strings.Contains(c.Text, `"backend engineer" jobs sponsoring TN`) {
		t.Errorf("confirm text lacks the summary:\n%s", c.Text)
	}
	if !strings.Contains(c.Text, "https://jobalert.test/v1/confirm?token=C&a=b") || !strings.Contains(c.Text, "7 days") {
		t.Errorf("confirm text lacks the link or validity:\n%s", c.Text)
	}
	if !strings.Contains(c.HTML, `href="https://jobalert.test/v1/confirm?token=C&amp;a=b"`) || !strings.Contains(c.HTML, "Confirm my alert") {
		t.Errorf("confirm html lacks the button")
	}
	if c.Header.Get("List-Unsubscribe") != "" {
		t.Errorf("confirmation email carries List-Unsubscribe")
	}
	if !strings.HasSuffix(c.MessageID, "@jobalert.test>") || c.MessageID == w.MessageID {
		t.Errorf("message ids %q, %q", c.MessageID, w.MessageID)
	}
	if !strings.Contains(w.Subject, "410") || !strings.Contains(w.Text, "https://hooks.example.net/jobs") ||
		!strings.Contains(w.HTML, "https://hooks.example.net/jobs") {
		t.Errorf("webhook notice lacks the subject or URL: %q\n%s", w.Subject, w.Text)
	}
}

// The Subject of a confirmation email carries the keywords only, capped:
// the rest of the filter is a stranger's text too.
func TestConfirmSubjectCapped(t *testing.T) {
	r := mustRenderer(t, "https://jobalert.test")
	long := strings.Repeat("engineer ", 30)
	msg, err := r.Confirm(notifier.ConfirmEmail{To: "a@example.com", ConfirmURL: "https://jobalert.test/v1/confirm?token=C",
		Summary: "anything", Keywords: long, WebhookHost: "hooks.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	raw := msg.GetGenHeader("Subject")
	subj, err := new(mime.WordDecoder).DecodeHeader(strings.Join(raw, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len([]rune(subj)) > len("Confirm your job alert: ")+60 || !strings.HasSuffix(subj, "\u2026") {
		t.Errorf("got subject %q, want the keywords capped at 60 characters", subj)
	}
	var b strings.Builder
	if _, err := msg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "hooks.example.net") {
		t.Errorf("the confirmation email does not name the webhook host")
	}
}

func TestFormatSalary(t *testing.T) {
	tests := []struct {
		s    *matcher.Salary
		want string
	}{
		{nil, ""},
		{&matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"}, "$115,000–$160,000 a year"},
		{&matcher.Salary{Min: 80, Max: 95, Period: "hour"}, "$80–$95 an hour"},
		{&matcher.Salary{Min: 90000}, "From $90,000 a year"},
		{&matcher.Salary{Max: 70000, Currency: "eur"}, "Up to €70,000 a year"},
		{&matcher.Salary{Min: 120000, Max: 120000}, "$120,000 a year"},
		{&matcher.Salary{Min: 62.5, Max: 70.25, Period: "Hour"}, "$62.50–$70.25 an hour"},
		{&matcher.Salary{Min: 9000, Max: 11000, Currency: "CHF", Period: "month"}, "CHF 9,000–CHF 11,000 a month"},
		{&matcher.Salary{Min: 1000000, Max: 1500000}, "$1,000,000–$1,500,000 a year"},
	}
	for _, tt := range tests {
		if got := notifier.FormatSalary(tt.s); got != tt.want {
			t.Errorf("FormatSalary(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// mustSink starts a sink that closes when the test ends.
func mustSink(tb testing.TB) *smtpsink.Sink {
	tb.Helper()
	s, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		tb.Fatalf("smtpsink.New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
