package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
)

func getSub(t *testing.T, s *store.Redis, id string) *store.Subscription {
	t.Helper()
	sub, err := s.GetSubscription(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func update(t *testing.T, s *store.Redis, id string, now time.Time, change func(*store.Subscription)) {
	t.Helper()
	if _, err := s.UpdateSubscription(context.Background(), id, now, func(sub *store.Subscription) error {
		change(sub)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestChannelSettingsRoundTrip(t *testing.T) {
	s := mustStore(t, time.Minute)
	sub := mustSub(t, s, "instant")
	update(t, s, sub.ID, t0, func(x *store.Subscription) {
		x.Channels = []string{"email", "slack", "discord", "telegram", "feed"}
		x.SlackURL = "https://hooks.slack.com/services/T1/B1/x"
		x.DiscordURL = "https://discord.com/api/webhooks/1/y"
		x.TelegramChat = -100123
		x.Disabled = map[string]string{"discord": "HTTP 404 Unknown Webhook"}
		x.QuietHours = &schedule.QuietHours{Start: "22:00", End: "07:00"}
		x.MaxAlertsPerDay = 3
	})
	got := getSub(t, s, sub.ID)
	if fmt.Sprint(got.Channels) != "[email slack discord telegram feed]" || got.SlackURL != "https://hooks.slack.com/services/T1/B1/x" ||
		got.DiscordURL != "https://discord.com/api/webhooks/1/y" || got.TelegramChat != -100123 ||
		got.Disabled["discord"] != "HTTP 404 Unknown Webhook" || got.QuietHours == nil || *got.QuietHours != (schedule.QuietHours{Start: "22:00", End: "07:00"}) ||
		got.MaxAlertsPerDay != 3 || !got.RollupAt.IsZero() {
		t.Fatalf("read back: got %+v", got)
	}
	if !got.Has("slack") || got.Has("discord") || got.Has("webhook") {
		t.Errorf("Has: got slack %v discord %v webhook %v, want true false false", got.Has("slack"), got.Has("discord"), got.Has("webhook"))
	}
	// Turning settings off clears them.
	update(t, s, sub.ID, t0, func(x *store.Subscription) {
		x.Channels = []string{"email"}
		x.SlackURL, x.DiscordURL, x.TelegramChat, x.Disabled, x.QuietHours, x.MaxAlertsPerDay = "", "", 0, nil, nil, 0
	})
	got = getSub(t, s, sub.ID)
	if fmt.Sprint(got.Channels) != "[email]" || got.SlackURL != "" || got.DiscordURL != "" || got.TelegramChat != 0 ||
		len(got.Disabled) != 0 || got.QuietHours != nil || got.MaxAlertsPerDay != 0 {
		t.Fatalf("after clearing: got %+v", got)
	}
}

func TestNormalizeChannels(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "[email]"},
		{[]string{"feed", " Slack ", "email", "slack"}, "[email slack feed]"},
		{[]string{"pigeon"}, "error"},
	} {
		got, err := store.NormalizeChannels(tc.in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != tc.want {
			t.Errorf("NormalizeChannels(%q): got %s (%v), want %s", tc.in, s, err, tc.want)
		}
	}
}

// A subscription stored before channels existed has no "ch" field: it
// delivers by email, and to its webhook when it has one.
func TestLegacySubscriptionChannels(t *testing.T) {
	s := mustStore(t, time.Minute)
	plain := mustSub(t, s, "daily")
	hooked := mustSub(t, s, "daily")
	update(t, s, hooked.ID, t0, func(x *store.Subscription) { x.WebhookURL = "https://example.com/hook" })
	for _, id := range []string{plain.ID, hooked.ID} {
		k := store.KeysOf(s.PrefixForTest(), 0, id).Sub
		if err := s.ClientForTest().HDel(context.Background(), k, "ch", "slack", "discord", "tg", "chx", "quiet", "cap").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := getSub(t, s, plain.ID).Channels; fmt.Sprint(got) != "[email]" {
		t.Errorf("legacy without a webhook: got %v, want [email]", got)
	}
	if got := getSub(t, s, hooked.ID).Channels; fmt.Sprint(got) != "[email webhook]" {
		t.Errorf("legacy with a webhook: got %v, want [email webhook]", got)
	}
}

func TestDisableChannelReportsOnce(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	sub := mustSub(t, s, "daily")
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Channels = []string{"email", "slack"} })
	for i, want := range []bool{true, false} {
		was, err := s.DisableChannel(ctx, sub.ID, "slack", "HTTP 404 no_service", t0)
		if err != nil || was != want {
			t.Fatalf("DisableChannel #%d: got %v, %v; want %v", i+1, was, err, want)
		}
	}
	got := getSub(t, s, sub.ID)
	if got.Has("slack") || !got.Has("email") || got.Disabled["slack"] != "HTTP 404 no_service" || !slices.Contains(got.Channels, "slack") {
		t.Errorf("after: got channels %v disabled %v, want slack chosen but off, with the reason", got.Channels, got.Disabled)
	}
	if was, err := s.DisableChannel(ctx, sub.ID, "discord", "x", t0); err != nil || was {
		t.Errorf("DisableChannel of a channel it does not have: got %v, %v; want false", was, err)
	}
	if _, err := s.DisableChannel(ctx, "sub_missing", "slack", "x", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DisableChannel of a missing subscription: got %v, want ErrNotFound", err)
	}
}

func TestBindAndUnbindTelegram(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	a, b, c := mustSub(t, s, "daily"), mustSub(t, s, "daily"), mustSub(t, s, "daily")
	update(t, s, a.ID, t0, func(x *store.Subscription) {
		x.Channels = []string{"telegram"}
		x.Disabled = map[string]string{"telegram": "blocked"}
	})
	// b has not chosen Telegram: an old start link must not turn it on.
	if err := s.BindTelegram(ctx, b.ID, 77, t0); !errors.Is(err, store.ErrTelegramNotChosen) {
		t.Fatalf("BindTelegram without the channel: got %v, want ErrTelegramNotChosen", err)
	}
	for _, x := range []string{b.ID, c.ID} {
		update(t, s, x, t0, func(x *store.Subscription) { x.Channels = []string{"email", "telegram"} })
	}
	for _, id := range []string{a.ID, b.ID} {
		if err := s.BindTelegram(ctx, id, 77, t0); err != nil {
			t.Fatal(err)
		}
	}
	if got := getSub(t, s, a.ID); !got.Has("telegram") || got.TelegramChat != 77 || fmt.Sprint(got.Channels) != "[telegram]" {
		t.Errorf("a bound: got channels %v chat %d disabled %v, want telegram on, chat 77", got.Channels, got.TelegramChat, got.Disabled)
	}
	if got := getSub(t, s, b.ID); fmt.Sprint(got.Channels) != "[email telegram]" || got.TelegramChat != 77 {
		t.Errorf("b bound: got channels %v chat %d, want [email telegram], 77", got.Channels, got.TelegramChat)
	}
	// c moves from chat 88 to 77 and back to 88: 77's /stop leaves it.
	for _, chat := range []int64{88, 77, 88} {
		if err := s.BindTelegram(ctx, c.ID, chat, t0); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.UnbindTelegram(ctx, 77, t0)
	if err != nil || n != 2 {
		t.Fatalf("UnbindTelegram(77): got %d, %v; want 2", n, err)
	}
	if got := getSub(t, s, a.ID); fmt.Sprint(got.Channels) != "[email]" || got.TelegramChat != 0 {
		t.Errorf("a after /stop: got channels %v chat %d, want [email] (never none), 0", got.Channels, got.TelegramChat)
	}
	if got := getSub(t, s, b.ID); fmt.Sprint(got.Channels) != "[email]" || got.TelegramChat != 0 {
		t.Errorf("b after /stop: got channels %v chat %d, want [email], 0", got.Channels, got.TelegramChat)
	}
	if got := getSub(t, s, c.ID); !got.Has("telegram") || got.TelegramChat != 88 {
		t.Errorf("c after 77's /stop: got channels %v chat %d, want telegram on chat 88", got.Channels, got.TelegramChat)
	}
	if n, err := s.UnbindTelegram(ctx, 77, t0); err != nil || n != 0 {
		t.Errorf("UnbindTelegram(77) again: got %d, %v; want 0", n, err)
	}
}

func TestFeedSetFollowsStatusAndChannels(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	sub := mustSub(t, s, "daily")
	shard := s.ShardOf(sub.ID)
	last := int64(-1)
	check := func(step string, want bool) {
		t.Helper()
		ids, ver, err := s.FeedSubscribers(ctx, shard)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ids, sub.ID) != want {
			t.Errorf("%s: in the feed set %v, want %v", step, slices.Contains(ids, sub.ID), want)
		}
		if ver == last {
			t.Errorf("%s: version stayed %d, want it moved", step, ver)
		}
		vs, err := s.FeedVersions(ctx)
		if err != nil || vs[shard] != ver {
			t.Errorf("%s: FeedVersions[%d] = %d (%v), want %d", step, shard, vs[shard], err, ver)
		}
		last = ver
	}
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Channels = []string{"email", "feed"} })
	check("feed chosen", true)
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Status = store.StatusPaused })
	check("paused", false)
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Status = store.StatusActive })
	check("resumed", true)
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Channels = []string{"email"} })
	check("feed removed", false)
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Channels = []string{"feed"} })
	check("feed again", true)
	if _, err := s.DisableChannel(ctx, sub.ID, "feed", "test", t0); err != nil {
		t.Fatal(err)
	}
	check("feed disabled", false)
	update(t, s, sub.ID, t0, func(x *store.Subscription) { x.Disabled = nil })
	check("feed enabled", true)
	if err := s.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	check("deleted", false)
}

// instantDue makes an instant subscription with one pending match and
// returns its due entry.
func instantDue(t *testing.T, s *store.Redis) (*store.Subscription, store.Due) {
	t.Helper()
	sub := mustSub(t, s, "instant")
	record(t, s, t0, ev(jobevent.Created, "j1", sub.ID))
	due, err := s.DueAt(context.Background(), t0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].SubscriptionID != sub.ID {
		t.Fatalf("DueAt: got %+v, %v; want the subscription", due, err)
	}
	return sub, due[0]
}

func TestPostponeIsACompareAndSet(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	sub, d := instantDue(t, s)
	at := t0.Add(10 * time.Hour)
	if ok, err := s.Postpone(ctx, d, at, at); err != nil || !ok {
		t.Fatalf("Postpone: got %v, %v; want moved", ok, err)
	}
	if got := getSub(t, s, sub.ID).RollupAt; !got.Equal(at) {
		t.Errorf("rollup mark: got %v, want %v", got, at)
	}
	if due, _ := s.DueAt(ctx, at.Add(-time.Millisecond), 10); len(due) != 0 {
		t.Errorf("due before the new time: got %+v, want none", due)
	}
	// The entry as read before is stale now: neither a second postpone
	// nor a claim of it does anything.
	if ok, err := s.Postpone(ctx, d, at.Add(time.Hour), time.Time{}); err != nil || ok {
		t.Errorf("Postpone of a stale entry: got %v, %v; want not moved", ok, err)
	}
	res, err := s.ClaimDue(ctx, []store.Claim{{Due: d, DigestID: store.DigestID(sub.ID, d.At), LeaseUntil: t0.Add(time.Hour)}}, t0)
	if err != nil || res[0] != store.NotClaimed {
		t.Errorf("claim of the stale entry: got %v, %v; want NotClaimed", res, err)
	}
	due, err := s.DueAt(ctx, at, 10)
	if err != nil || len(due) != 1 || !due[0].At.Equal(at) {
		t.Fatalf("DueAt at the new time: got %+v, %v; want the entry at %v", due, err, at)
	}
	// Without a rollup time, the mark stays as it was.
	if ok, err := s.Postpone(ctx, due[0], at.Add(time.Hour), time.Time{}); err != nil || !ok {
		t.Fatalf("Postpone: got %v, %v; want moved", ok, err)
	}
	if got := getSub(t, s, sub.ID).RollupAt; !got.Equal(at) {
		t.Errorf("rollup mark after a postpone without one: got %v, want %v kept", got, at)
	}
}

func TestClaimKindAndDailyCount(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	sub, d := instantDue(t, s)
	roll := t0.Add(time.Hour)
	if _, err := s.Postpone(ctx, d, roll, roll); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueAt(ctx, roll, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueAt: got %+v, %v", due, err)
	}
	// The count expires by Redis's clock: the day is in the future.
	day := "2036-12-01"
	until := time.Now().Add(48 * time.Hour)
	claims := []store.Claim{{Due: due[0], DigestID: store.DigestID(sub.ID, due[0].At), LeaseUntil: roll.Add(time.Minute), Kind: store.KindRollup}}
	if res, err := s.ClaimDue(ctx, claims, roll); err != nil || res[0] != store.Claimed {
		t.Fatalf("claim: got %v, %v; want Claimed", res, err)
	}
	rec, err := s.Digest(ctx, claims[0].DigestID)
	if err != nil || rec.Kind != store.KindRollup {
		t.Fatalf("digest: got %+v, %v; want kind rollup", rec, err)
	}
	if got := getSub(t, s, sub.ID).RollupAt; !got.IsZero() {
		t.Errorf("rollup mark after the rollup claim: got %v, want cleared", got)
	}
	if n, _ := s.AlertsSent(ctx, []string{sub.ID}, []string{day}); n[0] != 0 {
		t.Errorf("count after a rollup claim: got %d, want 0 (not counted)", n[0])
	}

	// Two counted alerts.
	for i := range 2 {
		now := roll.Add(time.Duration(i+1) * time.Hour)
		record(t, s, now, ev(jobevent.Created, fmt.Sprintf("k%d", i), sub.ID))
		due, err := s.DueAt(ctx, now.Add(time.Minute), 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("DueAt: got %+v, %v", due, err)
		}
		c := []store.Claim{{Due: due[0], DigestID: store.DigestID(sub.ID, due[0].At), LeaseUntil: now.Add(2 * time.Minute), CountDay: day, CountUntil: until}}
		if res, err := s.ClaimDue(ctx, c, now.Add(time.Minute)); err != nil || res[0] != store.Claimed {
			t.Fatalf("claim %d: got %v, %v", i, res, err)
		}
		if rec, _ := s.Digest(ctx, c[0].DigestID); rec.Kind != "" {
			t.Errorf("counted alert's kind: got %q, want an alert", rec.Kind)
		}
	}
	n, err := s.AlertsSent(ctx, []string{sub.ID, sub.ID, "sub_other"}, []string{day, "2036-12-02", day})
	if err != nil || fmt.Sprint(n) != "[2 0 0]" {
		t.Errorf("AlertsSent: got %v, %v; want [2 0 0]", n, err)
	}
	if n, err := s.AlertsSent(ctx, nil, nil); err != nil || len(n) != 0 {
		t.Errorf("AlertsSent of nothing: got %v, %v", n, err)
	}
}
