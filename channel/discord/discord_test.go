package discord_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/discord"
	"github.com/jobalert/jobalert/channel/hook"
	"github.com/jobalert/jobalert/internal/clock"
)

// toFake decodes a payload as the fake server does.
func toFake(t *testing.T, p discord.Payload) chattest.DiscordPayload {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out chattest.DiscordPayload
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenderStaysWithinDiscordLimits(t *testing.T) {
	for _, c := range []struct{ jobs, maxJobs, wantListed, wantMore int }{
		{1, 0, 1, 0}, {25, 0, 25, 0}, {200, 0, 25, 175}, {200, 200, 200, 0},
	} {
		msgs, err := discord.Render(chattest.Digest(c.jobs), c.maxJobs)
		if err != nil {
			t.Fatal(err)
		}
		listed := 0
		for i, m := range msgs {
			fp := toFake(t, m)
			if field, msg := chattest.CheckDiscord(fp); field != "" {
				t.Errorf("%d jobs, message %d: %s: %s", c.jobs, i, field, msg)
			}
			if fp.AllowedMentions == nil || len(fp.AllowedMentions.Parse) != 0 {
				t.Errorf("%d jobs, message %d: allowed_mentions %+v, want parse: []", c.jobs, i, fp.AllowedMentions)
			}
			listed += len(m.Embeds)
		}
		listed-- // the closing embed with the links
		if listed != c.wantListed {
			t.Errorf("%d jobs, max %d: %d embeds, want %d", c.jobs, c.maxJobs, listed, c.wantListed)
		}
		lastEmbeds := msgs[len(msgs)-1].Embeds
		last := lastEmbeds[len(lastEmbeds)-1].Description
		if !strings.Contains(last, "[Unsubscribe](<https://jobs.example.com/v1/unsubscribe?token=u_abc>)") {
			t.Errorf("%d jobs: the last message lacks the unsubscribe link: %q", c.jobs, last)
		}
		if c.wantMore > 0 && !strings.Contains(last, "**175 more**") {
			t.Errorf("%d jobs: the last message lacks 'and 175 more': %q", c.jobs, last)
		}
		if !strings.HasPrefix(msgs[0].Content, `**3 new`) && c.jobs == 3 {
			t.Errorf("heading %q", msgs[0].Content)
		}
	}
	msgs, _ := discord.Render(chattest.Digest(3), 0)
	e := msgs[0].Embeds[0]
	if e.URL != "https://careers.example.com/jobs/0?src=alert&utm=%3Cx%3E%7Cy" || !strings.Contains(e.Description, `ACME & Sons <Holdings>`) || !strings.Contains(e.Description, "Visa: H-1B") || e.Timestamp != "2026-12-05T10:00:00Z" {
		t.Errorf("first embed %+v", e)
	}
	if !strings.Contains(msgs[0].Embeds[2].Description, "*Sponsorship not stated*") {
		t.Errorf("third embed should say Sponsorship not stated: %q", msgs[0].Embeds[2].Description)
	}
}

func sender(c *clock.Fake, sl *chattest.Sleeper) *discord.Sender {
	return discord.NewSender(hook.New(hook.Options{AllowPrivate: true, Sleep: sl.Sleep, MaxWait: 10 * time.Second,
		Limits: hook.NewLimits(nil, "", c.Now)}), c.Now)
}

// TestSendPacesByRateLimitHeaders sends a 200-job digest through a
// bucket of 2 messages per 2 s: the sender waits whenever Remaining hits
// 0, so Discord never has to answer 429.
func TestSendPacesByRateLimitHeaders(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	fake := chattest.NewDiscord(t, c.Now)
	fake.Limit, fake.Window = 2, 2*time.Second
	sl := &chattest.Sleeper{Advance: c.Advance}
	msgs, err := discord.Render(chattest.Digest(200), 200)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := sender(c, sl).Send(context.Background(), fake.URL, msgs)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	requests, limited := fake.Requests()
	if sent != len(msgs) || len(fake.Received()) != len(msgs) || limited != 0 || requests != len(msgs) {
		t.Errorf("sent %d of %d, fake accepted %d in %d requests with %d 429s; want all, no 429", sent, len(msgs), len(fake.Received()), requests, limited)
	}
	if got, want := len(sl.Waited()), (len(msgs)-1)/2; got != want {
		t.Errorf("waited %d times, want %d (once per full bucket)", got, want)
	}
	embeds := 0
	for _, m := range fake.Received() {
		embeds += len(m.Embeds)
	}
	if embeds != 201 {
		t.Errorf("the fake received %d embeds, want 200 jobs and the closing one", embeds)
	}
}

func TestSendHonoursRetryAfterInBody(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	fake := chattest.NewDiscord(t, c.Now)
	fake.RateLimit(1, 0.5)
	sl := &chattest.Sleeper{Advance: c.Advance}
	msgs, _ := discord.Render(chattest.Digest(1), 0)
	if _, err := sender(c, sl).Send(context.Background(), fake.URL, msgs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := sl.Waited(); len(got) != 1 || got[0] != 500*time.Millisecond {
		t.Errorf("waited %v, want [500ms] from retry_after 0.5", got)
	}
	if len(fake.Received()) != 1 {
		t.Errorf("accepted %d, want 1", len(fake.Received()))
	}
}

func TestSendFailures(t *testing.T) {
	msgs, _ := discord.Render(chattest.Digest(1), 0)
	for _, c := range []struct {
		name              string
		setup             func(*chattest.Discord)
		gone, perm, retry bool
	}{
		{"deleted webhook", func(f *chattest.Discord) { f.Delete() }, true, false, false},
		{"401 bad token", func(f *chattest.Discord) { f.Fail(1, 401) }, true, false, false},
		{"400", func(f *chattest.Discord) { f.Fail(1, 400) }, false, true, false},
		{"502", func(f *chattest.Discord) { f.Fail(1, 502) }, false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ck := clock.NewFake(time.Now())
			fake := chattest.NewDiscord(t, ck.Now)
			c.setup(fake)
			_, err := sender(ck, &chattest.Sleeper{}).Send(context.Background(), fake.URL, msgs)
			var temp *channel.TemporaryError
			if errors.Is(err, channel.ErrGone) != c.gone || errors.Is(err, channel.ErrPermanent) != c.perm || errors.As(err, &temp) != c.retry {
				t.Errorf("got %v, want gone=%v permanent=%v temporary=%v", err, c.gone, c.perm, c.retry)
			}
			if err != nil && strings.Contains(err.Error(), "fake-token_abc") {
				t.Errorf("the error shows the webhook token: %v", err)
			}
		})
	}
}

func TestValidateURL(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		want         string
	}{
		{"https://discord.com/api/webhooks/123/abc-DEF_1", false, ""},
		{"https://discordapp.com/api/webhooks/123/abc", false, ""},
		{"https://canary.discord.com/api/webhooks/123/abc", false, ""},
		{"https://discord.com/api/webhooks/123", false, "/api/webhooks/<id>/<token>"},
		{"https://discord.com/api/v10/webhooks/123/abc", false, "/api/webhooks/<id>/<token>"},
		{"https://discord.com/channels/1/2", false, "/api/webhooks/<id>/<token>"},
		{"https://discord.com.evil.example/api/webhooks/1/a", false, "discord.com or discordapp.com"},
		{"https://evildiscord.com/api/webhooks/1/a", false, "discord.com or discordapp.com"},
		{"http://discord.com/api/webhooks/1/a", false, "scheme"},
		{"http://127.0.0.1:9/api/webhooks/1/a", true, ""},
	} {
		err := discord.ValidateURL(c.url, c.allowPrivate)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: got %v, want valid", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, discord.ErrInvalidURL)):
			t.Errorf("%q: got %v, want an ErrInvalidURL mentioning %q", c.url, err, c.want)
		}
	}
}
