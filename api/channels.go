package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jobalert/jobalert/channel/discord"
	"github.com/jobalert/jobalert/channel/slack"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// Feeds gives out and revokes the private feed tokens of subscriptions
// (docs/channels.md "The private feed"); *feed.Store is the real one.
type Feeds interface {
	// Token returns the subscription's feed token, making one if needed.
	Token(ctx context.Context, subID string) (string, error)
	// Rotate replaces the token: the old feed URL answers 404 at once.
	Rotate(ctx context.Context, subID string) (string, error)
	// Delete removes the subscription's feed and token.
	Delete(ctx context.Context, subID string) error
	// Expire makes the token expire after ttl (an unconfirmed
	// subscription's, which expires with it), or keeps it for good (0).
	Expire(ctx context.Context, subID string, ttl time.Duration) error
}

// Telegram issues the link that binds a Telegram chat to a subscription:
// https://t.me/<bot>?start=<one-time token>.
type Telegram interface {
	StartLink(ctx context.Context, subID string) (string, error)
}

// validateChannels checks the channels and their settings and fills in
// what the input leaves out: the default channels of a new subscription,
// the stored ones of an edited one (cur), and its quiet hours and cap
// when the input does not carry them.
func (s *Server) validateChannels(in *subscriptionInput, bad fieldErrors, cur *store.Subscription) {
	in.SlackURL = strings.TrimSpace(in.SlackURL)
	in.DiscordURL = strings.TrimSpace(in.DiscordURL)
	all := strings.Join(store.AllChannels, ", ")
	switch {
	case in.ChannelsSet && len(in.Channels) == 0:
		bad.add("channels", "must name at least one channel (any of %s)", all)
	case in.ChannelsSet:
		chs, err := store.NormalizeChannels(in.Channels)
		if err != nil {
			bad.add("channels", "%s", err.Error())
		}
		in.Channels = chs
	case cur != nil:
		in.Channels = slices.Clone(cur.Channels)
	default:
		in.Channels = []string{store.ChannelEmail}
		if in.WebhookURL != "" {
			in.Channels = append(in.Channels, store.ChannelWebhook)
		}
	}
	has := func(ch string) bool { return slices.Contains(in.Channels, ch) }
	had := func(ch string) bool { return cur != nil && slices.Contains(cur.Channels, ch) }
	notChosen := func(fieldName, ch string) {
		bad.add(fieldName, "is set, but the %s channel is not chosen: add %q to channels, or leave this out", ch, ch)
	}
	channelsOK := !in.ChannelsSet || len(in.Channels) > 0

	switch {
	case has(store.ChannelWebhook):
		if in.WebhookURL == "" && (cur == nil || cur.WebhookURL == "") {
			if cur != nil {
				bad.add("webhook_url", "this alert has no webhook; to get alerts at a webhook, create a new alert with webhook_url (its signing secret is shown once, when it is created)")
			} else {
				bad.add("webhook_url", "is required for the webhook channel: the https URL that receives the signed alerts")
			}
		}
	case in.WebhookURL != "" && in.ChannelsSet && channelsOK:
		notChosen("webhook_url", store.ChannelWebhook)
	}

	chatURL := func(ch, fieldName, given, stored, how string, check func(string, bool) error, prefix error) {
		switch {
		case has(ch) && given == "" && stored == "":
			bad.add(fieldName, "is required for the %s channel: %s", ch, how)
		case has(ch) && given != "":
			if err := check(given, s.cfg.WebhookAllowPrivate); err != nil {
				msg := strings.TrimPrefix(err.Error(), prefix.Error()+": ")
				msg = strings.TrimPrefix(msg, webhook.ErrInvalidURL.Error()+": ")
				bad.add(fieldName, "is not accepted: %s", msg)
			}
		case !has(ch) && given != "" && channelsOK:
			notChosen(fieldName, ch)
		}
	}
	var slackStored, discordStored string
	if cur != nil {
		slackStored, discordStored = cur.SlackURL, cur.DiscordURL
	}
	chatURL(store.ChannelSlack, "slack_webhook_url", in.SlackURL, slackStored,
		"paste the URL Slack gives under Apps → Incoming Webhooks (https://hooks.slack.com/services/…)", slack.ValidateURL, slack.ErrInvalidURL)
	chatURL(store.ChannelDiscord, "discord_webhook_url", in.DiscordURL, discordStored,
		"paste the URL from Server Settings → Integrations → Webhooks → Copy Webhook URL", discord.ValidateURL, discord.ErrInvalidURL)
	if has(store.ChannelTelegram) && s.deps.Telegram == nil && !had(store.ChannelTelegram) {
		bad.add("channels", "the telegram channel is not available on this server")
	}
	if has(store.ChannelFeed) && s.deps.Feeds == nil && !had(store.ChannelFeed) {
		bad.add("channels", "the feed channel is not available on this server")
	}

	instant := in.Frequency == schedule.Instant
	digest := in.Frequency == schedule.Daily || in.Frequency == schedule.Weekly
	if !in.QuietSet && cur != nil && instant {
		in.QuietHours = cur.QuietHours
	}
	if !in.CapSet && cur != nil && instant {
		in.MaxAlertsPerDay = cur.MaxAlertsPerDay
	}
	if q := in.QuietHours; q != nil {
		q.Start, q.End = strings.TrimSpace(q.Start), strings.TrimSpace(q.End)
		if err := q.Validate(); err != nil {
			bad.add("quiet_hours", "%s", strings.TrimPrefix(err.Error(), schedule.ErrQuietHours.Error()+": "))
		} else if digest && in.QuietSet {
			bad.add("quiet_hours", "applies to instant alerts only: %s alerts go out at send_hour; remove quiet_hours or choose frequency instant", in.Frequency)
		}
		if digest {
			in.QuietHours = nil
		}
	}
	if err := schedule.ValidateDailyCap(in.MaxAlertsPerDay); err != nil {
		bad.add("max_alerts_per_day", "must be a whole number from 0 (unlimited) to %d", schedule.MaxAlertsPerDay)
	} else if in.MaxAlertsPerDay > 0 && digest {
		if in.CapSet {
			bad.add("max_alerts_per_day", "applies to instant alerts only: %s alerts already come at most once a %s; remove max_alerts_per_day or choose frequency instant",
				in.Frequency, map[string]string{schedule.Daily: "day", schedule.Weekly: "week"}[in.Frequency])
		}
		in.MaxAlertsPerDay = 0
	}
}

// applyChannels writes validated channel settings into a stored
// subscription being created or edited. A new Slack or Discord URL turns
// that channel back on; a channel no longer chosen loses its URL and its
// disabled mark. It returns the channels turned off.
func applyChannels(sub *store.Subscription, in subscriptionInput) (removed []string) {
	for _, ch := range sub.Channels {
		if !slices.Contains(in.Channels, ch) {
			removed = append(removed, ch)
		}
	}
	sub.Channels = slices.Clone(in.Channels)
	if in.SlackURL != "" {
		sub.SlackURL = in.SlackURL
		delete(sub.Disabled, store.ChannelSlack)
	}
	if in.DiscordURL != "" {
		sub.DiscordURL = in.DiscordURL
		delete(sub.Disabled, store.ChannelDiscord)
	}
	for _, ch := range removed {
		delete(sub.Disabled, ch)
		switch ch {
		case store.ChannelSlack:
			sub.SlackURL = ""
		case store.ChannelDiscord:
			sub.DiscordURL = ""
		}
	}
	if len(sub.Disabled) == 0 {
		sub.Disabled = nil
	}
	sub.QuietHours, sub.MaxAlertsPerDay = in.QuietHours, in.MaxAlertsPerDay
	return removed
}

// maskURL shows a webhook URL that carries a token: scheme, host and the
// last four characters, e.g. https://hooks.slack.com/…WXYZ.
func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	tail := strings.TrimRight(raw, "/")
	if n := len(tail); n > 4 {
		tail = tail[n-4:]
	}
	return u.Scheme + "://" + u.Host + "/…" + tail
}

// feedURL is a feed token's address.
func (s *Server) feedURL(tok string) string {
	return s.cfg.PublicURL + "/v1/feeds/" + tok + ".atom"
}

// channelLinks are a subscription's feed URL and Telegram start link,
// when its channels call for them.
type channelLinks struct {
	FeedURL      string
	TelegramLink string
}

// linksFor returns the feed URL (making the token if needed) when the feed
// channel is on and the Telegram start link when Telegram is chosen but
// not bound to a chat (or was turned off because the bot was blocked).
func (s *Server) linksFor(ctx context.Context, id string, channels []string, sub *store.Subscription) (channelLinks, error) {
	var out channelLinks
	disabled := func(ch string) bool {
		if sub == nil {
			return false
		}
		_, off := sub.Disabled[ch]
		return off
	}
	if slices.Contains(channels, store.ChannelFeed) && s.deps.Feeds != nil {
		tok, err := s.deps.Feeds.Token(ctx, id)
		if err != nil {
			return out, fmt.Errorf("feed token: %w", err)
		}
		// A feed issued to an unconfirmed subscription (sub is nil at
		// creation) goes with it if it is never confirmed; confirm keeps it.
		if sub == nil || sub.Status == store.StatusPending {
			if err := s.deps.Feeds.Expire(ctx, id, s.cfg.ConfirmTTL); err != nil {
				return out, fmt.Errorf("feed token: %w", err)
			}
		}
		out.FeedURL = s.feedURL(tok)
	}
	bound := sub != nil && sub.TelegramChat != 0 && !disabled(store.ChannelTelegram)
	if slices.Contains(channels, store.ChannelTelegram) && s.deps.Telegram != nil && !bound {
		link, err := s.deps.Telegram.StartLink(ctx, id)
		if err != nil {
			return out, fmt.Errorf("telegram start link: %w", err)
		}
		out.TelegramLink = link
	}
	return out, nil
}

// deleteFeed removes a subscription's feed, if the server has feeds.
func (s *Server) deleteFeed(ctx context.Context, id string) error {
	if s.deps.Feeds == nil {
		return nil
	}
	return s.deps.Feeds.Delete(ctx, id)
}

// subscriptionOut is GET /v1/subscriptions/{id}: the stored subscription
// (its channels, disabled_channels, quiet_hours and max_alerts_per_day
// among them) with the chat URLs masked and the feed and Telegram links.
type subscriptionOut struct {
	*store.Subscription
	SlackURL          string `json:"slack_webhook_url,omitempty"`
	DiscordURL        string `json:"discord_webhook_url,omitempty"`
	FeedURL           string `json:"feed_url,omitempty"`
	TelegramLink      string `json:"telegram_link,omitempty"`
	TelegramConnected bool   `json:"telegram_connected,omitempty"`
}

func (s *Server) subscriptionOut(ctx context.Context, sub *store.Subscription) (*subscriptionOut, error) {
	l, err := s.linksFor(ctx, sub.ID, sub.Channels, sub)
	if err != nil {
		return nil, err
	}
	return &subscriptionOut{Subscription: sub, SlackURL: maskURL(sub.SlackURL), DiscordURL: maskURL(sub.DiscordURL),
		FeedURL: l.FeedURL, TelegramLink: l.TelegramLink, TelegramConnected: sub.TelegramChat != 0 && slices.Contains(sub.Channels, store.ChannelTelegram)}, nil
}

// serveFeed is GET (and HEAD) /v1/feeds/{token}: the private Atom feed,
// answered by Deps.FeedHandler.
func (s *Server) serveFeed(w http.ResponseWriter, r *http.Request) {
	if s.deps.FeedHandler == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "feeds are not enabled on this server", nil)
		return
	}
	s.deps.FeedHandler.ServeHTTP(w, r)
}

// chatDeadLetters is GET /v1/admin/chat-dead-letters?limit=N (default
// 100, at most 1000): the Slack, Discord and Telegram messages that will
// not be tried again unless replayed, newest first.
func (s *Server) chatDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit, ok := adminLimit(w, r)
	if !ok {
		return
	}
	dls, err := s.deps.Store.ChatDeadLetters(r.Context(), limit)
	if err != nil {
		s.log.Error("list chat dead letters", "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not list chat dead letters", nil)
		return
	}
	if dls == nil {
		dls = []store.ChatDeadLetter{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
}

// replayChatDeadLetter is POST /v1/admin/chat-dead-letters/{id}/replay:
// the message is queued to be sent again at once (202).
func (s *Server) replayChatDeadLetter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	digest, err := s.deps.Store.ReplayChatDeadLetter(r.Context(), id, s.cfg.Clock())
	switch {
	case err == nil:
		s.log.Info("chat dead letter replayed", "dead_letter", id, "digest", digest)
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "digest_id": digest, "state": "queued"})
	case errors.Is(err, store.ErrNotDeadLetter):
		writeError(w, http.StatusNotFound, codeNotFound, "no such chat dead letter (unknown, expired or replayed already)", nil)
	default:
		s.log.Error("replay chat dead letter", "dead_letter", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not replay the chat dead letter", nil)
	}
}

// adminLimit reads ?limit=N (default 100, 1 to 1000); on a bad one it
// has answered.
func adminLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", map[string]string{"limit": "must be a whole number from 1 to 1000"})
			return 0, false
		}
		limit = n
	}
	return limit, true
}
