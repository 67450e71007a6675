package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/schedule"
)

// The delivery channels a subscription can have (docs/channels.md).
const (
	ChannelEmail    = "email"
	ChannelWebhook  = "webhook"
	ChannelSlack    = "slack"
	ChannelDiscord  = "discord"
	ChannelTelegram = "telegram"
	ChannelFeed     = "feed"
)

// AllChannels lists every channel, in the order forms and answers show
// them.
var AllChannels = []string{ChannelEmail, ChannelWebhook, ChannelSlack, ChannelDiscord, ChannelTelegram, ChannelFeed}

// ChatChannels are the channels the digest engine posts each alert to
// besides email and the webhook queue; each has its own line in a
// digest's ledger.
var ChatChannels = []string{ChannelSlack, ChannelDiscord, ChannelTelegram}

// Has reports whether the subscription delivers to channel ch. A
// disabled channel (its destination gone) is not delivered to.
func (s *Subscription) Has(ch string) bool {
	if _, off := s.Disabled[ch]; off {
		return false
	}
	return slices.Contains(s.Channels, ch)
}

// NormalizeChannels checks a list of channel names from a client and
// returns it deduplicated in AllChannels order; an empty list is email
// only. An unknown name is an error naming it.
func NormalizeChannels(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{ChannelEmail}, nil
	}
	seen := map[string]bool{}
	for _, c := range in {
		c = strings.ToLower(strings.TrimSpace(c))
		if !slices.Contains(AllChannels, c) {
			return nil, fmt.Errorf("unknown channel %q (want any of %s)", c, strings.Join(AllChannels, ", "))
		}
		seen[c] = true
	}
	var out []string
	for _, c := range AllChannels {
		if seen[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// channelFields adds the channel settings to a subscription's hash
// fields and returns the fields to delete: a setting that is off is not
// stored at all (a million subscriptions would carry empty fields
// otherwise), and turning it off deletes it.
func (s *Subscription) channelFields(m map[string]any) (del []string, err error) {
	chs := s.Channels
	if len(chs) == 0 {
		// As a subscription stored before channels existed is read
		// (parseChannelFields): saving and reading must agree.
		chs = []string{ChannelEmail}
		if s.WebhookURL != "" {
			chs = append(chs, ChannelWebhook)
		}
	}
	m["ch"] = strings.Join(chs, ",")
	set := func(f, v string) {
		if v == "" {
			del = append(del, f)
		} else {
			m[f] = v
		}
	}
	set("slack", s.SlackURL)
	set("discord", s.DiscordURL)
	tg := ""
	if s.TelegramChat != 0 {
		tg = strconv.FormatInt(s.TelegramChat, 10)
	}
	set("tg", tg)
	chx := ""
	if len(s.Disabled) > 0 {
		b, err := json.Marshal(s.Disabled)
		if err != nil {
			return nil, err
		}
		chx = string(b)
	}
	set("chx", chx)
	quiet := ""
	if s.QuietHours != nil {
		quiet = s.QuietHours.Start + "-" + s.QuietHours.End
	}
	set("quiet", quiet)
	limit := ""
	if s.MaxAlertsPerDay > 0 {
		limit = strconv.Itoa(s.MaxAlertsPerDay)
	}
	set("cap", limit)
	return del, nil
}

// parseChannelFields reads what channelFields wrote. A subscription
// stored before channels existed (no "ch") has email, and webhook when it
// has an endpoint URL.
func (s *Subscription) parseChannelFields(h map[string]string) error {
	if v, ok := h["ch"]; ok && v != "" {
		s.Channels = strings.Split(v, ",")
	} else {
		s.Channels = []string{ChannelEmail}
		if s.WebhookURL != "" {
			s.Channels = append(s.Channels, ChannelWebhook)
		}
	}
	s.SlackURL, s.DiscordURL = h["slack"], h["discord"]
	if v := h["tg"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("subscription %s: bad telegram chat %q", s.ID, v)
		}
		s.TelegramChat = n
	}
	if v := h["chx"]; v != "" {
		if err := json.Unmarshal([]byte(v), &s.Disabled); err != nil {
			return fmt.Errorf("subscription %s: bad disabled channels: %w", s.ID, err)
		}
	}
	if v := h["quiet"]; v != "" {
		start, end, _ := strings.Cut(v, "-")
		s.QuietHours = &schedule.QuietHours{Start: start, End: end}
	}
	s.MaxAlertsPerDay, _ = strconv.Atoi(h["cap"])
	if n, err := strconv.ParseInt(h["rollup"], 10, 64); err == nil && n > 0 {
		s.RollupAt = time.UnixMilli(n).UTC()
	}
	return nil
}

// DisableChannel turns channel ch of a subscription off because its
// destination is gone, recording why. It reports whether the channel was
// on (so that the owner is told once). A missing subscription is
// ErrNotFound.
func (s *Redis) DisableChannel(ctx context.Context, id, ch, reason string, now time.Time) (bool, error) {
	was := false
	_, err := s.UpdateSubscription(ctx, id, now, func(sub *Subscription) error {
		was = sub.Has(ch)
		if !was {
			return nil
		}
		if sub.Disabled == nil {
			sub.Disabled = map[string]string{}
		}
		sub.Disabled[ch] = reason
		return nil
	})
	return was, err
}

// ErrTelegramNotChosen is BindTelegram's answer for a subscription that
// no longer has the Telegram channel.
var ErrTelegramNotChosen = errors.New("the subscription does not have the telegram channel")

// BindTelegram makes chat the Telegram destination of subscription id
// and turns the channel on (clearing a disabled mark). A chat may be
// bound to several subscriptions; UnbindTelegram finds them through the
// chat's set.
func (s *Redis) BindTelegram(ctx context.Context, id string, chat int64, now time.Time) error {
	old := int64(0)
	_, err := s.UpdateSubscription(ctx, id, now, func(sub *Subscription) error {
		// A start link outlives a change of mind: once Telegram is
		// unticked, an old link must not turn it back on.
		if !slices.Contains(sub.Channels, ChannelTelegram) {
			return ErrTelegramNotChosen
		}
		old = sub.TelegramChat
		sub.TelegramChat = chat
		delete(sub.Disabled, ChannelTelegram)
		return nil
	})
	if err != nil {
		return err
	}
	p := s.rdb.Pipeline()
	if old != 0 && old != chat {
		p.SRem(ctx, s.k.telegramChat(old), id)
	}
	p.SAdd(ctx, s.k.telegramChat(chat), id)
	_, err = p.Exec(ctx)
	return wrap("bind telegram", err)
}

// UnbindTelegram removes the Telegram channel from every subscription
// bound to chat (its /stop): the alerts themselves stay. It returns how
// many subscriptions it changed.
func (s *Redis) UnbindTelegram(ctx context.Context, chat int64, now time.Time) (int, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.telegramChat(chat)).Result()
	if err != nil {
		return 0, wrap("unbind telegram", err)
	}
	n := 0
	for _, id := range ids {
		_, err := s.UpdateSubscription(ctx, id, now, func(sub *Subscription) error {
			if sub.TelegramChat != chat {
				return nil
			}
			sub.TelegramChat = 0
			sub.Channels = slices.DeleteFunc(slices.Clone(sub.Channels), func(c string) bool { return c == ChannelTelegram })
			if len(sub.Channels) == 0 {
				// Never none: the owner's address still gets the alerts.
				sub.Channels = []string{ChannelEmail}
			}
			n++
			return nil
		})
		if err != nil && err != ErrNotFound {
			return n, err
		}
	}
	return n, wrap("unbind telegram", s.rdb.Del(ctx, s.k.telegramChat(chat)).Err())
}

// FeedSubscribers returns, for each shard this store follows (its
// partition), the subscriptions with the feed channel that are active,
// with the shard's version: a counter that moves whenever the set
// changes, so a caller polling FeedVersions reloads only changed shards.
func (s *Redis) FeedSubscribers(ctx context.Context, shard int) ([]string, int64, error) {
	t := s.k.shard(shard)
	p := s.rdb.Pipeline()
	m := p.SMembers(ctx, t.feedSubs())
	v := p.Get(ctx, t.feedVer())
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, 0, wrap("feed subscribers", err)
	}
	n, _ := v.Int64()
	return m.Val(), n, nil
}

// FeedVersions returns every followed shard's feed-set version (see
// FeedSubscribers), by shard number.
func (s *Redis) FeedVersions(ctx context.Context) (map[int]int64, error) {
	p := s.rdb.Pipeline()
	cmds := map[int]*redis.StringCmd{}
	for k := range s.cfg.Shards {
		if s.ownsShard(k) {
			cmds[k] = p.Get(ctx, s.k.shard(k).feedVer())
		}
	}
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, wrap("feed versions", err)
	}
	out := make(map[int]int64, len(cmds))
	for k, c := range cmds {
		out[k], _ = c.Int64()
	}
	return out, nil
}

// ShardOf returns a subscription's shard number (FeedSubscribers).
func (s *Redis) ShardOf(id string) int { return s.k.shardOf(id) }

// feedSet keeps a subscription's membership of its shard's feed set in
// step with its status and channels, inside write's transaction.
func (s *Redis) feedSet(ctx context.Context, p redis.Pipeliner, t shardKeys, sub, before *Subscription) {
	on := sub.Status == StatusActive && sub.Has(ChannelFeed)
	was := before != nil && before.Status == StatusActive && before.Has(ChannelFeed)
	if on == was && before != nil {
		return
	}
	if on {
		p.SAdd(ctx, t.feedSubs(), sub.ID)
	} else {
		p.SRem(ctx, t.feedSubs(), sub.ID)
	}
	p.Incr(ctx, t.feedVer())
}

// postponeScript moves a due entry to a later time if it is still the one
// the caller read (compare-and-set, like the claim), and may set the
// subscription's rollup mark. KEYS: the shard's due, the subscription's
// sub:. ARGV: subscription id, score as read, new score, rollup (ms, ""
// to leave it). Returns 1 when moved.
var postponeScript = redis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'rollup', ARGV[4])
end
return 1
`)

// Postpone moves a due subscription's entry to at, unless another replica
// claimed or moved it since it was read: quiet hours hold an instant
// alert until they end, and the daily cap until the rollup. A non-zero
// rollup marks the subscription: the claim at or after that time makes
// the rollup message (Claim.Kind KindRollup) and clears the mark.
func (s *Redis) Postpone(ctx context.Context, d Due, at, rollup time.Time) (bool, error) {
	t := s.k.of(d.SubscriptionID)
	r := ""
	if !rollup.IsZero() {
		r = strconv.FormatInt(ms(rollup), 10)
	}
	n, err := postponeScript.Run(ctx, s.rdb, []string{t.due(), t.sub(d.SubscriptionID)},
		d.SubscriptionID, strconv.FormatFloat(d.score, 'f', -1, 64), ms(at), r).Int()
	return n == 1, wrap("postpone", err)
}

// AlertsSent returns how many instant alerts each subscription had on
// its local day days[i] (schedule.Day's key), in one round trip.
func (s *Redis) AlertsSent(ctx context.Context, ids, days []string) ([]int, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.Get(ctx, s.k.of(id).alerts(id, days[i]))
	}
	if len(ids) > 0 {
		if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
			return nil, wrap("alerts sent", err)
		}
	}
	out := make([]int, len(ids))
	for i, c := range cmds {
		out[i], _ = c.Int()
	}
	return out, nil
}
