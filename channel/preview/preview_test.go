package preview_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/discord"
	"github.com/jobalert/jobalert/channel/preview"
	"github.com/jobalert/jobalert/channel/slack"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/matcher"
)

const screenshotDir = "../../docs/screenshots"

// sample is a digest of three real-looking jobs, as docs/channels.md shows.
func sample() channel.Message {
	posted := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	return channel.Message{
		Frequency: "daily",
		Filter:    matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}},
		Jobs: []channel.Job{
			{ID: "sbux-1042", Title: "Backend Engineer II", URL: "https://careers.example.com/sbux-1042", Company: "Starbucks",
				Locations: []string{"Seattle, WA, US"}, Workplace: "Hybrid", Salary: "$115,000–$160,000 a year",
				VisaCodes: []string{"H-1B", "TN", "O-1A"}, Seniority: "Mid", PostedAt: posted},
			{ID: "acme-7", Title: "Senior Backend Engineer, Payments & Ledger", URL: "https://careers.example.com/acme-7", Company: "ACME <Fintech>",
				Locations: []string{"Remote, US"}, Workplace: "Remote", Salary: "$150,000–$190,000 a year",
				VisaCodes: []string{"H-1B"}, Seniority: "Senior", PostedAt: posted.Add(-3 * time.Hour)},
			{ID: "zu-3", Title: "Backend-Entwickler (m/w/d) – Zürich", URL: "https://careers.example.com/zu-3", Company: "Datenwerk AG",
				Locations: []string{"Zürich, CH"}, Workplace: "On-site", Seniority: "Senior", PostedAt: posted.Add(-20 * time.Hour)},
		},
		More:           4,
		ManageURL:      "https://jobs.example.com/v1/manage?token=m",
		UnsubscribeURL: "https://jobs.example.com/v1/unsubscribe?token=u",
	}
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("screenshots skipped: Chromium not found (install the Debian package `chromium`)")
	return ""
}

// TestScreenshots renders the sample digest for each chat and saves a
// screenshot of each mock-up as docs/screenshots/channel-<name>.png.
func TestScreenshots(t *testing.T) {
	if testing.Short() {
		t.Skip("screenshots skipped in -short mode")
	}
	m := sample()
	sp, err := slack.Render(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	dp, err := discord.Render(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := telegram.Render(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{"slack": preview.Slack(sp), "discord": preview.Discord(dp), "telegram": preview.Telegram(tp)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path[1:]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(p))
	}))
	defer srv.Close()

	chromium := findChromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"slack", "discord", "telegram"} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 400), chromedp.Navigate(srv.URL+"/"+name),
			chromedp.WaitVisible(chromedp.CSS("."+name))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s screenshot: %v", name, err)
		}
		if len(buf) < 1000 {
			t.Errorf("%s screenshot is %d bytes", name, len(buf))
		}
		if err := os.WriteFile(filepath.Join(screenshotDir, "channel-"+name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRollupRendersEverywhere: the daily cap's "N more" message, which
// may list no job, renders for every chat within its limits.
func TestRollupRendersEverywhere(t *testing.T) {
	m := channel.Message{Kind: channel.CapRollup, Filter: matcher.Filter{Keywords: "backend"}, More: 12,
		ManageURL: "https://jobs.example.com/m", UnsubscribeURL: "https://jobs.example.com/u"}
	want := `12 more "backend" jobs matched after your daily limit`
	sp, err := slack.Render(m, 0)
	if err != nil || len(sp) != 1 || sp[0].Blocks[0].Text.Text != want {
		t.Errorf("slack: %v %+v", err, sp)
	}
	dp, err := discord.Render(m, 0)
	if err != nil || len(dp) != 1 || !strings.Contains(dp[0].Content, want) || len(dp[0].Embeds) != 1 {
		t.Errorf("discord: %v %+v", err, dp)
	}
	tp, err := telegram.Render(m, 0)
	if err != nil || len(tp) != 1 || !strings.Contains(tp[0], want) {
		t.Errorf("telegram: %v %q", err, tp)
	}
	if _, err := chattest.ParseTelegramHTML(tp[0]); err != nil {
		t.Errorf("telegram HTML: %v", err)
	}
}
