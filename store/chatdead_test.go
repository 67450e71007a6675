package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jobalert/jobalert/store"
)

func TestDigestChannelLedger(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	_, d := instantDue(t, s)
	id := store.DigestID(d.SubscriptionID, d.At)
	if res, err := s.ClaimDue(ctx, []store.Claim{{Due: d, DigestID: id, LeaseUntil: t0.Add(time.Hour)}}, t0.Add(time.Hour)); err != nil || res[0] != store.Claimed {
		t.Fatalf("claim: %v, %v", res, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.MarkDigest(ctx, id, "email"))
	must(s.MarkDigest(ctx, id, "slack"))
	must(s.SetDigestSent(ctx, id, "discord", 2, ""))
	for want := 1; want <= 2; want++ {
		n, err := s.FailDigestChannel(ctx, id, "discord")
		must(err)
		if n != want {
			t.Errorf("FailDigestChannel: got %d, want %d", n, want)
		}
	}
	rec, err := s.Digest(ctx, id)
	must(err)
	if !rec.EmailDone || rec.WebhookDone || !rec.Done["slack"] || rec.Done["discord"] || rec.Sent["discord"] != 2 ||
		rec.ChannelAttempts["discord"] != 2 || rec.Kind != "" || len(rec.Messages) != 0 || len(rec.Seqs) != 1 {
		t.Errorf("digest: got %+v", rec)
	}
}

func TestChatDeadLetterRoundTripAndReplay(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	died := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
	dl := store.ChatDeadLetter{DigestID: "sub_abc.k1", SubscriptionID: "sub_abc", Channel: "discord",
		Reason: "HTTP 400 invalid form body", Attempts: 1, DiedAt: died, Message: `{"Kind":0,"More":3}`, Sent: 1}
	if err := s.AddChatDeadLetter(ctx, dl, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.ChatDeadLetters(ctx, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ChatDeadLetters: got %+v, %v; want 1", got, err)
	}
	want := dl
	want.ID = store.ChatDeadLetterID(dl.DigestID, dl.Channel)
	if got[0] != want {
		t.Errorf("read back: got %+v, want %+v", got[0], want)
	}
	if l, _ := s.ChatDeadLetters(ctx, 0); len(l) != 0 {
		t.Errorf("ChatDeadLetters(0): got %d, want none", len(l))
	}

	did, err := s.ReplayChatDeadLetter(ctx, want.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Digest(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != store.KindReplay || rec.SubscriptionID != "sub_abc" || rec.Messages["discord"] != dl.Message || len(rec.Messages) != 1 ||
		!rec.EmailDone || !rec.WebhookDone || !rec.Done["slack"] || !rec.Done["telegram"] || rec.Done["discord"] || rec.Sent["discord"] != 1 || len(rec.Seqs) != 0 {
		t.Errorf("replay digest: got %+v, want a replay of the discord message only, resuming after 1", rec)
	}
	ids, err := s.LeaseOutbox(ctx, time.Now().Add(time.Second), time.Now().Add(time.Minute), 10)
	if err != nil || len(ids) != 1 || ids[0] != did {
		t.Errorf("outbox: got %v, %v; want the replay %s", ids, err, did)
	}
	if l, _ := s.ChatDeadLetters(ctx, 10); len(l) != 0 {
		t.Errorf("dead letters after the replay: got %d, want none", len(l))
	}
	if _, err := s.ReplayChatDeadLetter(ctx, want.ID, time.Now()); !errors.Is(err, store.ErrNotDeadLetter) {
		t.Errorf("second replay: got %v, want ErrNotDeadLetter", err)
	}
}

func TestChatDeadLettersNewestFirstAndExpired(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	now := time.Now()
	for i, age := range []time.Duration{3 * time.Hour, 30 * time.Minute, time.Minute} {
		dl := store.ChatDeadLetter{DigestID: "sub_x.k" + string(rune('a'+i)), SubscriptionID: "sub_x", Channel: "slack", DiedAt: now.Add(-age), Message: "{}"}
		if err := s.AddChatDeadLetter(ctx, dl, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ChatDeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The one that died 3 hours ago is past the hour's TTL: the index
	// forgot it when a newer one was added.
	if len(got) != 2 || got[0].DigestID != "sub_x.kc" || got[1].DigestID != "sub_x.kb" {
		t.Errorf("dead letters: got %+v, want kc then kb", got)
	}
}

func TestReplayingTwiceQueuesOneDigest(t *testing.T) {
	s := mustStore(t, time.Minute)
	ctx := context.Background()
	sub := mustSub(t, s, "daily")
	dl := store.ChatDeadLetter{DigestID: sub.ID + ".abc", SubscriptionID: sub.ID, Channel: "slack", Reason: "HTTP 400",
		Attempts: 1, DiedAt: t0, Message: `{"Jobs":[{"ID":"j1"}]}`}
	if err := s.AddChatDeadLetter(ctx, dl, time.Hour); err != nil {
		t.Fatal(err)
	}
	id := store.ChatDeadLetterID(dl.DigestID, "slack")
	// Two requests that both read the dead letter before either removed
	// it: simulated by adding it back after the first replay.
	first, err := s.ReplayChatDeadLetter(ctx, id, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddChatDeadLetter(ctx, dl, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.ClientForTest().HSet(ctx, s.ChatDeadLetterKeyForTest(id), "replay", first).Err(); err != nil {
		t.Fatal(err)
	}
	second, err := s.ReplayChatDeadLetter(ctx, id, t0)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second replay: got digest %s, want the first's %s", second, first)
	}
	if n, _ := s.OutboxLen(ctx); n != 1 {
		t.Errorf("outbox: got %d digests, want 1", n)
	}
}
