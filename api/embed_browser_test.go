package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/preview"
)

// TestBrowserEmbed: a job board's page, on another origin, embeds the form
// with the one script tag, filled in from the board's search; the preview
// follows the keywords as they are typed; the subscription is created
// from inside the frame. Screenshots: the embedded form, the preview, and
// an alert email listing a job that does not say whether it sponsors.
func TestBrowserEmbed(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := findChromium(t)

	// The board listens first, so that its origin can be allowed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	boardOrigin := "http://" + ln.Addr().String()
	now := time.Now()
	recent := preview.New()
	for i, j := range []matcher.Job{
		{Title: "Backend Engineer", Company: "Acme", Locations: []string{"Seattle, WA"}, VisaTypes: []string{"H-1B"}, PostedAt: now.Add(-2 * 24 * time.Hour)},
		{Title: "Senior Backend Engineer", Company: "Globex", Locations: []string{"Seattle, WA, US"}, PostedAt: now.Add(-3 * 24 * time.Hour)},
		{Title: "Backend Engineer II", Company: "Initech", Locations: []string{"Seattle, WA"}, VisaSponsorship: "no", PostedAt: now.Add(-time.Hour)},
		{Title: "Data Engineer", Company: "Hooli", Locations: []string{"Seattle, WA"}, VisaTypes: []string{"H-1B", "TN"}, PostedAt: now.Add(-5 * time.Hour)},
		{Title: "Data Engineer", Company: "Umbrella", Locations: []string{"Seattle, WA"}, PostedAt: now.Add(-20 * 24 * time.Hour)},
	} {
		j.ID = fmt.Sprintf("job-%d", i)
		recent.Put(&j, now)
	}
	e := newEnv(t, withBoardOrigin(boardOrigin), func(_ *api.Config, d *api.Deps) { d.Preview = recent })

	const search = "keywords=backend+engineer&visa=H-1B&include_unknown_visa=1&location=Seattle,+WA&frequency=daily"
	board := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>Visa jobs board</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;margin:0;background:#fafaf9}header{background:#14532d;color:#fff;padding:14px 18px;font-weight:700}
main{max-width:44rem;margin:0 auto;padding:16px}.job{background:#fff;border:1px solid #e7e5e4;border-radius:8px;padding:10px 14px;margin:8px 0}</style></head>
<body><header>Visa Jobs Board</header><main>
<h1>Backend Engineer jobs with H-1B sponsorship in Seattle, WA</h1>
<div class="job"><b>Backend Engineer</b> · Acme · H-1B</div>
<div class="job"><b>Senior Backend Engineer</b> · Globex · sponsorship not stated</div>
<h2>Sign up to filter by visa type and get alerts for new Backend Engineer roles</h2>
<script src="%s/embed.js?%s" async></script>
</main></body></html>`, e.url, search)
	})}}
	board.Start()
	defer board.Close()

	b := startBrowser(t, chromium, "America/Chicago")
	ctx, do := b.ctx, b.do
	// frame returns the iframe's node once its document holds sel (the
	// frame is same-site, so its document is reachable from the node).
	frame := func(sel string) *chromedp.Node {
		t.Helper()
		var node *chromedp.Node
		testenv.Eventually(t, 20*time.Second, func() bool {
			nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("iframe")))
			if err != nil || len(nodes) == 0 || nodes[0].ContentDocument == nil {
				return false
			}
			qctx, qcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer qcancel()
			if chromedp.Do(qctx, chromedp.WaitReady(chromedp.CSS(sel), chromedp.FromNode(nodes[0]))) != nil {
				return false
			}
			node = nodes[0]
			return true
		}, "the embedded form's frame has no %s", sel)
		return node
	}
	in := func(n *chromedp.Node) chromedp.QueryOption { return chromedp.FromNode(n) }
	previewText := func(n *chromedp.Node) string {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#preview"), in(n)))
		return s
	}

	// 1. The board's page: the form appears, filled in from the search,
	// with its preview, and the frame takes the form's height.
	do("open the board page", chromedp.EmulateViewport(1000, 1200), chromedp.Navigate(board.URL+"/"))
	f := frame("#keywords")
	for sel, want := range map[string]string{"#keywords": "backend engineer", "#locations": "Seattle, WA"} {
		if got, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel), in(f))); got != want {
			t.Errorf("embedded %s: got %q want %q (from the search)", sel, got, want)
		}
	}
	for _, sel := range []string{`input[name=visa_types][value="H-1B"]`, "#include_unknown_visa"} {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := chromedp.Run(qctx, chromedp.Nodes(chromedp.CSS(sel+":checked"), in(f))); err != nil {
			t.Errorf("embedded %s: not checked", sel)
		}
		qcancel()
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(previewText(f), "2 jobs last week")
	}, "the search's preview: got %q", previewText(f))
	testenv.Eventually(t, 10*time.Second, func() bool {
		h, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("iframe").style.height`))
		return h != "" && h != "720px"
	}, "the frame was not sized by the form's height message")
	do("screenshot the board", shot(t, "12-embed-board"))

	// 2. The visitor changes the keywords: the preview follows, debounced.
	do("type new keywords",
		chromedp.Clear(chromedp.CSS("#keywords"), in(f)),
		chromedp.SendKeys(chromedp.CSS("#keywords"), "data engineer", in(f)),
	)
	testenv.Eventually(t, 10*time.Second, func() bool {
		p := previewText(f)
		return strings.Contains(p, "1 job last week") && strings.Contains(p, "Hooli") && !strings.Contains(p, "Acme")
	}, "the preview after new keywords: got %q", previewText(f))
	do("screenshot the preview", shot(t, "13-embed-preview"))

	// 3. Subscribe from inside the frame.
	const addr = "ada@example.com"
	do("subscribe in the frame",
		chromedp.SendKeys(chromedp.CSS("#email"), addr, in(f)),
		chromedp.Click(chromedp.CSS("button.primary"), in(f)),
	)
	frame("#page-inbox")
	subs, err := e.st.SubscriptionsByEmail(context.Background(), addr)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions of %s: %v %v", addr, subs, err)
	}
	got := subs[0].Filter
	if got.Keywords != "data engineer" || len(got.VisaTypes) != 1 || got.VisaTypes[0] != "H-1B" || !got.IncludeUnknownVisa ||
		len(got.Locations) != 1 || got.Locations[0] != "Seattle, WA" {
		t.Errorf("stored filter: got %+v want the board's search with the new keywords", got)
	}
	if len(e.sink.To(addr)) != 1 {
		t.Errorf("confirmation emails: got %d want 1", len(e.sink.To(addr)))
	}

	// 4. An alert listing a job that does not say whether it sponsors.
	renderer, err := notifier.NewRenderer(notifier.RenderConfig{From: "jobalert <alerts@example.com>", PublicURL: e.url})
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := notifier.NewMailer(notifier.MailerConfig{Host: e.sink.Host(), Port: e.sink.Port(), TLS: "none", Pool: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer mailer.Close()
	msg, err := renderer.Digest(notifier.DigestEmail{
		ID: "d-embed", To: addr, Frequency: "daily", Filter: got,
		Jobs: []matcher.Job{
			{ID: "h", Title: "Data Engineer", Company: "Hooli", Locations: []string{"Seattle, WA"}, VisaTypes: []string{"H-1B", "TN"},
				Seniority: "mid", PostedAt: now.Add(-5 * time.Hour), URL: "https://board.example/jobs/h",
				Salary: &matcher.Salary{Min: 150000, Max: 185000}},
			{ID: "u", Title: "Data Engineer", Company: "Umbrella", Locations: []string{"Seattle, WA, US"}, Seniority: "senior",
				PostedAt: now.Add(-2 * 24 * time.Hour), URL: "https://board.example/jobs/u"},
		},
		UnsubscribeURL: e.url + "/v1/unsubscribe?token=t", ManageURL: e.url + "/v1/manage?token=t",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mailer.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	sent := e.sink.To(addr)
	inbox := httptest.NewServer(e.sink.InboxHandler())
	defer inbox.Close()
	do("open the alert",
		chromedp.EmulateViewport(600, 900),
		chromedp.Navigate(fmt.Sprintf("%s/m/%d/html", inbox.URL, sent[len(sent)-1].ID)),
		chromedp.WaitVisible(chromedp.CSS("body")),
		shot(t, "14-email-unknown-sponsorship"),
	)
	if body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(body, "sponsorship not stated") || !strings.Contains(body, "Why you got this") {
		t.Errorf("the alert: want \"sponsorship not stated\" and \"Why you got this\" in it")
	}
}

func withBoardOrigin(origin string) envOption {
	return func(c *api.Config, _ *api.Deps) { c.AllowedOrigins = []string{origin} }
}
