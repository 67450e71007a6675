package notifier_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
)

// Each job says when it was posted (from the injected clock), its
// seniority, "sponsorship not stated" when it does not say, and why it
// matched, clause by clause.
func TestDigestSaysWhenWhatAndWhy(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	r := mustRenderer(t, "https://jobalert.test") // now: 2026-11-27 08:00 UTC
	d := sampleDigest("ana@example.com")
	d.Filter = matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}, IncludeUnknownVisa: true,
		Locations: []string{"Seattle, WA"}, Seniority: []string{"senior", "mid"}}
	d.Jobs = []matcher.Job{
		{ID: "a", Title: "Senior Backend Engineer", Company: "Acme", Locations: []string{"Seattle, WA, US"}, Seniority: "Senior",
			PostedAt: time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC), URL: "https://acme.example/a"},
		{ID: "b", Title: "Backend Engineer", Company: "Globex", Locations: []string{"Seattle, WA"}, Seniority: "mid",
			VisaTypes: []string{"H-1B"}, PostedAt: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)},
	}
	msg, err := r.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	e := sink.To("ana@example.com")[0]
	text := strings.ReplaceAll(e.Text, "\r\n", "\n")
	for _, want := range []string{
		"Seniority: senior",
		"sponsorship not stated\n",
		"posted 2 days ago (Nov 25)",
		`Why you got this: title has "backend engineer"; sponsorship not stated (you asked for those too); in Seattle, WA; senior level`,
		"posted today (Nov 27)",
		`Why you got this: title has "backend engineer"; sponsors H-1B; in Seattle, WA; mid level`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{">sponsorship not stated</span>", "posted 2 days ago (Nov 25)", "Why you got this: title has &#34;backend engineer&#34; · sponsors H-1B"} {
		if !strings.Contains(e.HTML, want) {
			t.Errorf("html part lacks %q", want)
		}
	}
	if n := strings.Count(text, "sponsorship not stated\n"); n != 1 {
		t.Errorf("text: got %d jobs labelled sponsorship not stated want 1", n)
	}
}
