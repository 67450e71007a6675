package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
)

// withPreview serves previews from jobs put in r at the fixed clock now.
func withPreview(r *preview.Recent, now time.Time) envOption {
	return func(c *api.Config, d *api.Deps) {
		d.Preview = r
		c.Clock = func() time.Time { return now }
	}
}

func TestPreviewAPI(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := preview.New()
	for i, j := range []matcher.Job{
		{Title: "Backend Engineer", Company: "Acme", VisaTypes: []string{"H-1B"}, PostedAt: now.Add(-2 * 24 * time.Hour), URL: "https://acme.example/1"},
		{Title: "Backend Engineer II", Company: "Globex", PostedAt: now.Add(-10 * 24 * time.Hour)}, // sponsorship unknown
		{Title: "Backend Engineer", Company: "Initech", VisaSponsorship: "no", PostedAt: now.Add(-1 * 24 * time.Hour)},
		{Title: "Frontend Engineer", Company: "Acme", VisaTypes: []string{"H-1B"}, PostedAt: now.Add(-1 * time.Hour)},
	} {
		j.ID = string(rune('a' + i))
		r.Put(&j, now)
	}
	e := newEnv(t, withPreview(r, now))

	res := e.postJSON("/v1/preview", map[string]any{"filter": map[string]any{"keywords": "backend engineer", "visa_types": []string{"h1b"}, "include_unknown_visa": true}})
	if res.status != 200 {
		t.Fatalf("preview: got %d %s want 200", res.status, res.body)
	}
	var got preview.Result
	if err := json.Unmarshal([]byte(res.body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Last7Days != 1 || got.Last30Days != 2 || len(got.Newest) != 2 || got.Newest[0].Company != "Acme" || got.Newest[1].Sponsorship != "unknown" {
		t.Errorf("preview: got %+v want 1 last week, 2 last month, Acme then Globex (unknown)", got)
	}
	if !strings.Contains(res.body, `"posted_at":"2026-12-04T12:00:00Z"`) || !strings.Contains(res.body, `"url":"https://acme.example/1"`) {
		t.Errorf("preview body: got %s want posted_at and url of the newest", res.body)
	}

	for _, c := range []struct {
		body, field string
	}{
		{`{"filter":{"visa_types":["H-2A"]}}`, "filter.visa_types"},
		{`{"filter":{"min_salary":"lots"}}`, "filter.min_salary"},
		{`{"filter":{"exclude_keywords":["senior"]}}`, "filter"},
		{`{}`, "filter"},
		{`{"filter":{"keywords":"go"},"email":"x@example.com"}`, "email"},
	} {
		res := e.do("POST", "/v1/preview", c.body, "Content-Type", "application/json")
		if res.status != 400 {
			t.Errorf("%s: got %d want 400", c.body, res.status)
			continue
		}
		if _, ok := res.fields(t)[c.field]; !ok {
			t.Errorf("%s: got fields %v want %q named", c.body, res.fields(t), c.field)
		}
	}
	if res := e.do("POST", "/v1/preview", `{"filter":{"keywords":"`+strings.Repeat("x", 9000)+`"}}`, "Content-Type", "application/json"); res.status != 413 {
		t.Errorf("large body: got %d want 413", res.status)
	}
	if res := e.do("POST", "/v1/preview", `{"filter":{"keywords":"go"}}`, "Content-Type", "text/plain"); res.status != 415 {
		t.Errorf("text/plain: got %d want 415", res.status)
	}
	if res := e.do("POST", "/v1/preview", `{"filter":{"keywords":"go"}}`, "Content-Type", "application/json", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); res.status != 403 {
		t.Errorf("cross-site: got %d want 403", res.status)
	}
}

// blockingPreview holds every preview until release is closed, telling
// started when one has begun: a slow preview (a filter that scans every
// held job) on demand.
type blockingPreview struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingPreview) Preview(matcher.Filter, time.Time) (preview.Result, error) {
	b.started <- struct{}{}
	<-b.release
	return preview.Result{}, nil
}

// One client gets one preview at a time: a second one while the first
// runs is 429 with Retry-After, so one client cannot hold every slot.
func TestPreviewOneAtATimePerClient(t *testing.T) {
	b := &blockingPreview{started: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Preview = b })
	body := map[string]any{"filter": map[string]any{"min_salary": 1}}
	first := make(chan int, 1)
	go func() { first <- e.postJSON("/v1/preview", body).status }()
	select {
	case <-b.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first preview never started")
	}
	res := e.postJSON("/v1/preview", body)
	if res.status != 429 || res.header.Get("Retry-After") != "1" || !strings.Contains(res.body, "one preview at a time") {
		t.Errorf("a second preview while the first runs: got %d %q %s want 429, Retry-After 1", res.status, res.header.Get("Retry-After"), res.body)
	}
	close(b.release)
	if got := <-first; got != 200 {
		t.Errorf("the first preview: got %d want 200", got)
	}
	if res := e.postJSON("/v1/preview", body); res.status != 200 {
		t.Errorf("a preview after the first ended: got %d %s want 200", res.status, res.body)
	}
}
