package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/jobalert/jobalert/store"
)

// TestBrowserChannels: on the form, Slack and the feed are picked (the
// Slack URL input appears with its box), the "check your inbox" page
// shows the feed URL; on the manage page Discord is turned on with its URL
// and quiet hours are set, and the saved page shows them kept, the Slack
// URL masked. Screenshots 15 and 16.
func TestBrowserChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := findChromium(t)
	e := newEnv(t, allowPrivate, withChannels(t, &fakeTelegram{}, nil))
	// With JOBALERT_WEBHOOK_ALLOW_PRIVATE any http(s) host is accepted,
	// as for a self-hosted Slack-compatible chat; nothing is posted here.
	const (
		slackHook   = "http://127.0.0.1:9/services/T0001/B0002/SECRETslackTOKENabcd"
		discordHook = "http://127.0.0.1:9/api/webhooks/1234/SECRETdiscordTOKENwxyz"
	)

	b := startBrowser(t, chromium, "Europe/London")
	ctx, do, text, value := b.ctx, b.do, b.text, b.value
	checked := func(sel string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+"`"+sel+"`"+`).checked`))
		if err != nil {
			t.Fatalf("checked of %s: %v", sel, err)
		}
		return v
	}
	pageHTML := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		if err != nil {
			t.Fatalf("page HTML: %v", err)
		}
		return v
	}

	// 1. The form: the Slack URL input is hidden until its box is ticked,
	// the instant options until "As they appear" is chosen.
	const addr = "grace@example.com"
	do("open the subscribe page",
		chromedp.EmulateViewport(412, 915),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#page-subscribe #ch-slack")),
		chromedp.WaitNotVisible(chromedp.CSS("#slack_webhook_url")),
		chromedp.WaitNotVisible(chromedp.CSS("#quiet_start")),
	)
	if !checked("#ch-email") {
		t.Errorf("email is not ticked by default")
	}
	do("pick Slack and the feed",
		chromedp.SendKeys(chromedp.CSS("#email"), addr),
		chromedp.SendKeys(chromedp.CSS("#keywords"), "backend engineer"),
		chromedp.Click(chromedp.CSS(`input[name="visa_types"][value="H-1B"]`)),
		chromedp.Click(chromedp.CSS("#ch-slack")),
		chromedp.WaitVisible(chromedp.CSS("#slack_webhook_url")),
		chromedp.SendKeys(chromedp.CSS("#slack_webhook_url"), slackHook),
		chromedp.Click(chromedp.CSS("#ch-feed")),
		chromedp.Click(chromedp.CSS(`input[name="frequency"][value="instant"]`)),
		chromedp.WaitVisible(chromedp.CSS("#quiet_start")),
		chromedp.ScrollIntoView(chromedp.CSS("#channels")),
		shot(t, "15-subscribe-channels"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("#page-inbox #feed-url")),
	)
	if feed := text("#feed-url"); !strings.HasPrefix(feed, e.url+"/v1/feeds/") || !strings.HasSuffix(feed, ".atom") {
		t.Errorf("feed URL on the inbox page: %q", feed)
	}
	subs, err := e.st.SubscriptionsByEmail(context.Background(), addr)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions of %s: %v %v", addr, subs, err)
	}
	sub := subs[0]
	if strings.Join(sub.Channels, ",") != "email,slack,feed" || sub.SlackURL != slackHook || sub.Frequency != "instant" {
		t.Errorf("stored: channels %v, slack URL kept %v, frequency %s", sub.Channels, sub.SlackURL == slackHook, sub.Frequency)
	}

	// 2. The manage page: Discord on with its URL, quiet hours 22:00-07:00.
	do("manage: turn Discord on and set quiet hours",
		chromedp.Navigate(e.manageLink(sub.ID)),
		chromedp.WaitVisible(chromedp.CSS("#page-manage #save")),
		chromedp.WaitNotVisible(chromedp.CSS("#discord_webhook_url")),
		chromedp.Click(chromedp.CSS("#ch-discord")),
		chromedp.WaitVisible(chromedp.CSS("#discord_webhook_url")),
		chromedp.SendKeys(chromedp.CSS("#discord_webhook_url"), discordHook),
		chromedp.SetValue(chromedp.CSS("#quiet_start"), "22:00"),
		chromedp.SetValue(chromedp.CSS("#quiet_end"), "07:00"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
		chromedp.ScrollIntoView(chromedp.CSS("#channels")),
		shot(t, "16-manage-channels"),
	)
	if !checked("#ch-discord") || !checked("#ch-slack") || !checked("#ch-feed") {
		t.Errorf("after saving: discord %v slack %v feed %v, want all ticked", checked("#ch-discord"), checked("#ch-slack"), checked("#ch-feed"))
	}
	if s, e := value("#quiet_start"), value("#quiet_end"); s != "22:00" || e != "07:00" {
		t.Errorf("quiet hours after saving: %s-%s, want 22:00-07:00", s, e)
	}
	html := pageHTML()
	if strings.Contains(html, "SECRETslackTOKEN") || strings.Contains(html, "SECRETdiscordTOKEN") {
		t.Errorf("the manage page carries a chat URL's token")
	}
	if !strings.Contains(html, "http://127.0.0.1:9/…abcd") || !strings.Contains(html, "http://127.0.0.1:9/…wxyz") {
		t.Errorf("the manage page does not show the masked Slack and Discord URLs")
	}
	got, _ := e.st.GetSubscription(context.Background(), sub.ID)
	if !got.Has(store.ChannelDiscord) || got.DiscordURL != discordHook || got.SlackURL != slackHook ||
		got.QuietHours == nil || got.QuietHours.Start != "22:00" || got.QuietHours.End != "07:00" {
		t.Errorf("stored after saving: channels %v discord %v slack kept %v quiet %+v", got.Channels, got.DiscordURL == discordHook,
			got.SlackURL == slackHook, got.QuietHours)
	}
}
