package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/discord"
	"github.com/jobalert/jobalert/channel/hook"
	"github.com/jobalert/jobalert/channel/slack"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/store"
)

// chatMaxWait is the longest rate-limit wait a chat sender sits out inside
// a digest worker. The digest's lease is 2 minutes and a worker holds one
// subscription's alert while it waits, so a longer 429 wait goes back to
// the digest engine as a *channel.TemporaryError carrying it, and the
// digest is retried after it (the wait is also kept in hook.Limits, so
// every replica honours it meanwhile).
const chatMaxWait = 5 * time.Second

// chatOptions are the knobs tests turn; the zero value is production.
type chatOptions struct {
	sleep channel.Sleep // nil: real sleeps
}

// newChats builds the digest engine's chat channels: Slack and Discord
// through one hook.Client (the SSRF guard of webhooks, rate limits shared
// in Redis), and Telegram when the bot is configured (bot may be nil).
// maxJobs is how many jobs a message lists (JOBALERT_DIGEST_CAP, as the
// email does).
func newChats(rdb redis.UniversalClient, prefix string, allowPrivate bool, bot *telegram.Bot, maxJobs int, o chatOptions) map[string]notifier.Chat {
	hc := hook.New(hook.Options{
		AllowPrivate: allowPrivate,
		MaxWait:      chatMaxWait,
		Sleep:        o.sleep,
		Limits:       hook.NewLimits(rdb, prefix, nil),
	})
	chats := map[string]notifier.Chat{
		store.ChannelSlack:   slackChat{s: slack.NewSender(hc, nil), maxJobs: maxJobs},
		store.ChannelDiscord: discordChat{s: discord.NewSender(hc, nil), maxJobs: maxJobs},
	}
	if bot != nil {
		chats[store.ChannelTelegram] = telegramChat{bot: bot, maxJobs: maxJobs}
	}
	return chats
}

// noDestination is the error of a channel that is on without a place to
// send to (a Telegram channel chosen but never bound, a URL cleared by
// hand): permanent, so the message is dead-lettered and can be replayed
// once the destination is there, instead of being retried in a loop.
func noDestination(ch, what string) error {
	return fmt.Errorf("%w: %s: the subscription has no %s", channel.ErrPermanent, ch, what)
}

// slackChat posts alerts to a Slack incoming webhook.
type slackChat struct {
	s       *slack.Sender
	maxJobs int
}

func (c slackChat) Send(ctx context.Context, sub *store.Subscription, msg channel.Message, from int) (int, error) {
	if sub.SlackURL == "" {
		return from, noDestination("slack", "webhook URL")
	}
	payloads, err := slack.Render(msg, c.maxJobs)
	if err != nil {
		return from, fmt.Errorf("%w: slack: render: %w", channel.ErrPermanent, err)
	}
	return sendRest(from, len(payloads), sub.SlackURL, func(from int) (int, error) {
		return c.s.Send(ctx, sub.SlackURL, payloads[from:])
	})
}

// discordChat posts alerts to a Discord webhook.
type discordChat struct {
	s       *discord.Sender
	maxJobs int
}

func (c discordChat) Send(ctx context.Context, sub *store.Subscription, msg channel.Message, from int) (int, error) {
	if sub.DiscordURL == "" {
		return from, noDestination("discord", "webhook URL")
	}
	payloads, err := discord.Render(msg, c.maxJobs)
	if err != nil {
		return from, fmt.Errorf("%w: discord: render: %w", channel.ErrPermanent, err)
	}
	return sendRest(from, len(payloads), sub.DiscordURL, func(from int) (int, error) {
		return c.s.Send(ctx, sub.DiscordURL, payloads[from:])
	})
}

// telegramChat sends alerts to the Telegram chat bound to the
// subscription.
type telegramChat struct {
	bot     *telegram.Bot
	maxJobs int
}

func (c telegramChat) Send(ctx context.Context, sub *store.Subscription, msg channel.Message, from int) (int, error) {
	if sub.TelegramChat == 0 {
		return from, noDestination("telegram", "chat bound yet (the start link was not opened)")
	}
	texts, err := telegram.Render(msg, c.maxJobs)
	if err != nil {
		return from, fmt.Errorf("%w: telegram: render: %w", channel.ErrPermanent, err)
	}
	// The bot scrubs its token from every error itself; the chat id is
	// not a secret.
	return sendRest(from, len(texts), "", func(from int) (int, error) {
		return c.bot.Send(ctx, sub.TelegramChat, texts[from:])
	})
}

// sendRest sends the messages of an alert from index from on (the first
// from were accepted by an earlier try: a render is the same for the same
// message) and returns how many are accepted in all. Its error never holds
// dest (a webhook URL is a credential): every URL in the text is cut to
// its host (redact.Text), dest itself to "<webhook>".
func sendRest(from, total int, dest string, send func(from int) (int, error)) (int, error) {
	if from >= total {
		return total, nil
	}
	n, err := send(from)
	return from + n, hideDestination(err, dest)
}

func hideDestination(err error, dest string) error {
	if err == nil {
		return nil
	}
	return &hiddenError{err: err, dest: dest}
}

// hiddenError is an error whose text is redacted; it unwraps to the
// original, so errors.Is(err, channel.ErrGone) and errors.As for a
// *channel.TemporaryError still see through it.
type hiddenError struct {
	err  error
	dest string
}

func (e *hiddenError) Error() string {
	s := e.err.Error()
	if e.dest != "" {
		s = strings.ReplaceAll(s, e.dest, "<webhook>")
	}
	return redact.Text(s)
}

func (e *hiddenError) Unwrap() error { return e.err }
