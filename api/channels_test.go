package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/feed"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// The chat URLs the tests use: their tokens must never come back whole.
const (
	slackURL     = "https://hooks.slack.com/services/T0001/B0002/SECRETslackTOKENabcd"
	slackToken   = "SECRETslackTOKEN"
	discordURL   = "https://discord.com/api/webhooks/1234567890/SECRETdiscordTOKENwxyz"
	discordToken = "SECRETdiscordTOKEN"
)

// fakeTelegram issues numbered start links.
type fakeTelegram struct {
	mu   sync.Mutex
	subs []string
}

func (f *fakeTelegram) StartLink(_ context.Context, subID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, subID)
	return fmt.Sprintf("https://t.me/jobalert_test_bot?start=tok%d", len(f.subs)), nil
}

// feeds is a real feed store on the test Redis, under a prefix of its own.
type feeds struct {
	*feed.Store
	rdb    redis.UniversalClient
	prefix string
}

// withChannels gives the server a real feed store and handler on the
// test Redis and a fake Telegram.
func withChannels(t testing.TB, tg *fakeTelegram, fs **feeds) envOption {
	rdb, prefix := testenv.Redis(t)
	t.Cleanup(func() { cleanPrefix(rdb, prefix) })
	f := &feeds{Store: feed.NewStore(rdb, feed.Keys{Prefix: prefix}, 0, nil), rdb: rdb, prefix: prefix}
	if fs != nil {
		*fs = f
	}
	return func(c *api.Config, d *api.Deps) {
		h, err := feed.NewHandler(f.Store, feed.HandlerConfig{PublicURL: c.PublicURL, Product: "jobalert"})
		if err != nil {
			t.Fatalf("feed handler: %v", err)
		}
		d.Feeds, d.FeedHandler, d.Telegram = f.Store, h, tg
	}
}

func allowPrivate(c *api.Config, _ *api.Deps) { c.WebhookAllowPrivate = true }

func channelBody(email string, extra map[string]any) map[string]any {
	b := goodBody(email)
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func TestChannelValidationNamesEachField(t *testing.T) {
	e := newEnv(t, withChannels(t, &fakeTelegram{}, nil))
	bare := newEnv(t) // no feeds, no Telegram
	cases := []struct {
		name  string
		env   *env
		extra map[string]any
		field string
		want  string
	}{
		{"unknown channel", e, map[string]any{"channels": []string{"email", "sms"}}, "channels", `unknown channel "sms"`},
		{"empty channels", e, map[string]any{"channels": []string{}}, "channels", "at least one channel"},
		{"channels not a list", e, map[string]any{"channels": "slack"}, "channels", "a list of channel names"},
		{"slack without URL", e, map[string]any{"channels": []string{"slack"}}, "slack_webhook_url", "is required for the slack channel"},
		{"slack URL on a wrong host", e, map[string]any{"channels": []string{"slack"}, "slack_webhook_url": "https://evil.example.com/services/T/B/x"},
			"slack_webhook_url", "hooks.slack.com"},
		{"slack URL over http", e, map[string]any{"channels": []string{"slack"}, "slack_webhook_url": "http://hooks.slack.com/services/T/B/x"},
			"slack_webhook_url", "https"},
		{"discord without URL", e, map[string]any{"channels": []string{"discord"}}, "discord_webhook_url", "is required for the discord channel"},
		{"discord URL on a wrong host", e, map[string]any{"channels": []string{"discord"}, "discord_webhook_url": "https://hooks.slack.com/api/webhooks/1/x"},
			"discord_webhook_url", "discord.com"},
		{"discord URL without its channel", e, map[string]any{"channels": []string{"email"}, "discord_webhook_url": discordURL},
			"discord_webhook_url", `add "discord" to channels`},
		{"webhook channel without URL", e, map[string]any{"channels": []string{"webhook"}}, "webhook_url", "is required for the webhook channel"},
		{"webhook URL without its channel", e, map[string]any{"channels": []string{"email"}, "webhook_url": "https://hooks.example.com/x"},
			"webhook_url", `add "webhook" to channels`},
		{"cap with daily", e, map[string]any{"max_alerts_per_day": 5}, "max_alerts_per_day", "instant alerts only"},
		{"cap too high", e, map[string]any{"frequency": "instant", "max_alerts_per_day": 5000}, "max_alerts_per_day", "from 0 (unlimited) to 1000"},
		{"cap negative", e, map[string]any{"frequency": "instant", "max_alerts_per_day": -1}, "max_alerts_per_day", "from 0 (unlimited) to 1000"},
		{"cap not a number", e, map[string]any{"frequency": "instant", "max_alerts_per_day": "five"}, "max_alerts_per_day", "a whole number"},
		{"quiet hours not a time", e, map[string]any{"frequency": "instant", "quiet_hours": map[string]string{"start": "25:00", "end": "07:00"}},
			"quiet_hours", `start "25:00"`},
		{"quiet hours without a span", e, map[string]any{"frequency": "instant", "quiet_hours": map[string]string{"start": "22:00", "end": "22:00"}},
			"quiet_hours", "need a span"},
		{"quiet hours missing end", e, map[string]any{"frequency": "instant", "quiet_hours": map[string]string{"start": "22:00"}},
			"quiet_hours", "end"},
		{"quiet hours unknown field", e, map[string]any{"frequency": "instant", "quiet_hours": map[string]string{"start": "22:00", "end": "07:00", "tz": "UTC"}},
			"quiet_hours.tz", "unknown field"},
		{"quiet hours with weekly", e, map[string]any{"frequency": "weekly", "quiet_hours": map[string]string{"start": "22:00", "end": "07:00"}},
			"quiet_hours", "instant alerts only"},
		{"feed where the server has none", bare, map[string]any{"channels": []string{"feed"}}, "channels", "feed channel is not available on this server"},
		{"telegram where the server has none", bare, map[string]any{"channels": []string{"telegram"}}, "channels", "telegram channel is not available on this server"},
		{"control character in a URL", e, map[string]any{"channels": []string{"slack"}, "slack_webhook_url": slackURL + "\u202e"},
			"slack_webhook_url", "control or invisible"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.env.postJSON("/v1/subscriptions", channelBody(fmt.Sprintf("v%d@example.com", i), c.extra))
			if r.status != http.StatusBadRequest || r.code(t) != "invalid" {
				t.Fatalf("got %d %s, want 400 invalid", r.status, r.body)
			}
			f := r.fields(t)
			if got := f[c.field]; !strings.Contains(got, c.want) {
				t.Errorf("fields[%s]: got %q, want it to contain %q (all: %v)", c.field, got, c.want, f)
			}
			if strings.Contains(r.body, slackToken) || strings.Contains(r.body, discordToken) {
				t.Errorf("the error answer carries a chat URL's token: %s", r.body)
			}
		})
	}
}

// feedURLRE finds a feed URL in a page or an answer.
var feedURLRE = regexp.MustCompile(`https?://[^\s"<>]+/v1/feeds/[A-Za-z0-9_-]+\.atom`)

func TestChannelsCreateGetFeedAndMasking(t *testing.T) {
	tg := &fakeTelegram{}
	var fs *feeds
	e := newEnv(t, withChannels(t, tg, &fs))
	ctx := context.Background()

	r := e.postJSON("/v1/subscriptions", channelBody("chats@example.com", map[string]any{
		"frequency": "instant", "channels": []string{"feed", "Slack", "discord", "telegram", "email", "slack"},
		"slack_webhook_url": slackURL, "discord_webhook_url": discordURL,
		"quiet_hours": map[string]string{"start": "22:00", "end": "07:00"}, "max_alerts_per_day": 5,
	}))
	if r.status != http.StatusCreated {
		t.Fatalf("create: got %d %s, want 201", r.status, r.body)
	}
	if strings.Contains(r.body, slackToken) || strings.Contains(r.body, discordToken) {
		t.Errorf("the 201 answer carries a chat URL's token: %s", r.body)
	}
	created := r.json(t)
	id, _ := created["id"].(string)
	if got := fmt.Sprint(created["channels"]); got != "[email slack discord telegram feed]" {
		t.Errorf("channels: got %s, want [email slack discord telegram feed] (normalised order)", got)
	}
	feedURL, _ := created["feed_url"].(string)
	if !strings.HasPrefix(feedURL, e.url+"/v1/feeds/") || !strings.HasSuffix(feedURL, ".atom") {
		t.Errorf("feed_url: got %q, want %s/v1/feeds/<token>.atom", feedURL, e.url)
	}
	if got, _ := created["telegram_link"].(string); !strings.HasPrefix(got, "https://t.me/jobalert_test_bot?start=") {
		t.Errorf("telegram_link: got %q", got)
	}
	if got := fmt.Sprint(created["quiet_hours"]); got != "map[end:07:00 start:22:00]" {
		t.Errorf("quiet_hours: got %s", got)
	}
	if got := created["max_alerts_per_day"]; got != float64(5) {
		t.Errorf("max_alerts_per_day: got %v, want 5", got)
	}

	// Unconfirmed, the feed's token expires with the subscription;
	// confirmed, it is kept.
	tokKey := feed.Keys{Prefix: fs.prefix}.Token(id)
	if ttl := fs.rdb.PTTL(ctx, tokKey).Val(); ttl <= 0 {
		t.Errorf("feed token of a pending subscription: got TTL %v, want one (it would outlive an unconfirmed subscription)", ttl)
	}
	confirm := e.confirmURL("chats@example.com")
	cu, _ := url.Parse(confirm)
	if c := e.postJSON("/v1/confirm", map[string]string{"token": cu.Query().Get("token")}); c.status != 200 {
		t.Fatalf("confirm: got %d %s", c.status, c.body)
	}
	if ttl := fs.rdb.PTTL(ctx, tokKey).Val(); ttl != -1 {
		t.Errorf("feed token after confirmation: got TTL %v, want none (-1)", ttl)
	}

	sub, err := e.st.GetSubscription(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if sub.SlackURL != slackURL || sub.DiscordURL != discordURL || sub.MaxAlertsPerDay != 5 || sub.QuietHours == nil ||
		sub.QuietHours.Start != "22:00" || strings.Join(sub.Channels, ",") != "email,slack,discord,telegram,feed" {
		t.Errorf("stored: %+v", sub)
	}

	// The admin GET: masked URLs, the links, the settings.
	g := e.do("GET", "/v1/subscriptions/"+id, "", "Authorization", "Bearer "+adminToken)
	if g.status != 200 {
		t.Fatalf("get: %d %s", g.status, g.body)
	}
	if strings.Contains(g.body, slackToken) || strings.Contains(g.body, discordToken) {
		t.Errorf("GET carries a chat URL's token: %s", g.body)
	}
	got := g.json(t)
	if got["slack_webhook_url"] != "https://hooks.slack.com/…abcd" || got["discord_webhook_url"] != "https://discord.com/…wxyz" {
		t.Errorf("masked URLs: got %v and %v, want https://hooks.slack.com/…abcd and https://discord.com/…wxyz",
			got["slack_webhook_url"], got["discord_webhook_url"])
	}
	if got["feed_url"] != feedURL {
		t.Errorf("GET feed_url: got %v, want %s (the same token)", got["feed_url"], feedURL)
	}
	if l, _ := got["telegram_link"].(string); l == "" {
		t.Errorf("GET: no telegram_link while no chat is bound")
	}
	if got["max_alerts_per_day"] != float64(5) || fmt.Sprint(got["quiet_hours"]) != "map[end:07:00 start:22:00]" {
		t.Errorf("GET settings: %v %v", got["max_alerts_per_day"], got["quiet_hours"])
	}

	// The feed: Atom, ETag, 304 on If-None-Match, HEAD.
	if err := fs.Append(ctx, id, []channel.Job{{ID: "job-1", Title: "Backend Engineer", Company: "Acme", URL: "https://jobs.example.com/1",
		VisaCodes: []string{"H-1B"}, PostedAt: time.Now().Add(-time.Hour)}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	f := e.do("GET", feedURL, "")
	if f.status != 200 || !strings.HasPrefix(f.header.Get("Content-Type"), "application/atom+xml") ||
		!strings.Contains(f.body, "<feed") || !strings.Contains(f.body, "Backend Engineer") {
		t.Fatalf("feed: got %d %s %q, want 200 Atom with the job", f.status, f.header.Get("Content-Type"), f.body)
	}
	etag := f.header.Get("ETag")
	if etag == "" {
		t.Fatal("feed: no ETag")
	}
	if nm := e.do("GET", feedURL, "", "If-None-Match", etag); nm.status != http.StatusNotModified || nm.body != "" {
		t.Errorf("conditional GET: got %d %q, want 304 and no body", nm.status, nm.body)
	}
	if h := e.do("HEAD", feedURL, ""); h.status != 200 || h.header.Get("ETag") != etag {
		t.Errorf("HEAD: got %d ETag %q, want 200 %s", h.status, h.header.Get("ETag"), etag)
	}
	if bad := e.do("GET", "/v1/feeds/not-a-token-at-all-really.atom", ""); bad.status != 404 {
		t.Errorf("unknown feed token: got %d, want 404", bad.status)
	}

	// Telegram bound: connected, no link.
	if err := e.st.BindTelegram(ctx, id, 4242, time.Now()); err != nil {
		t.Fatal(err)
	}
	g = e.do("GET", "/v1/subscriptions/"+id, "", "Authorization", "Bearer "+adminToken)
	if got := g.json(t); got["telegram_link"] != nil || got["telegram_connected"] != true {
		t.Errorf("bound: telegram_link %v telegram_connected %v, want none and true", got["telegram_link"], got["telegram_connected"])
	}

	// Deleting the subscription deletes its feed.
	if d := e.do("DELETE", "/v1/subscriptions/"+id, "", "Authorization", "Bearer "+adminToken); d.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	if f := e.do("GET", feedURL, ""); f.status != 404 {
		t.Errorf("feed of a deleted subscription: got %d, want 404", f.status)
	}
	if left := testenv.KeysNaming(t, fs.rdb, fs.prefix, id); len(left) > 0 {
		t.Errorf("feed keys left after the subscription was deleted: %v", left)
	}
}

func TestChannelsDefaultAndTelegramAbsent(t *testing.T) {
	tg := &fakeTelegram{}
	e := newEnv(t, withChannels(t, tg, nil))
	r := e.postJSON("/v1/subscriptions", channelBody("plain@example.com", map[string]any{"webhook_url": "https://hooks.example.com/x"}))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	got := r.json(t)
	if fmt.Sprint(got["channels"]) != "[email webhook]" {
		t.Errorf("channels without a list but with webhook_url: got %v, want [email webhook]", got["channels"])
	}
	for _, k := range []string{"feed_url", "telegram_link", "quiet_hours", "max_alerts_per_day", "disabled_channels"} {
		if _, ok := got[k]; ok {
			t.Errorf("answer has %s without that channel or setting: %v", k, got[k])
		}
	}
	if len(tg.subs) != 0 {
		t.Errorf("a start link was issued for a subscription without Telegram")
	}
	r = e.postJSON("/v1/subscriptions", goodBody("plain2@example.com"))
	if got := r.json(t); fmt.Sprint(got["channels"]) != "[email]" {
		t.Errorf("channels of a plain sign-up: got %v, want [email]", got["channels"])
	}
}

// TestManageChannels: the manage page shows the channels masked, keeps a
// Slack URL left empty, turns a disabled channel back on with a new URL,
// rotates the feed link (the old URL dies at once) and deletes the feed
// when the channel is turned off.
func TestManageChannels(t *testing.T) {
	tg := &fakeTelegram{}
	e := newEnv(t, withChannels(t, tg, nil))
	ctx := context.Background()
	r := e.postJSON("/v1/subscriptions", channelBody("manage-ch@example.com", map[string]any{
		"frequency": "instant", "channels": []string{"slack", "feed", "telegram"}, "slack_webhook_url": slackURL,
	}))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	oldFeed, _ := r.json(t)["feed_url"].(string)
	if _, err := e.st.DisableChannel(ctx, id, store.ChannelSlack, "the Slack webhook was deleted (HTTP 404)", time.Now()); err != nil {
		t.Fatal(err)
	}

	tok, csrf, page := e.managePage(id)
	for _, want := range []string{`id="ch-slack" name="channels" value="slack" data-opts="opts-slack" checked`, "https://hooks.slack.com/…abcd",
		`id="slack-disabled"`, "Paste its webhook URL again (a new one if it was deleted) to turn it back on", `id="telegram-link" href="https://t.me/jobalert_test_bot?start=`,
		`id="feed-url"`, oldFeed, `id="rotate-feed"`, `id="ch-email" name="channels" value="email">`} {
		if !strings.Contains(page, want) {
			t.Errorf("manage page lacks %s", want)
		}
	}
	if strings.Contains(page, slackToken) {
		t.Errorf("the manage page carries the Slack token")
	}

	// Save with the Slack URL left empty: kept, still disabled; Discord
	// on with its URL; quiet hours and a cap.
	form := url.Values{"keywords": {"backend"}, "frequency": {"instant"}, "timezone": {"UTC"}, "send_hour": {"8"}, "weekly_day": {"monday"},
		"channels_form": {"1"}, "channels": {"slack", "discord", "feed", "telegram"}, "slack_webhook_url": {""}, "discord_webhook_url": {discordURL},
		"quiet_start": {"22:00"}, "quiet_end": {"07:00"}, "max_alerts_per_day": {"3"}}
	if s := e.manageAction(tok, csrf, "save", form); s.status != http.StatusSeeOther {
		t.Fatalf("save: got %d, want 303\n%s", s.status, s.body)
	}
	sub, _ := e.st.GetSubscription(ctx, id)
	if sub.SlackURL != slackURL || sub.DiscordURL != discordURL || sub.Disabled[store.ChannelSlack] == "" ||
		strings.Join(sub.Channels, ",") != "slack,discord,telegram,feed" || sub.MaxAlertsPerDay != 3 || sub.QuietHours == nil || sub.QuietHours.End != "07:00" {
		t.Errorf("after save: channels %v slack kept %v discord %v disabled %v cap %d quiet %+v", sub.Channels, sub.SlackURL == slackURL,
			sub.DiscordURL == discordURL, sub.Disabled, sub.MaxAlertsPerDay, sub.QuietHours)
	}

	// A new Slack URL turns the channel back on.
	const newSlack = "https://hooks.slack.com/services/T0001/B0003/SECRETslackTOKENnew9"
	form.Set("slack_webhook_url", newSlack)
	form.Set("discord_webhook_url", "")
	if s := e.manageAction(tok, csrf, "save", form); s.status != http.StatusSeeOther {
		t.Fatalf("save: got %d\n%s", s.status, s.body)
	}
	sub, _ = e.st.GetSubscription(ctx, id)
	if sub.SlackURL != newSlack || len(sub.Disabled) != 0 || !sub.Has(store.ChannelSlack) || sub.DiscordURL != discordURL {
		t.Errorf("after a new Slack URL: slack %v disabled %v discord kept %v", sub.SlackURL == newSlack, sub.Disabled, sub.DiscordURL == discordURL)
	}

	// A bad Discord URL on save: named, nothing saved, no token echoed.
	form.Set("discord_webhook_url", "https://evil.example.com/api/webhooks/1/"+discordToken)
	bad := e.manageAction(tok, csrf, "save", form)
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `id="discord_webhook_url-err"`) {
		t.Errorf("bad Discord URL: got %d, want 400 naming the field", bad.status)
	}
	if strings.Contains(bad.body, discordToken) || strings.Contains(bad.body, slackToken) {
		t.Errorf("the error page echoes a chat URL's token")
	}
	form.Set("discord_webhook_url", "")

	// Daily with the instant options still filled in: they are dropped.
	form.Set("frequency", "daily")
	if s := e.manageAction(tok, csrf, "save", form); s.status != http.StatusSeeOther {
		t.Fatalf("save daily: got %d\n%s", s.status, s.body)
	}
	if sub, _ = e.st.GetSubscription(ctx, id); sub.QuietHours != nil || sub.MaxAlertsPerDay != 0 {
		t.Errorf("daily kept the instant options: quiet %+v cap %d", sub.QuietHours, sub.MaxAlertsPerDay)
	}

	// New feed link: the old URL is dead at once, the new one works.
	rot := e.manageAction(tok, csrf, "rotate_feed", nil)
	if rot.status != http.StatusSeeOther || !strings.Contains(rot.header.Get("Location"), "done=feed_rotated") {
		t.Fatalf("rotate feed: got %d %s", rot.status, rot.header.Get("Location"))
	}
	if f := e.do("GET", oldFeed, ""); f.status != 404 {
		t.Errorf("old feed URL after rotation: got %d, want 404", f.status)
	}
	after := e.do("GET", rot.header.Get("Location"), "", "Accept", "text/html")
	newFeed := feedURLRE.FindString(after.body)
	if newFeed == "" || newFeed == oldFeed || !strings.Contains(after.body, "The old one has stopped working") {
		t.Fatalf("manage page after rotation: feed %q (old %q)", newFeed, oldFeed)
	}
	if f := e.do("GET", newFeed, ""); f.status != 200 {
		t.Errorf("new feed URL: got %d, want 200", f.status)
	}
	if bad := e.manageAction(tok, "forged", "rotate_feed", nil); bad.status != http.StatusForbidden {
		t.Errorf("rotate feed with a bad CSRF token: got %d, want 403", bad.status)
	}

	// The feed unticked: deleted, its URL dead.
	form.Set("channels", "slack")
	form.Add("channels", "telegram")
	if s := e.manageAction(tok, csrf, "save", form); s.status != http.StatusSeeOther {
		t.Fatalf("save without feed: %d\n%s", s.status, s.body)
	}
	if f := e.do("GET", newFeed, ""); f.status != 404 {
		t.Errorf("feed URL after the channel was turned off: got %d, want 404", f.status)
	}
	if sub, _ = e.st.GetSubscription(ctx, id); sub.DiscordURL != "" {
		t.Errorf("Discord unticked: its URL is kept")
	}
}

func TestSubscribeFormChannels(t *testing.T) {
	e := newEnv(t, withChannels(t, &fakeTelegram{}, nil))
	page := e.do("GET", "/?channels=slack,feed,pigeon", "", "Accept", "text/html")
	for _, want := range []string{`value="slack" data-opts="opts-slack" checked`, `value="feed" checked`, `channel &#34;pigeon&#34;`,
		`id="ch-email" name="channels" value="email">`, `id="quiet_start" name="quiet_start" type="time"`, `src="/static/channels.js"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("prefilled form lacks %s", want)
		}
	}
	if plain := e.do("GET", "/", "", "Accept", "text/html"); !strings.Contains(plain.body, `value="email" checked`) {
		t.Errorf("the plain form does not tick email")
	}

	form := url.Values{"email": {"form-ch@example.com"}, "keywords": {"backend"}, "frequency": {"daily"}, "timezone": {"UTC"},
		"send_hour": {"8"}, "weekly_day": {"monday"}, "channels_form": {"1"}, "channels": {"slack", "feed", "telegram"},
		"slack_webhook_url": {slackURL}, "discord_webhook_url": {"typed then unticked"}, "quiet_start": {""}, "quiet_end": {""}, "max_alerts_per_day": {""}}
	r := e.postForm("/", form)
	if r.status != 200 || !strings.Contains(r.body, `id="page-inbox"`) {
		t.Fatalf("form: got %d\n%s", r.status, r.body)
	}
	if feed := feedURLRE.FindString(r.body); feed == "" || !strings.Contains(r.body, `id="telegram-link"`) {
		t.Errorf("inbox page: feed URL %q, telegram link shown %v", feed, strings.Contains(r.body, `id="telegram-link"`))
	}
	if strings.Contains(r.body, slackToken) {
		t.Errorf("the inbox page carries the Slack token")
	}

	// No channel ticked: named.
	form.Del("channels")
	form.Set("email", "form-none@example.com")
	if r := e.postForm("/", form); r.status != 400 || !strings.Contains(r.body, `id="channels-err"`) {
		t.Errorf("no channel: got %d, want 400 with the channels error", r.status)
	}
}

func TestAdminChatDeadLetters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.active("dl@example.com", store.StatusActive)
	died := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	for i, ch := range []string{store.ChannelSlack, store.ChannelDiscord} {
		if err := e.st.AddChatDeadLetter(ctx, store.ChatDeadLetter{DigestID: fmt.Sprintf("dg%d", i), SubscriptionID: sub.ID, Channel: ch,
			Reason: "HTTP 400 invalid_payload", Attempts: 1, DiedAt: died.Add(time.Duration(i) * time.Second), Message: `{"heading":"x"}`}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	auth := []string{"Authorization", "Bearer " + adminToken}
	if r := e.do("GET", "/v1/admin/chat-dead-letters", ""); r.status != 401 {
		t.Errorf("without the admin token: got %d, want 401", r.status)
	}
	r := e.do("GET", "/v1/admin/chat-dead-letters?limit=10", "", auth...)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	list, _ := r.json(t)["dead_letters"].([]any)
	if len(list) != 2 {
		t.Fatalf("list: got %d dead letters, want 2: %s", len(list), r.body)
	}
	first, _ := list[0].(map[string]any)
	if first["id"] != "dg1-discord" || first["channel"] != "discord" || first["subscription_id"] != sub.ID || first["reason"] != "HTTP 400 invalid_payload" {
		t.Errorf("newest dead letter: got %v, want dg1-discord first", first)
	}
	if r := e.do("GET", "/v1/admin/chat-dead-letters?limit=1", "", auth...); len(r.json(t)["dead_letters"].([]any)) != 1 {
		t.Errorf("limit=1: got %s", r.body)
	}
	if r := e.do("GET", "/v1/admin/chat-dead-letters?limit=0", "", auth...); r.status != 400 || r.fields(t)["limit"] == "" {
		t.Errorf("limit=0: got %d %s, want 400 naming limit", r.status, r.body)
	}

	rp := e.do("POST", "/v1/admin/chat-dead-letters/dg0-slack/replay", "", auth...)
	if rp.status != http.StatusAccepted || rp.json(t)["state"] != "queued" {
		t.Fatalf("replay: got %d %s, want 202 queued", rp.status, rp.body)
	}
	if again := e.do("POST", "/v1/admin/chat-dead-letters/dg0-slack/replay", "", auth...); again.status != 404 {
		t.Errorf("replaying it again: got %d, want 404", again.status)
	}
	if unknown := e.do("POST", "/v1/admin/chat-dead-letters/nope/replay", "", auth...); unknown.status != 404 || unknown.code(t) != "not_found" {
		t.Errorf("unknown id: got %d %s, want 404", unknown.status, unknown.body)
	}
	r = e.do("GET", "/v1/admin/chat-dead-letters", "", auth...)
	if list, _ := r.json(t)["dead_letters"].([]any); len(list) != 1 {
		t.Errorf("after the replay: %d dead letters listed, want 1", len(list))
	}
}

var _ api.Feeds = (*feed.Store)(nil)
