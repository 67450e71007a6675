package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// screenshotDir receives a screenshot of every page the browser test sees.
const screenshotDir = "../docs/screenshots"

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("browser test skipped: Chromium not found (install the Debian package `chromium`)")
	return ""
}

// shot saves a full-page PNG screenshot as docs/screenshots/<name>.png.
func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	t.Helper()
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			return chromedp.Void{}, err
		}
		t.Logf("screenshot %s (%d bytes)", name, len(buf))
		return chromedp.Void{}, os.WriteFile(filepath.Join(screenshotDir, name+".png"), buf, 0o644)
	}
}

// TestBrowserJourney drives headless Chromium through the whole journey of
// a person: a form with a mistake, the fix, the confirmation email's link,
// the manage page, and unsubscribing.
func TestBrowserJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := findChromium(t)
	e := newEnv(t)

	b := startBrowser(t, chromium, "America/Chicago")
	ctx, do, value, text := b.ctx, b.do, b.value, b.text

	// 1. The subscribe page, as on a phone.
	do("open the subscribe page",
		chromedp.EmulateViewport(412, 915),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#page-subscribe #email")),
		shot(t, "1-subscribe"),
	)
	if got := value("#timezone"); got != "America/Chicago" {
		t.Errorf("time zone field: %q, want the browser's America/Chicago (tz.js)", got)
	}

	// 2. A bad address and no filter: errors next to the fields.
	do("submit a bad form",
		chromedp.SendKeys(chromedp.CSS("#email"), "ada-at-example"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("#email-err")),
		chromedp.WaitVisible(chromedp.CSS("#filter-err")),
		shot(t, "2-subscribe-errors"),
	)
	if msg := text("#email-err"); !strings.Contains(msg, "not a valid email address") {
		t.Errorf("email error: %q", msg)
	}
	if v := value("#email"); v != "ada-at-example" {
		t.Errorf("the bad address was not kept: %q", v)
	}

	// 3. Fix it and subscribe.
	const addr = "ada@example.com"
	do("subscribe",
		chromedp.Clear(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), addr),
		chromedp.SendKeys(chromedp.CSS("#keywords"), "backend engineer"),
		chromedp.Click(chromedp.CSS(`input[name="visa_types"][value="H-1B"]`)),
		chromedp.SendKeys(chromedp.CSS("#locations"), "Seattle, WA"),
		chromedp.Click(chromedp.CSS("#remote")),
		chromedp.SendKeys(chromedp.CSS("#min_salary"), "150000"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("#page-inbox")),
		shot(t, "3-check-your-inbox"),
	)
	subs, err := e.st.SubscriptionsByEmail(context.Background(), addr)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions of %s: %v %v", addr, subs, err)
	}
	sub := subs[0]
	if sub.Status != store.StatusPending || sub.Timezone != "America/Chicago" || sub.Filter.MinSalary != 150000 {
		t.Errorf("stored: %+v", sub)
	}

	// 3b. The demo's web inbox: the email's links open their page in a new
	// tab, from the text part and from the sandboxed HTML part (the pages
	// refuse to be framed, so a link opening inside the frame would fail).
	inbox := httptest.NewServer(e.sink.InboxHandler())
	defer inbox.Close()
	msgs := e.sink.To(addr)
	do("open the email in the web inbox",
		chromedp.Navigate(fmt.Sprintf("%s/m/%d", inbox.URL, msgs[len(msgs)-1].ID)),
		chromedp.WaitVisible(chromedp.CSS("iframe")),
	)
	// opensConfirmPage clicks sel in the tab or frame of from and checks
	// that the confirm page opened in a new tab.
	opensConfirmPage := func(step string, from context.Context, sel string) {
		t.Helper()
		tab := chromedp.WaitNewTarget(from, func(i *target.Info) bool { return strings.Contains(i.URL, "/v1/confirm?token=") })
		if err := chromedp.Do(from, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		id, ok := <-tab
		if !ok {
			t.Fatalf("%s: no new tab opened", step)
		}
		tabCtx, cancelTab := chromedp.NewContext(ctx, chromedp.WithTargetID(id))
		defer cancelTab()
		if err := chromedp.Do(tabCtx, chromedp.WaitVisible(chromedp.CSS("#page-confirm #confirm"))); err != nil {
			t.Errorf("%s: the confirm page did not open in the new tab: %v", step, err)
		}
	}
	opensConfirmPage("click the text part's link", ctx, `pre a[href*="/v1/confirm"]`)
	// Chrome runs a sandboxed frame in a process of its own: attach to it.
	var frameID target.ID
	testenv.Eventually(t, 10*time.Second, func() bool {
		infos, _ := chromedp.Targets(ctx)
		for _, i := range infos {
			if i.Type == "iframe" && strings.HasSuffix(i.URL, "/html") {
				frameID = i.TargetID
			}
		}
		return frameID != ""
	}, "the HTML part's frame is not a target")
	frameCtx, cancelFrame := chromedp.NewContext(ctx, chromedp.WithTargetID(frameID))
	defer cancelFrame()
	opensConfirmPage("click the HTML part's button", frameCtx, `a[href*="/v1/confirm"]`)

	// 4. The confirmation email's link, then the button.
	link := e.confirmURL(addr)
	do("confirm",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#page-confirm #confirm")),
		shot(t, "4-confirm"),
		chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#page-message")),
		shot(t, "5-confirmed"),
	)
	if h := text("h1"); h != "You're subscribed" {
		t.Errorf("after confirming: %q", h)
	}
	if got := e.status(sub.ID); got != store.StatusActive {
		t.Fatalf("status %s, want active", got)
	}

	// 5. The manage page (the confirmation page links to it): weekly on Fridays.
	do("manage",
		chromedp.Click(chromedp.CSS("a.button")),
		chromedp.WaitVisible(chromedp.CSS("#page-manage #save")),
		shot(t, "6-manage"),
		chromedp.Click(chromedp.CSS(`input[name="frequency"][value="weekly"]`)),
		chromedp.SetValue(chromedp.CSS("#weekly_day"), "friday"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
		shot(t, "7-manage-saved"),
	)
	got, _ := e.st.GetSubscription(context.Background(), sub.ID)
	if got.Frequency != "weekly" || got.WeeklyDay != "friday" {
		t.Errorf("after saving: frequency %q day %q, want weekly friday", got.Frequency, got.WeeklyDay)
	}

	// 6. Sign out of all links: the page's link stops working, a new one
	// arrives by email.
	before, _ := chromedp.Run(ctx, chromedp.Location())
	do("sign out of all links",
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#page-message")),
		shot(t, "8-signed-out"),
	)
	if h := text("h1"); h != "Signed out of all links" {
		t.Errorf("after signing out: %q", h)
	}
	do("the old manage link", chromedp.Navigate(before), chromedp.WaitVisible(chromedp.CSS("#page-message")))
	if h := text("h1"); h != "This link does not work" {
		t.Errorf("old manage link after signing out: %q, want it refused", h)
	}
	do("the emailed manage link",
		chromedp.Navigate(e.emailLink(addr, "/v1/manage")),
		chromedp.WaitVisible(chromedp.CSS("#page-manage #sign-out")),
	)

	// 7. Unsubscribe through the email's link and its button.
	do("unsubscribe",
		chromedp.Navigate(e.srv.Links().Unsubscribe(sub.ID)),
		chromedp.WaitVisible(chromedp.CSS("#page-unsubscribe #unsubscribe")),
		shot(t, "9-unsubscribe"),
		chromedp.Click(chromedp.CSS("#unsubscribe")),
		chromedp.WaitVisible(chromedp.CSS("#page-unsubscribed #feedback")),
		shot(t, "10-unsubscribed"),
	)
	if got := e.status(sub.ID); got != store.StatusUnsubscribed {
		t.Errorf("status %s, want unsubscribed", got)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if u, err := url.Parse(loc); err != nil || u.Path != "/v1/unsubscribe" {
		t.Errorf("ended at %s", loc)
	}

	// 8. The optional question: "too many emails", and weekly instead.
	do("weekly instead",
		chromedp.Click(chromedp.CSS(`input[name=reason][value=too_many]`)),
		chromedp.Click(chromedp.CSS("#switch-weekly")),
		chromedp.WaitVisible(chromedp.CSS("#page-message")),
		shot(t, "11-weekly-instead"),
	)
	got, _ = e.st.GetSubscription(context.Background(), sub.ID)
	if got.Status != store.StatusActive || got.Frequency != "weekly" {
		t.Errorf("after weekly instead: status %s frequency %s, want active weekly", got.Status, got.Frequency)
	}
}
