package slack_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/hook"
	"github.com/jobalert/jobalert/channel/slack"
	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/webhook"
)

// links and entities are what mrkdwn may hold besides plain text.
var (
	linkRE   = regexp.MustCompile(`<[^<>|]+\|[^<>|]*>`)
	entityRE = regexp.MustCompile(`&(amp|lt|gt);`)
)

// checkEscaped fails when a mrkdwn text has a raw &, < or > outside a
// link or an entity.
func checkEscaped(t *testing.T, where, s string) {
	t.Helper()
	rest := entityRE.ReplaceAllString(linkRE.ReplaceAllString(s, ""), "")
	if strings.ContainsAny(rest, "&<>") {
		t.Errorf("%s: unescaped &, < or > in %q", where, rest)
	}
}

func TestRenderStaysWithinSlackLimits(t *testing.T) {
	for _, c := range []struct {
		jobs, maxJobs, wantPosts, wantListed, wantMore int
	}{
		{1, 0, 1, 1, 0},
		{25, 0, 1, 25, 0},
		{200, 0, 1, 25, 175},  // the default: one post, "and 175 more"
		{200, 200, 5, 200, 0}, // everything: split into posts of 40 jobs
		{41, 100, 2, 41, 0},
	} {
		m := chattest.Digest(c.jobs)
		posts, err := slack.Render(m, c.maxJobs)
		if err != nil {
			t.Fatalf("Render(%d jobs): %v", c.jobs, err)
		}
		if len(posts) != c.wantPosts {
			t.Errorf("%d jobs, max %d: got %d posts, want %d", c.jobs, c.maxJobs, len(posts), c.wantPosts)
		}
		listed, more := 0, 0
		for i, p := range posts {
			if err := chattest.CheckSlack(chattest.SlackPayload(toFake(p))); err != nil {
				t.Errorf("%d jobs, post %d: %v", c.jobs, i, err)
			}
			for _, b := range p.Blocks {
				if b.Type == "section" && strings.HasPrefix(b.Text.Text, "*") { // a job: its title in bold
					listed++
				}
				if b.Text != nil && b.Type != "header" {
					checkEscaped(t, "section", b.Text.Text)
				}
				if b.Type == "section" && strings.HasPrefix(b.Text.Text, "…and *") {
					more++
				}
			}
		}
		if listed != c.wantListed {
			t.Errorf("%d jobs, max %d: %d job sections, want %d", c.jobs, c.maxJobs, listed, c.wantListed)
		}
		if (c.wantMore > 0) != (more == 1) {
			t.Errorf("%d jobs: %d 'and N more' lines, want one only when more (%d)", c.jobs, more, c.wantMore)
		}
		last := posts[len(posts)-1].Blocks
		ctx := last[len(last)-1]
		if ctx.Type != "context" || !strings.Contains(ctx.Elements[0].Text, "|Unsubscribe>") || !strings.Contains(ctx.Elements[0].Text, "|Manage this alert>") {
			t.Errorf("%d jobs: the last block is %+v, want the context with manage and unsubscribe links", c.jobs, ctx)
		}
	}
}

func TestRenderShowsTheJob(t *testing.T) {
	m := chattest.Digest(3)
	posts, err := slack.Render(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := posts[0].Blocks
	if got := b[0].Text.Text; got != `3 new "backend engineer" jobs sponsoring H-1B` {
		t.Errorf("header %q", got)
	}
	first := b[1].Text.Text
	for _, want := range []string{
		"*<https://careers.example.com/jobs/0?src=alert&amp;utm=&lt;x&gt;%7Cy|Senior Backend Engineer 0 — Payments &amp; &lt;Ledger&gt;",
		"ACME &amp; Sons &lt;Holdings&gt;", "Seattle, WA, US; Zürich, CH; 東京, JP", "Hybrid",
		"$115,000–$160,000 a year", "Visa: H-1B", "Senior", "Posted Dec 5",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first job section lacks %q:\n%s", want, first)
		}
	}
	if third := b[3].Text.Text; !strings.Contains(third, "_Sponsorship not stated_") {
		t.Errorf("a job without visa codes should say Sponsorship not stated:\n%s", third)
	}
	if _, err := slack.Render(channel.Message{ManageURL: "x", UnsubscribeURL: "y"}, 0); !errors.Is(err, channel.ErrEmpty) {
		t.Errorf("empty message: got %v, want ErrEmpty", err)
	}
}

func toFake(p slack.Payload) chattest.SlackPayload {
	var out chattest.SlackPayload
	out.Text = p.Text
	for _, b := range p.Blocks {
		fb := chattest.SlackBlock{Type: b.Type}
		if b.Text != nil {
			fb.Text = &chattest.SlackText{Type: b.Text.Type, Text: b.Text.Text}
		}
		for _, e := range b.Elements {
			fb.Elements = append(fb.Elements, &chattest.SlackText{Type: e.Type, Text: e.Text})
		}
		out.Blocks = append(out.Blocks, fb)
	}
	return out
}

// newSender returns a sender whose waits move a fake clock (sl.Advance
// is set to it) instead of passing.
func newSender(sl *chattest.Sleeper, allowPrivate bool) *slack.Sender {
	c := clock.NewFake(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	sl.Advance = c.Advance
	return slack.NewSender(hook.New(hook.Options{AllowPrivate: allowPrivate, Sleep: sl.Sleep, MaxWait: 10 * time.Second, Attempts: 4,
		Limits: hook.NewLimits(nil, "", c.Now)}), c.Now)
}

func TestSendDigestOf200Jobs(t *testing.T) {
	fake := chattest.NewSlack(t)
	sl := &chattest.Sleeper{}
	posts, err := slack.Render(chattest.Digest(200), 200)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := newSender(sl, true).Send(context.Background(), fake.URL, posts)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := len(fake.Received()); sent != len(posts) || got != len(posts) {
		t.Errorf("sent %d, fake accepted %d, want %d", sent, got, len(posts))
	}
}

func TestSendHonoursRetryAfter(t *testing.T) {
	fake := chattest.NewSlack(t)
	fake.RateLimit(2, "3")
	sl := &chattest.Sleeper{}
	posts, _ := slack.Render(chattest.Digest(2), 0)
	if _, err := newSender(sl, true).Send(context.Background(), fake.URL, posts); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := sl.Waited(); len(got) != 2 || got[0] != 3*time.Second || got[1] != 3*time.Second {
		t.Errorf("waited %v, want [3s 3s]", got)
	}
	if got, want := fake.Requests(), 3; got != want {
		t.Errorf("%d requests, want %d", got, want)
	}
	if len(fake.Received()) != 1 {
		t.Errorf("fake accepted %d messages, want 1", len(fake.Received()))
	}

	// A wait longer than MaxWait is the caller's: a TemporaryError saying it.
	fake.RateLimit(1, "120")
	_, err := newSender(sl, true).Send(context.Background(), fake.URL, posts)
	var temp *channel.TemporaryError
	if !errors.As(err, &temp) || temp.After != 120*time.Second {
		t.Errorf("Retry-After 120 > MaxWait: got %v, want a TemporaryError after 2m0s", err)
	}
}

func TestSendFailures(t *testing.T) {
	posts, _ := slack.Render(chattest.Digest(1), 0)
	for _, c := range []struct {
		name  string
		setup func(*chattest.Slack)
		gone  bool
		perm  bool
		retry bool
	}{
		{"deleted webhook", func(f *chattest.Slack) { f.Delete() }, true, false, false},
		{"410 archived channel", func(f *chattest.Slack) { f.Fail(1, 410, "channel_is_archived") }, true, false, false},
		{"403 invalid_token", func(f *chattest.Slack) { f.Fail(1, 403, "invalid_token") }, true, false, false},
		{"400 invalid_payload", func(f *chattest.Slack) { f.Fail(1, 400, "invalid_payload") }, false, true, false},
		{"403 action_prohibited", func(f *chattest.Slack) { f.Fail(1, 403, "action_prohibited") }, false, true, false},
		{"500", func(f *chattest.Slack) { f.Fail(1, 500, "internal error") }, false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake := chattest.NewSlack(t)
			c.setup(fake)
			sent, err := newSender(&chattest.Sleeper{}, true).Send(context.Background(), fake.URL, posts)
			var temp *channel.TemporaryError
			if sent != 0 || errors.Is(err, channel.ErrGone) != c.gone || errors.Is(err, channel.ErrPermanent) != c.perm || errors.As(err, &temp) != c.retry {
				t.Errorf("got sent=%d err=%v, want gone=%v permanent=%v temporary=%v", sent, err, c.gone, c.perm, c.retry)
			}
			if err != nil && strings.Contains(err.Error(), "abcdefghijklmnopqrstuvwx") {
				t.Errorf("the error shows the webhook's secret path: %v", err)
			}
		})
	}
}

// TestSSRFGuard: without allow-private, the client refuses to connect to
// the loopback fake, whatever URL validation let through.
func TestSSRFGuard(t *testing.T) {
	fake := chattest.NewSlack(t)
	posts, _ := slack.Render(chattest.Digest(1), 0)
	_, err := newSender(&chattest.Sleeper{}, false).Send(context.Background(), fake.URL, posts)
	if !errors.Is(err, webhook.ErrForbiddenAddress) || !errors.Is(err, channel.ErrPermanent) {
		t.Errorf("got %v, want a permanent refusal wrapping ErrForbiddenAddress", err)
	}
	if fake.Requests() != 0 {
		t.Errorf("the fake got %d requests, want 0", fake.Requests())
	}
	if err != nil && strings.Contains(err.Error(), "abcdefghijklmnopqrstuvwx") {
		t.Errorf("the error shows the webhook's secret path: %v", err)
	}
}

func TestValidateURL(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		want         string // "" is valid
	}{
		{"https://hooks.slack.com/services/T000/B000/XXXXXXXX", false, ""},
		{"https://HOOKS.slack.com:443/services/T000/B000/XXXXXXXX", false, ""},
		{"http://hooks.slack.com/services/T000/B000/XXXX", false, "scheme"},
		{"https://hooks.slack.com.evil.example/services/T/B/X", false, "hooks.slack.com"},
		{"https://evil.example/services/T/B/X", false, "hooks.slack.com"},
		{"https://hooks.slack.com/workflows/T/B/X", false, "/services/"},
		{"https://hooks.slack.com/services/T", false, "/services/"},
		{"https://hooks.slack.com:8443/services/T/B/X", false, "hooks.slack.com"},
		{"https://127.0.0.1/services/T/B/X", false, "loopback"},
		{"", false, "empty"},
		{"http://127.0.0.1:8065/hooks/abc", true, ""}, // Mattermost in tests
		{"ftp://127.0.0.1/x", true, "scheme"},
	} {
		err := slack.ValidateURL(c.url, c.allowPrivate)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: got %v, want valid", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, slack.ErrInvalidURL)):
			t.Errorf("%q: got %v, want an ErrInvalidURL mentioning %q", c.url, err, c.want)
		}
	}
}
