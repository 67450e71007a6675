package channel_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/matcher"
)

func TestFromMatcher(t *testing.T) {
	posted := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	j := channel.FromMatcher(&matcher.Job{
		ID: "sbux-1042", Title: " Backend Engineer II ", Company: "Starbucks",
		Locations: []string{"Seattle, WA, US", " ", ""}, Workplace: "HYBRID",
		VisaTypes: []string{"H-1B", "h-1b", "TN", " "}, Seniority: "mid",
		URL: "https://careers.example.com/sbux-1042?a=<b>", PostedAt: posted,
	}, "$115,000–$160,000 a year")
	want := channel.Job{
		ID: "sbux-1042", Title: "Backend Engineer II", Company: "Starbucks", URL: "https://careers.example.com/sbux-1042?a=%3Cb%3E",
		Locations: []string{"Seattle, WA, US"}, Workplace: "Hybrid", Salary: "$115,000–$160,000 a year",
		VisaCodes: []string{"H-1B", "TN"}, Seniority: "Mid", PostedAt: posted,
	}
	if got, w := strings.Join(j.VisaCodes, ","), strings.Join(want.VisaCodes, ","); got != w || j.Title != want.Title ||
		j.URL != want.URL || j.Workplace != want.Workplace || j.Seniority != want.Seniority || len(j.Locations) != 1 || j.Salary != want.Salary {
		t.Errorf("got %+v, want %+v", j, want)
	}
	if j.Visas() != "H-1B, TN" || j.Where() != "Seattle, WA, US · Hybrid" || j.Posted() != "Posted Nov 26" {
		t.Errorf("Visas %q Where %q Posted %q", j.Visas(), j.Where(), j.Posted())
	}
	bare := channel.FromMatcher(&matcher.Job{ID: "x", Title: "T", Company: "C", URL: "javascript:alert(1)", Workplace: "moon"}, "")
	if bare.URL != "" || bare.Workplace != "" || !bare.SponsorshipUnknown() || bare.Visas() != channel.SponsorshipNotStated || bare.Posted() != "" {
		t.Errorf("bare job %+v", bare)
	}
}

func TestMessage(t *testing.T) {
	m := channel.Message{Filter: matcher.Filter{Keywords: "backend engineer"}, Jobs: make([]channel.Job, 30), More: 2, ManageURL: "m", UnsubscribeURL: "u"}
	l := m.Limit(25)
	if len(l.Jobs) != 25 || l.More != 7 || l.Total() != 32 {
		t.Errorf("Limit(25): %d jobs, %d more", len(l.Jobs), l.More)
	}
	if got := m.Heading(); got != `32 new "backend engineer" jobs` {
		t.Errorf("Heading %q", got)
	}
	m.Kind = channel.CapRollup
	if got := m.Heading(); !strings.HasPrefix(got, `32 more "backend engineer" jobs`) {
		t.Errorf("rollup Heading %q", got)
	}
	if m.MoreLink() != "m" {
		t.Errorf("MoreLink %q, want the manage URL", m.MoreLink())
	}
	if err := (channel.Message{ManageURL: "m", UnsubscribeURL: "u"}).Validate(); !errors.Is(err, channel.ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if err := (channel.Message{More: 1}).Validate(); err == nil {
		t.Error("a message without links validated")
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"}, {"hello world", 6, "hello…"}, {"数据平台工程师", 4, "数据平…"}, {"x", 0, ""},
	} {
		if got := channel.Truncate(c.in, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	esc := func(r rune) string { return channel.HTMLEscape(r) }
	if got := channel.EscapeTruncate("a&b<c", 100, esc); got != "a&amp;b&lt;c" {
		t.Errorf("EscapeTruncate = %q", got)
	}
	// An entity is never cut: "&amp;" does not fit in 4, so it goes whole.
	if got := channel.EscapeTruncate("ab&&&&", 6, esc); got != "ab…" {
		t.Errorf("EscapeTruncate cut = %q, want %q", got, "ab…")
	}
	long := strings.Repeat("&", 1000)
	if got := channel.EscapeTruncate(long, 300, esc); utf8.RuneCountInString(got) > 300 || strings.HasSuffix(strings.TrimSuffix(got, "…"), "&am") {
		t.Errorf("EscapeTruncate(1000 &, 300) = %d runes", utf8.RuneCountInString(got))
	}
}
