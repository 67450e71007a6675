package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/store"
)

// chatsForTest returns the adapters over the fakes' loopback servers,
// with rate limits in memory and the sleeper recording waits.
func chatsForTest(t *testing.T, bot *telegram.Bot, maxJobs int) (map[string]interface {
	Send(context.Context, *store.Subscription, channel.Message, int) (int, error)
}, *chattest.Sleeper) {
	t.Helper()
	sl := &chattest.Sleeper{}
	chats := newChats(nil, "", true, bot, maxJobs, chatOptions{sleep: sl.Sleep})
	out := map[string]interface {
		Send(context.Context, *store.Subscription, channel.Message, int) (int, error)
	}{}
	for k, v := range chats {
		out[k] = v
	}
	return out, sl
}

// A multi-post alert resumes after the posts accepted by an earlier try,
// so none is posted twice.
func TestSlackChatResumesAfterTheAcceptedPosts(t *testing.T) {
	fake := chattest.NewSlack(t)
	chats, _ := chatsForTest(t, nil, 100)
	slackChat := chats[store.ChannelSlack]
	sub := &store.Subscription{ID: "s1", SlackURL: fake.URL}
	msg := chattest.Digest(100) // 40 + 40 + 20 jobs: three posts

	fake.Fail(1, http.StatusInternalServerError, "oops")
	sent, err := slackChat.Send(t.Context(), sub, msg, 0)
	var temp *channel.TemporaryError
	if !errors.As(err, &temp) || sent != 0 {
		t.Fatalf("500 on the first post: got %d, %v; want 0, a *channel.TemporaryError", sent, err)
	}
	// A retry that knows two were accepted posts the third only.
	sent, err = slackChat.Send(t.Context(), sub, msg, 2)
	if err != nil || sent != 3 || len(fake.Received()) != 1 {
		t.Fatalf("resume from 2: got %d, %v, %d posts; want 3, nil, 1 post", sent, err, len(fake.Received()))
	}
	if h := fake.Received()[0].Blocks[0].Text.Text; !strings.Contains(h, "(3/3)") {
		t.Errorf("the resumed post's header: got %q, want the third of three", h)
	}
	// All accepted already: nothing is posted.
	sent, err = slackChat.Send(t.Context(), sub, msg, 3)
	if err != nil || sent != 3 || len(fake.Received()) != 1 {
		t.Fatalf("resume from 3: got %d, %v, %d posts; want 3, nil, still 1 post", sent, err, len(fake.Received()))
	}
	sent, err = slackChat.Send(t.Context(), sub, msg, 0)
	if err != nil || sent != 3 || len(fake.Received()) != 4 {
		t.Fatalf("from 0: got %d, %v, %d posts in all; want 3, nil, 4", sent, err, len(fake.Received()))
	}
}

// A deleted webhook is channel.ErrGone, a long 429 comes back at once as
// a *channel.TemporaryError carrying the wait (the digest retries after
// it), and no error text holds the webhook URL.
func TestChatErrorsKeepTheirMeaningAndHideTheURL(t *testing.T) {
	slackFake := chattest.NewSlack(t)
	discordFake := chattest.NewDiscord(t, nil)
	chats, sl := chatsForTest(t, nil, 25)
	sub := &store.Subscription{ID: "s1", SlackURL: slackFake.URL, DiscordURL: discordFake.URL}
	msg := chattest.Digest(3)

	slackFake.RateLimit(1, "30")
	_, err := chats[store.ChannelSlack].Send(t.Context(), sub, msg, 0)
	var temp *channel.TemporaryError
	if !errors.As(err, &temp) || temp.After != 30*time.Second {
		t.Fatalf("Slack 429 Retry-After 30: got %v, want a *channel.TemporaryError after 30s", err)
	}
	if w := sl.Waited(); len(w) != 0 {
		t.Errorf("the sender waited %v inside the digest worker; want no wait past %s", w, chatMaxWait)
	}

	// Within chatMaxWait, the sender waits itself and the post goes out.
	slack2 := chattest.NewSlack(t)
	sub.SlackURL = slack2.URL
	slack2.RateLimit(1, "2")
	if sent, err := chats[store.ChannelSlack].Send(t.Context(), sub, msg, 0); err != nil || sent != 1 {
		t.Fatalf("Slack 429 Retry-After 2: got %d, %v; want 1, nil after a wait", sent, err)
	}

	slack2.Delete()
	discordFake.Delete()
	for ch, secret := range map[string]string{store.ChannelSlack: "abcdefghijklmnopqrstuvwx", store.ChannelDiscord: "fake-token_abc"} {
		_, err := chats[ch].Send(t.Context(), sub, msg, 0)
		if !errors.Is(err, channel.ErrGone) {
			t.Errorf("%s deleted: got %v, want channel.ErrGone", ch, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the webhook URL: %v", ch, err)
		}
	}

	// A webhook on a port nobody listens on: a network error, temporary,
	// whose text names the host only.
	sub.SlackURL = "http://127.0.0.1:1/services/T1/B1/secretpart"
	_, err = chats[store.ChannelSlack].Send(t.Context(), sub, msg, 0)
	if !errors.As(err, &temp) || strings.Contains(err.Error(), "secretpart") {
		t.Errorf("unreachable webhook: got %v, want a *channel.TemporaryError without the URL's path", err)
	}

	// No destination: dead-lettered, not retried in a loop.
	for _, ch := range []string{store.ChannelSlack, store.ChannelDiscord} {
		if _, err := chats[ch].Send(t.Context(), &store.Subscription{ID: "s2"}, msg, 0); !errors.Is(err, channel.ErrPermanent) {
			t.Errorf("%s without a URL: got %v, want channel.ErrPermanent", ch, err)
		}
	}
}

func TestTelegramChat(t *testing.T) {
	const token = "123456:telegram-secret-token"
	fake := chattest.NewTelegram(t, token)
	sl := &chattest.Sleeper{}
	bot, err := telegram.New(telegram.Options{Token: token, APIURL: fake.URL, MaxWait: chatMaxWait, Sleep: sl.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	chats, _ := chatsForTest(t, bot, 25)
	tg := chats[store.ChannelTelegram]
	if tg == nil {
		t.Fatal("no telegram chat with a bot")
	}
	msg := chattest.Digest(3)

	if _, err := tg.Send(t.Context(), &store.Subscription{ID: "s1"}, msg, 0); !errors.Is(err, channel.ErrPermanent) {
		t.Errorf("unbound: got %v, want channel.ErrPermanent", err)
	}
	sub := &store.Subscription{ID: "s1", TelegramChat: 4242}
	sent, err := tg.Send(t.Context(), sub, msg, 0)
	if err != nil || sent < 1 || len(fake.Sent()) != sent {
		t.Fatalf("bound: got %d, %v, %d messages at the fake; want as many as sent, nil", sent, err, len(fake.Sent()))
	}
	if m := fake.Sent()[0]; m.ChatID != 4242 || m.ParseMode != "HTML" {
		t.Errorf("got chat %d, parse mode %q; want 4242, HTML", m.ChatID, m.ParseMode)
	}

	fake.RateLimit(1, 40)
	_, err = tg.Send(t.Context(), sub, msg, 0)
	var temp *channel.TemporaryError
	if !errors.As(err, &temp) || temp.After != 40*time.Second || len(sl.Waited()) != 0 {
		t.Errorf("429 retry_after 40: got %v, waits %v; want a *channel.TemporaryError after 40s, no wait", err, sl.Waited())
	}

	fake.Block(4242)
	_, err = tg.Send(t.Context(), sub, msg, 0)
	if !errors.Is(err, channel.ErrGone) {
		t.Errorf("blocked: got %v, want channel.ErrGone", err)
	}
	if err != nil && strings.Contains(err.Error(), "telegram-secret-token") {
		t.Errorf("the error shows the bot token: %v", err)
	}
}
