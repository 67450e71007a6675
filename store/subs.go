package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/schedule"
)

// Subscription statuses. Only active subscriptions are in the filter index
// and get pending items.
const (
	StatusPending      = "pending"      // waiting for the double opt-in
	StatusActive       = "active"       // matched and sent
	StatusPaused       = "paused"       // kept, not matched
	StatusUnsubscribed = "unsubscribed" // left through List-Unsubscribe or the manage page
	StatusSuppressed   = "suppressed"   // the address hard-bounced
)

// Subscription is a saved filter and where and when its matches go.
type Subscription struct {
	ID         string         `json:"id"`
	Email      string         `json:"email"`
	Filter     matcher.Filter `json:"filter"`
	Frequency  string         `json:"frequency"`
	Timezone   string         `json:"timezone"`
	SendHour   int            `json:"send_hour"`
	WeeklyDay  string         `json:"weekly_day,omitempty"`
	WebhookURL string         `json:"webhook_url,omitempty"`
	// Channels are where alerts go (store/channels.go): a non-empty
	// subset of AllChannels. A subscription stored before channels
	// existed has email, and webhook when it has a WebhookURL.
	Channels []string `json:"channels"`
	// SlackURL and DiscordURL are incoming-webhook URLs; they carry a
	// secret token, so they are never logged or shown in full.
	SlackURL   string `json:"-"`
	DiscordURL string `json:"-"`
	// TelegramChat is the chat bound by /start; 0 while not bound.
	TelegramChat int64 `json:"-"`
	// Disabled names the channels turned off because their destination
	// is gone (a deleted Slack or Discord webhook, a blocked bot), with
	// why; setting the channel up again clears it.
	Disabled map[string]string `json:"disabled_channels,omitempty"`
	// QuietHours hold instant alerts (nil: none); MaxAlertsPerDay caps
	// them per local day (0: unlimited).
	QuietHours      *schedule.QuietHours `json:"quiet_hours,omitempty"`
	MaxAlertsPerDay int                  `json:"max_alerts_per_day,omitempty"`
	// RollupAt is set while matches past the daily cap wait for their
	// rollup message (Postpone); it is the store's, never written back.
	RollupAt    time.Time `json:"-"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	// UnsubscribedAt is when it last became unsubscribed: the page after
	// an unsubscribe may switch it to weekly only shortly after.
	UnsubscribedAt time.Time `json:"unsubscribed_at,omitzero"`
	// TokenVersion is carried by every manage link; bumping it (RevokeLinks)
	// signs out every link issued before.
	TokenVersion int `json:"token_version"`
	// PendingWebhookSecret holds the webhook signing secret of a pending
	// subscription until it is confirmed and the endpoint registered, so
	// that an unconfirmed subscription leaves nothing behind when it
	// expires. Never shown.
	PendingWebhookSecret string `json:"-"`
}

// Schedule returns the subscription's calendar.
func (s *Subscription) Schedule() schedule.Spec {
	return schedule.Spec{Frequency: s.Frequency, Timezone: s.Timezone, SendHour: s.SendHour, WeeklyDay: s.WeeklyDay}
}

// NewID returns a fresh subscription id: "sub_" and 16 random base32 chars.
func NewID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return "sub_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// EmailHash is how an address appears in key names and suppression lists:
// never in clear.
func EmailHash(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(h[:16])
}

// fields returns the subscription's hash fields, and the fields to delete
// (channel settings turned off, which are not stored at all).
func (s *Subscription) fields() (map[string]any, []string, error) {
	f, err := json.Marshal(s.Filter)
	if err != nil {
		return nil, nil, err
	}
	m := map[string]any{
		"email": s.Email, "filter": string(f), "freq": s.Frequency, "tz": s.Timezone,
		"hour": s.SendHour, "wday": s.WeeklyDay, "webhook": s.WebhookURL, "status": s.Status,
		"created": ms(s.CreatedAt), "tv": s.TokenVersion,
	}
	if !s.ConfirmedAt.IsZero() {
		m["confirmed"] = ms(s.ConfirmedAt)
	}
	if !s.UnsubscribedAt.IsZero() {
		m["unsub_at"] = ms(s.UnsubscribedAt)
	}
	if s.PendingWebhookSecret != "" {
		m["whsec"] = s.PendingWebhookSecret
	}
	unset, err := s.channelFields(m)
	if err != nil {
		return nil, nil, err
	}
	return m, unset, nil
}

func parseSubscription(id string, h map[string]string) (*Subscription, error) {
	if len(h) == 0 || h["status"] == "" {
		return nil, ErrNotFound
	}
	s := &Subscription{ID: id, Email: h["email"], Frequency: h["freq"], Timezone: h["tz"],
		WeeklyDay: h["wday"], WebhookURL: h["webhook"], Status: h["status"], PendingWebhookSecret: h["whsec"]}
	if err := json.Unmarshal([]byte(h["filter"]), &s.Filter); err != nil {
		return nil, fmt.Errorf("subscription %s: bad filter: %w", id, err)
	}
	s.SendHour, _ = strconv.Atoi(h["hour"])
	s.TokenVersion, _ = strconv.Atoi(h["tv"])
	if n, err := strconv.ParseInt(h["created"], 10, 64); err == nil {
		s.CreatedAt = time.UnixMilli(n).UTC()
	}
	if n, err := strconv.ParseInt(h["confirmed"], 10, 64); err == nil {
		s.ConfirmedAt = time.UnixMilli(n).UTC()
	}
	if n, err := strconv.ParseInt(h["unsub_at"], 10, 64); err == nil {
		s.UnsubscribedAt = time.UnixMilli(n).UTC()
	}
	if err := s.parseChannelFields(h); err != nil {
		return nil, err
	}
	return s, nil
}

// CreateSubscription stores a new subscription. An empty ID gets NewID; an
// empty Status is pending. An active one goes live at once (index and
// schedule).
func (s *Redis) CreateSubscription(ctx context.Context, sub *Subscription, now time.Time) error {
	sub.fillNew(now)
	return s.save(ctx, sub, now, true)
}

// fillNew gives a new subscription its defaults: an ID (NewID), the
// pending status, and now as its creation time.
func (sub *Subscription) fillNew(now time.Time) {
	if sub.ID == "" {
		sub.ID = NewID()
	}
	if sub.Status == "" {
		sub.Status = StatusPending
	}
	if sub.CreatedAt.IsZero() {
		sub.CreatedAt = now.UTC()
	}
}

// GetSubscription returns the subscription with id, or ErrNotFound.
func (s *Redis) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.sub(id)).Result()
	if err != nil {
		return nil, wrap("get subscription", err)
	}
	return parseSubscription(id, h)
}

// SubscriptionsByEmail returns every subscription of an address.
func (s *Redis) SubscriptionsByEmail(ctx context.Context, email string) ([]*Subscription, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.email(EmailHash(email))).Result()
	if err != nil {
		return nil, wrap("subscriptions by email", err)
	}
	subs, err := s.GetSubscriptions(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []*Subscription
	for i, sub := range subs {
		if sub == nil {
			// An unconfirmed subscription that expired: forget its id.
			_ = s.rdb.SRem(ctx, s.k.email(EmailHash(email)), ids[i]).Err()
			continue
		}
		out = append(out, sub)
	}
	return out, nil
}

// CountConfirmed returns how many confirmed subscriptions (any status but
// pending) an address has: unconfirmed ones do not count toward the
// per-address cap, so a stranger cannot lock an address out.
func (s *Redis) CountConfirmed(ctx context.Context, email string) (int, error) {
	subs, err := s.SubscriptionsByEmail(ctx, email)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sub := range subs {
		if sub.Status != StatusPending {
			n++
		}
	}
	return n, nil
}

// UpdateSubscription applies change to the stored subscription and writes
// it back with everything derived from it in its shard (index entry,
// schedule) in one transaction, a concurrent change making it retry; then
// the address set and the change feed, which live in slots of their own.
func (s *Redis) UpdateSubscription(ctx context.Context, id string, now time.Time, change func(*Subscription) error) (*Subscription, error) {
	var out, was *Subscription
	for attempt := 0; attempt < 10; attempt++ {
		// The pending list is watched too: write decides the schedule from
		// its length, so a match recorded meanwhile (under the old
		// frequency) makes the transaction retry.
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			h, err := tx.HGetAll(ctx, s.k.sub(id)).Result()
			if err != nil {
				return err
			}
			sub, err := parseSubscription(id, h)
			if err != nil {
				return err
			}
			before := *sub
			if err := change(sub); err != nil {
				return err
			}
			sub.ID = id
			if sub.Status == StatusActive && before.Status != StatusActive && sub.ConfirmedAt.IsZero() {
				sub.ConfirmedAt = now.UTC()
			}
			out, was = sub, &before
			return s.write(ctx, tx, sub, &before, now)
		}, s.k.sub(id), s.k.pending(id))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err == nil {
			err = s.written(ctx, out, was)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, wrap("update subscription", err)
		}
		return out, err
	}
	return nil, wrap("update subscription", errors.New("too much contention"))
}

// Activate makes a subscription live: matched from now on and scheduled.
func (s *Redis) Activate(ctx context.Context, id string, now time.Time) (*Subscription, error) {
	return s.UpdateSubscription(ctx, id, now, func(sub *Subscription) error {
		sub.Status = StatusActive
		return nil
	})
}

func (s *Redis) save(ctx context.Context, sub *Subscription, now time.Time, isNew bool) error {
	// The address set first: an id in it whose subscription is missing is
	// dropped when read, while a subscription missing from it would be
	// unreachable by address.
	if err := s.addressSet(ctx, sub, nil); err != nil {
		return wrap("save subscription", err)
	}
	for attempt := 0; attempt < 10; attempt++ {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			if isNew {
				n, err := tx.Exists(ctx, s.k.sub(sub.ID)).Result()
				if err != nil {
					return err
				}
				if n > 0 {
					return fmt.Errorf("subscription %s already exists", sub.ID)
				}
			}
			return s.write(ctx, tx, sub, nil, now)
		}, s.k.sub(sub.ID))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err == nil {
			err = s.feedChange(ctx, sub, nil)
		}
		return wrap("save subscription", err)
	}
	return wrap("save subscription", errors.New("too much contention"))
}

// write stores sub and derives the rest of its shard from it, in one
// MULTI: the filter index entry (present iff active), the schedule
// (daily/weekly: the next send; instant: a window only while items are
// pending). The address set and the change feed are written apart
// (addressSet, feedChange): they are in slots of their own.
func (s *Redis) write(ctx context.Context, tx *redis.Tx, sub *Subscription, before *Subscription, now time.Time) error {
	// A chat stays bound only while Telegram is chosen: ticking it again
	// later needs a new /start, not the old chat.
	if !slices.Contains(sub.Channels, ChannelTelegram) {
		sub.TelegramChat = 0
	}
	fields, unset, err := sub.fields()
	if err != nil {
		return err
	}
	// A rollup mark waits only for an instant alert with a daily cap; one
	// left by a switch to daily or a cap removed would label a later
	// alert as the rollup.
	if sub.Frequency != schedule.Instant || sub.MaxAlertsPerDay == 0 {
		unset = append(unset, "rollup")
		sub.RollupAt = time.Time{}
	}
	t := s.k.of(sub.ID)
	var pending int64
	if sub.Status == StatusActive && sub.Frequency == schedule.Instant {
		if pending, err = tx.LLen(ctx, t.pending(sub.ID)).Result(); err != nil {
			return err
		}
	}
	// born: the shard's last job sequence number when the subscription
	// first became active. Jobs at or below it were never pushed to it
	// fresh, so its watermark does not say whether it got them (pushScript).
	// Only a first activation (a new subscription, or a pending one
	// confirmed): a resumed one got jobs before its pause, and one written
	// before this field existed has none, which keeps the watermark's rule.
	var born int64 = -1
	if sub.Status == StatusActive && (before == nil || before.Status == StatusPending) {
		if born, err = tx.Get(ctx, t.jobseq()).Int64(); err == redis.Nil {
			born, err = 0, nil
		}
		if err != nil {
			return err
		}
	}
	hasDue := false
	if before != nil {
		if _, err := tx.ZScore(ctx, t.due(), sub.ID).Result(); err == nil {
			hasDue = true
		} else if err != redis.Nil {
			return err
		}
	}
	_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, t.sub(sub.ID), fields)
		if len(unset) > 0 {
			p.HDel(ctx, t.sub(sub.ID), unset...)
		}
		if born >= 0 {
			p.HSetNX(ctx, t.sub(sub.ID), "born", born) // the first activation only
		}
		if sub.PendingWebhookSecret == "" && before != nil && before.PendingWebhookSecret != "" {
			p.HDel(ctx, t.sub(sub.ID), "whsec")
		}
		// An unconfirmed subscription expires with everything about it.
		if sub.Status == StatusPending {
			p.PExpire(ctx, t.sub(sub.ID), s.cfg.PendingTTL)
		} else if before == nil || before.Status == StatusPending {
			p.Persist(ctx, t.sub(sub.ID))
		}
		s.feedSet(ctx, p, t, sub, before)
		if sub.Status == StatusActive {
			p.HSet(ctx, t.filters(), sub.ID, fields["filter"])
			switch {
			case sub.Frequency == schedule.Instant && pending > 0:
				// Keep an open window; open one for items that waited.
				if !hasDue || before.Frequency != schedule.Instant || before.Status != StatusActive {
					p.ZAdd(ctx, t.due(), redis.Z{Score: float64(ms(now.Add(s.cfg.InstantWindow))), Member: sub.ID})
				}
			case sub.Frequency == schedule.Instant:
				p.ZRem(ctx, t.due(), sub.ID)
			default:
				keep := hasDue && before.Status == StatusActive && before.Schedule() == sub.Schedule()
				if !keep {
					p.ZAdd(ctx, t.due(), redis.Z{Score: float64(ms(sub.Schedule().First(now))), Member: sub.ID})
				}
			}
		} else {
			p.HDel(ctx, t.filters(), sub.ID)
			p.ZRem(ctx, t.due(), sub.ID)
		}
		return nil
	})
	return err
}

// written finishes an update once its shard's transaction is in: the
// address set's expiry and the change feed.
func (s *Redis) written(ctx context.Context, sub, before *Subscription) error {
	if err := s.addressSet(ctx, sub, before); err != nil {
		return err
	}
	return s.feedChange(ctx, sub, before)
}

// addressSet adds sub to its address's set and sets the set's expiry: it
// lives as long as its longest-lived member, and for ever once one is
// confirmed.
func (s *Redis) addressSet(ctx context.Context, sub, before *Subscription) error {
	emailKey := s.k.email(EmailHash(sub.Email))
	emailTTL, err := s.rdb.PTTL(ctx, emailKey).Result()
	if err != nil {
		return err
	}
	p := s.rdb.TxPipeline()
	p.SAdd(ctx, emailKey, sub.ID)
	if sub.Status == StatusPending {
		// PTTL is -2 for a missing key, -1 for one without expiry.
		if emailTTL == -2 || (emailTTL >= 0 && emailTTL < s.cfg.PendingTTL) {
			p.PExpire(ctx, emailKey, s.cfg.PendingTTL)
		}
	} else if before == nil || before.Status == StatusPending {
		p.Persist(ctx, emailKey)
	}
	_, err = p.Exec(ctx)
	return err
}

// feedChange tells every replica's index about a change of sub, when it
// touches the index (a new subscription, or an active one before or
// after).
func (s *Redis) feedChange(ctx context.Context, sub, before *Subscription) error {
	if before == nil || before.Status == StatusActive || sub.Status == StatusActive {
		return s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.k.feed(), MaxLen: s.cfg.FeedLength, Approx: true, Values: []any{"id", sub.ID}}).Err()
	}
	return nil
}

// DeleteSubscription removes a subscription and everything about it:
// pending items, schedule, index entry (one transaction in its shard),
// then its address set entry and the change feed; outbox digests stay to
// be dropped by the sender when it finds the subscription gone.
func (s *Redis) DeleteSubscription(ctx context.Context, id string) error {
	sub, err := s.GetSubscription(ctx, id)
	if err != nil {
		return err
	}
	t := s.k.of(id)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, t.sub(id), t.pending(id), t.older(id))
		p.ZRem(ctx, t.due(), id)
		if sub.Has(ChannelFeed) {
			p.SRem(ctx, t.feedSubs(), id)
			p.Incr(ctx, t.feedVer())
		}
		p.HDel(ctx, t.filters(), id)
		return nil
	})
	if err == nil {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SRem(ctx, s.k.email(EmailHash(sub.Email)), id)
			if sub.TelegramChat != 0 {
				p.SRem(ctx, s.k.telegramChat(sub.TelegramChat), id)
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: s.k.feed(), MaxLen: s.cfg.FeedLength, Approx: true, Values: []any{"id", id}})
			return nil
		})
	}
	return wrap("delete subscription", err)
}

// DeleteAllForEmail deletes every subscription of an address and every key
// about it (its bounce count and its per-address rate limit too, under the
// current and the previous address keys). When suppress is true the
// address is kept as a keyed hash only, so it is never mailed again.
func (s *Redis) DeleteAllForEmail(ctx context.Context, email string, suppress bool) (int, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.email(EmailHash(email))).Result()
	if err != nil {
		return 0, wrap("delete all", err)
	}
	for _, id := range ids {
		if err := s.DeleteSubscription(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return 0, err
		}
	}
	addr := s.addressKey(email)
	p := s.rdb.Pipeline() // several slots (address set, rate limits, bounces, suppressed); each command idempotent
	p.Del(ctx, s.k.email(EmailHash(email)))
	for _, a := range append([]string{addr}, s.previousAddressKeys(email)...) {
		p.Del(ctx, s.k.rate(RateAddress, a), s.k.rate(RateLinks, a))
		p.HDel(ctx, s.k.bounces(), a)
	}
	p.HDel(ctx, s.k.bounces(), EmailHash(email))
	if suppress {
		p.SAdd(ctx, s.k.suppressed(), addr)
	}
	_, err = p.Exec(ctx)
	return len(ids), wrap("delete all", err)
}

// suppressedScript reports whether any of ARGV is in the suppression set
// KEYS[1]: ARGV[1] the current keyed hash, ARGV[2] the plain one of
// entries written before keyed hashes, ARGV[3..] the previous keyed
// hashes. A hit under a previous key only is written under the current
// one too, so that the entry outlives the previous secret.
var suppressedScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 or redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then
  return 1
end
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1 then
    redis.call('SADD', KEYS[1], ARGV[1])
    return 1
  end
end
return 0
`)

// IsSuppressed reports whether an address must never be mailed: its
// mailbox (CanonicalEmail) is in the suppression list, under its keyed
// hash, under its keyed hash of a previous secret (then it is written
// under the current one too) or, for entries written before keyed hashes,
// its plain one.
func (s *Redis) IsSuppressed(ctx context.Context, email string) (bool, error) {
	prev := s.previousAddressKeys(email)
	if len(prev) == 0 {
		in, err := s.rdb.SMIsMember(ctx, s.k.suppressed(), s.addressKey(email), EmailHash(email)).Result()
		if err != nil {
			return false, wrap("is suppressed", err)
		}
		return in[0] || in[1], nil
	}
	args := append([]any{s.addressKey(email), EmailHash(email)}, toAny(prev)...)
	n, err := runScript(ctx, s.rdb, suppressedScript, []string{s.k.suppressed()}, args...).Int()
	if err != nil {
		return false, wrap("is suppressed", err)
	}
	return n == 1, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = v
	}
	return out
}

// RecordBounce counts a hard bounce for an address (under the current
// address key; the count includes those under previous keys); at limit the
// address is suppressed and each of its subscriptions stops. It reports
// whether the address is now suppressed.
func (s *Redis) RecordBounce(ctx context.Context, email string, limit int, now time.Time) (bool, error) {
	addr := s.addressKey(email)
	n, err := s.rdb.HIncrBy(ctx, s.k.bounces(), addr, 1).Result()
	if err != nil {
		return false, wrap("record bounce", err)
	}
	if prev := s.previousAddressKeys(email); len(prev) > 0 {
		counts, err := s.rdb.HMGet(ctx, s.k.bounces(), prev...).Result()
		if err != nil {
			return false, wrap("record bounce", err)
		}
		for _, c := range counts {
			if v, ok := c.(string); ok {
				m, _ := strconv.ParseInt(v, 10, 64)
				n += m
			}
		}
	}
	if limit <= 0 || n < int64(limit) {
		return false, nil
	}
	if err := s.rdb.SAdd(ctx, s.k.suppressed(), addr).Err(); err != nil {
		return false, wrap("suppress", err)
	}
	ids, err := s.rdb.SMembers(ctx, s.k.email(EmailHash(email))).Result()
	if err != nil {
		return true, wrap("suppress", err)
	}
	for _, id := range ids {
		_, err := s.UpdateSubscription(ctx, id, now, func(sub *Subscription) error {
			sub.Status = StatusSuppressed
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return true, err
		}
	}
	return true, nil
}

// GetSubscriptions reads many subscriptions in one round trip; a missing
// one is nil in the result.
func (s *Redis) GetSubscriptions(ctx context.Context, ids []string) ([]*Subscription, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.k.sub(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, wrap("get subscriptions", err)
	}
	out := make([]*Subscription, len(ids))
	for i, c := range cmds {
		sub, err := parseSubscription(ids[i], c.Val())
		if err == nil {
			out[i] = sub
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}
