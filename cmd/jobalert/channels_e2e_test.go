package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// chatStack is the whole service with the fake Slack, Discord and
// Telegram servers on loopback (JOBALERT_WEBHOOK_ALLOW_PRIVATE, which
// startStack sets, lets the webhooks name them; JOBALERT_TELEGRAM_API_URL
// points the bot at its fake).
type chatStack struct {
	*stack
	slack    *chattest.Slack
	discord  *chattest.Discord
	telegram *chattest.Telegram
}

const e2eBotToken = "123456:e2e-bot-token"

func startChatStack(t *testing.T) *chatStack {
	t.Helper()
	tg := chattest.NewTelegram(t, e2eBotToken)
	cs := &chatStack{slack: chattest.NewSlack(t), discord: chattest.NewDiscord(t, nil), telegram: tg}
	cs.stack = startStack(t, stackOpts{env: map[string]string{
		"JOBALERT_TELEGRAM_BOT_TOKEN": e2eBotToken,
		"JOBALERT_TELEGRAM_API_URL":   tg.URL,
	}})
	return cs
}

// subscribeChannels creates an active instant subscription with the
// given channels, the fakes as its Slack and Discord webhooks, and waits
// until it is indexed.
func (cs *chatStack) subscribeChannels(email string, f matcher.Filter, channels ...string) *store.Subscription {
	t := cs.t
	t.Helper()
	sub := &store.Subscription{Email: email, Filter: f, Frequency: "instant", Timezone: "UTC", Status: store.StatusActive,
		Channels: channels, SlackURL: cs.slack.URL, DiscordURL: cs.discord.URL}
	if err := cs.app.store.CreateSubscription(context.Background(), sub, time.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, func() bool { return containsID(cs.app.index.MatchIDs(probeJob(f)), sub.ID) },
		"subscription %s not in the index", sub.ID)
	return sub
}

// bindTelegram binds chat to the subscription as a subscriber does: the
// start link's token, sent as "/start <token>" from the chat, read by the
// poller from the fake's getUpdates.
func (cs *chatStack) bindTelegram(subID string, chat int64) {
	t := cs.t
	t.Helper()
	if cs.app.tgLinks == nil {
		t.Fatal("no Telegram start links: the bot is not configured")
	}
	link, err := cs.app.tgLinks.StartLink(t.Context(), subID)
	if err != nil {
		t.Fatalf("start link: %v", err)
	}
	want := "https://t.me/" + cs.telegram.Username + "?start="
	tok, ok := strings.CutPrefix(link, want)
	if !ok || tok == "" {
		t.Fatalf("start link: got %q, want %s<token>", link, want)
	}
	cs.telegram.AddUpdate(chat, "/start "+tok)
	testenv.Eventually(t, 10*time.Second, func() bool {
		sub, err := cs.app.store.GetSubscription(context.Background(), subID)
		return err == nil && sub.TelegramChat == chat && sub.Has(store.ChannelTelegram)
	}, "chat %d not bound to %s", chat, subID)
}

// counts are how many times each channel carried a job.
type counts struct{ email, slack, discord, telegram, feed int }

func (cs *chatStack) counts(email string, chat int64, feedURL, jobID string) counts {
	t := cs.t
	t.Helper()
	url := "https://jobs.example.com/" + jobID
	c := counts{email: cs.mailsWith(email, url)}
	for _, p := range cs.slack.Received() {
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), url) {
			c.slack++
		}
	}
	for _, p := range cs.discord.Received() {
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), url) {
			c.discord++
		}
	}
	for _, m := range cs.telegram.Sent() {
		if m.ChatID == chat && strings.Contains(m.Text, url) {
			c.telegram++
		}
	}
	if feedURL != "" {
		resp, err := http.Get(feedURL)
		if err != nil {
			t.Fatal(err)
		}
		r := read(t, resp)
		if r.StatusCode == http.StatusOK {
			// One entry per job: its id is a tag: URI ending in the job id.
			c.feed = strings.Count(r.body, jobID+"</id>")
		}
	}
	return c
}

// A subscription on every channel gets each job once on each: one email,
// one Slack post, one Discord message, one Telegram message (in the chat
// bound through /start), and the job in its Atom feed.
func TestEveryChannelGetsEachJobOnce(t *testing.T) {
	cs := startChatStack(t)
	const email, chat = "ada@example.com", int64(7001)
	sub := cs.subscribeChannels(email, matcherFilter("backend"), store.ChannelEmail, store.ChannelSlack,
		store.ChannelDiscord, store.ChannelTelegram, store.ChannelFeed)
	cs.bindTelegram(sub.ID, chat)
	tok, err := cs.app.feeds.Token(t.Context(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	feedURL := cs.env["JOBALERT_PUBLIC_URL"] + "/v1/feeds/" + tok + ".atom"
	// The feed tap learns of the new feed subscriber within a poll.
	testenv.Eventually(t, 5*time.Second, func() bool { return cs.app.feedTap.has(sub.ID) }, "feed tap does not know %s", sub.ID)

	one := counts{1, 1, 1, 1, 1}
	for _, id := range []string{"chan-a", "chan-b"} {
		cs.publishJob("jobs.created", job(id, "Backend Engineer "+id))
		var got counts
		testenv.Eventually(t, 20*time.Second, func() bool { got = cs.counts(email, chat, feedURL, id); return got == one },
			"job %s: got %+v at the last look, want once on each channel", id, &got)
	}
	// Once the second job is everywhere, the first is still there once.
	if got := cs.counts(email, chat, feedURL, "chan-a"); got != one {
		t.Errorf("job chan-a after chan-b: got %+v, want once on each channel", got)
	}
}

// A deleted Slack webhook (404 no_service) disables the Slack channel and
// tells the owner by email; email alerts keep going.
func TestDeletedSlackWebhookDisablesTheChannel(t *testing.T) {
	cs := startChatStack(t)
	const email = "bea@example.com"
	sub := cs.subscribeChannels(email, matcherFilter("backend"), store.ChannelEmail, store.ChannelSlack)
	cs.slack.Delete()

	cs.publishJob("jobs.created", job("gone-a", "Backend Engineer"))
	testenv.Eventually(t, 20*time.Second, func() bool {
		s, err := cs.app.store.GetSubscription(context.Background(), sub.ID)
		return err == nil && !s.Has(store.ChannelSlack) && s.Disabled[store.ChannelSlack] != ""
	}, "the Slack channel of %s is not disabled", sub.ID)
	testenv.Eventually(t, 15*time.Second, func() bool {
		for _, m := range cs.sink.To(email) {
			if strings.Contains(m.Text, "Slack") && !strings.Contains(m.Text, "jobs.example.com/gone-") {
				return true
			}
		}
		return false
	}, "no 'Slack channel disabled' email to the owner")
	for _, m := range cs.sink.To(email) {
		if strings.Contains(m.Text, "abcdefghijklmnopqrstuvwx") {
			t.Errorf("an email shows the Slack webhook URL's secret path: %s", m.Text)
		}
	}
	testenv.Eventually(t, 15*time.Second, func() bool { return cs.mailsWith(email, "https://jobs.example.com/gone-a") == 1 },
		"the job's email: want 1")

	// The next job: by email only, and nothing more is posted to Slack.
	before := cs.slack.Requests()
	cs.publishJob("jobs.created", job("gone-b", "Backend Developer"))
	testenv.Eventually(t, 15*time.Second, func() bool { return cs.mailsWith(email, "https://jobs.example.com/gone-b") == 1 },
		"the second job's email: want 1")
	if after := cs.slack.Requests(); after != before {
		t.Errorf("Slack requests after the channel was disabled: got %d more, want none", after-before)
	}
}
