package api_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
)

const board = "https://board.example"

func withBoard() envOption {
	return func(c *api.Config, _ *api.Deps) { c.AllowedOrigins = []string{board} }
}

// The subscribe page is filled in from a search URL, every filter field,
// and shows that search's preview; values it cannot use are named.
func TestSubscribePagePrefilledFromSearch(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := preview.New()
	r.Put(&matcher.Job{ID: "1", Title: "Backend Engineer", Company: "Acme", Locations: []string{"Seattle, WA"},
		PostedAt: now.Add(-48 * time.Hour), Salary: &matcher.Salary{Max: 180000}}, now)
	e := newEnv(t, withPreview(r, now))
	q := "/?keywords=backend+engineer&visa=H-1B&visa=tn&visa=H-2A&location=Seattle,+WA&remote=1&min_salary=150000&frequency=weekly" +
		"&include_unknown_visa=1&seniority=senior,mid&tags=go,k8s&company=Acme&exclude_keywords=staff&exclude_company=Initech" +
		"&send_hour=7&weekly_day=friday&timezone=America/Chicago&email=ada@example.com"
	res := e.do("GET", q, "")
	if res.status != 200 {
		t.Fatalf("GET %s: got %d", q, res.status)
	}
	for _, want := range []string{
		`id="keywords" name="keywords" type="text" value="backend engineer"`,
		`value="H-1B" checked`, `value="TN" checked`,
		`name="include_unknown_visa" value="1" checked`,
		`placeholder="Seattle, WA&#10;Austin, TX">Seattle, WA</textarea>`,
		`name="remote" value="1" checked`,
		`id="min_salary" name="min_salary" type="text" inputmode="numeric" value="150000"`,
		`value="weekly" checked`, `value="senior" checked`, `value="mid" checked`,
		`>go` + "\n" + `k8s</textarea>`, `>Acme</textarea>`, `>staff</textarea>`, `>Initech</textarea>`,
		`<option value="7" selected>`, `<option value="friday" selected>`, `value="America/Chicago"`,
		`value="ada@example.com"`,
		`Left out of your search: visa &#34;H-2A&#34;.`,
		`<strong>0 jobs last week</strong>, 0 in the last 30 days.`,
		`<button type="submit" name="action" value="preview" formnovalidate>Preview</button>`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page: want %q in it", want)
		}
	}
	res2 := e.do("GET", "/?q=backend&location=WA&visa=h1b&include_unknown_visa=1", "")
	for _, want := range []string{
		`<strong>1 job last week</strong>, 1 in the last 30 days.`,
		`<span class="job">Backend Engineer</span> · Acme <span class="hint">2 days ago · sponsorship not stated</span>`,
	} {
		if !strings.Contains(res2.body, want) {
			t.Errorf("page with a preview: want %q in it", want)
		}
	}
	if !strings.Contains(res.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || res.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /: got CSP %q, XFO %q want no framing", res.header.Get("Content-Security-Policy"), res.header.Get("X-Frame-Options"))
	}

	// The Preview button works without JavaScript and creates nothing.
	form := url.Values{"email": {"ada@example.com"}, "keywords": {"backend"}, "locations": {"WA"}, "send_hour": {"8"}, "action": {"preview"}}
	res = e.postForm("/", form, "Origin", e.url)
	if res.status != 200 || !strings.Contains(res.body, "1 job last week") || strings.Contains(res.body, "Check your inbox") {
		t.Errorf("Preview button: got %d, want the form with its preview", res.status)
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Errorf("Preview button: got %d emails want none", n)
	}
	form.Set("min_salary", "lots")
	res = e.postForm("/", form, "Origin", e.url)
	if !strings.Contains(res.body, "Must be a whole number of US dollars a year") {
		t.Errorf("Preview with a bad salary: want the field's error")
	}
}

// /embed may be framed by the allowed origins only; nothing else may be
// framed; it is the same form, posting to /embed, and /embed.js is served.
func TestEmbed(t *testing.T) {
	e := newEnv(t, withBoard())
	res := e.do("GET", "/embed?keywords=go&parent="+url.QueryEscape(board), "")
	if res.status != 200 {
		t.Fatalf("GET /embed: got %d", res.status)
	}
	csp := res.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'self' "+board) || res.header.Get("X-Frame-Options") != "" {
		t.Errorf("GET /embed: got CSP %q, XFO %q want frame-ancestors 'self' %s and no XFO", csp, res.header.Get("X-Frame-Options"), board)
	}
	for _, want := range []string{`class="embed" data-parent-origin="` + board + `"`, `action="/embed"`, `name="parent" value="` + board + `"`, `value="go"`, `/static/frame.js`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("GET /embed: want %q in the page", want)
		}
	}
	if strings.Contains(res.body, `class="top"`) {
		t.Error("GET /embed: want no page chrome")
	}
	// A parent that is not allowed gets no height messages.
	res = e.do("GET", "/embed?parent="+url.QueryEscape("https://evil.example"), "")
	if strings.Contains(res.body, "data-parent-origin") || strings.Contains(res.body, "evil.example") {
		t.Error("GET /embed with a foreign parent: want it ignored")
	}
	for _, p := range []string{"/v1/manage", "/static/style.css", "/embed.js"} {
		if res := e.do("GET", p, ""); !strings.Contains(res.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("GET %s: want frame-ancestors 'none'", p)
		}
	}
	res = e.do("GET", "/embed.js", "")
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/javascript") || !strings.Contains(res.body, `"/embed?"`) {
		t.Errorf("GET /embed.js: got %d %q", res.status, res.header.Get("Content-Type"))
	}
	// The embedded form posts same-origin, like the page's.
	form := url.Values{"email": {"ada@example.com"}, "keywords": {"go"}, "send_hour": {"8"}, "parent": {board}}
	res = e.postForm("/embed", form, "Origin", e.url)
	if res.status != 200 || !strings.Contains(res.body, "Check your inbox") || !strings.Contains(res.body, `class="embed"`) {
		t.Errorf("POST /embed: got %d, want the compact inbox page", res.status)
	}
}
