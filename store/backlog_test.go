package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/store"
)

func backlog(t *testing.T, s *store.Redis, now time.Time) store.Backlog {
	t.Helper()
	b, err := s.Backlog(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBacklogCountsWhatWaits(t *testing.T) {
	s := mustStore(t, time.Minute)
	if got := backlog(t, s, t0); got != (store.Backlog{}) {
		t.Fatalf("empty: got %+v, want zeros", got)
	}
	a, b, c := mustSub(t, s, "instant"), mustSub(t, s, "instant"), mustSub(t, s, "instant")
	record(t, s, t0, ev(jobevent.Created, "j1", a.ID, b.ID), ev(jobevent.Created, "j2", a.ID, b.ID, c.ID))

	// Three instant windows open until t0+1m, with 2+2+1 items.
	want := store.Backlog{Scheduled: 3, PendingItems: 5}
	if got := backlog(t, s, t0); got != want {
		t.Fatalf("at t0: got %+v, want %+v", got, want)
	}
	late := t0.Add(3 * time.Minute)
	want.Due, want.OldestDue = 3, 2*time.Minute
	if got := backlog(t, s, late); got != want {
		t.Fatalf("two minutes past the windows: got %+v, want %+v", got, want)
	}

	// One claimed: its items move to a digest in the outbox.
	due, err := s.DueAt(context.Background(), late, 1)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueAt: got %v %v, want one", due, err)
	}
	res, err := s.ClaimDue(context.Background(), []store.Claim{{Due: due[0], DigestID: store.DigestID(due[0].SubscriptionID, due[0].At),
		LeaseUntil: late.Add(time.Minute)}}, late)
	if err != nil || len(res) != 1 || res[0] != store.Claimed {
		t.Fatalf("ClaimDue: got %v %v, want claimed", res, err)
	}
	claimedItems := map[string]int64{a.ID: 2, b.ID: 2, c.ID: 1}[due[0].SubscriptionID]
	want = store.Backlog{Scheduled: 2, Due: 2, OldestDue: 2 * time.Minute, Outbox: 1, PendingItems: 5 - claimedItems}
	if got := backlog(t, s, late); got != want {
		t.Fatalf("after a claim: got %+v, want %+v", got, want)
	}
}

// Past BacklogSample scheduled subscriptions the pending items are
// estimated from a sample: with every list the same length, exactly.
func TestBacklogEstimatesPendingItemsFromASample(t *testing.T) {
	s := mustStore(t, time.Minute)
	n := store.BacklogSample + store.BacklogSample/2
	ids := make([]string, n)
	for i := range ids {
		ids[i] = mustSub(t, s, "instant").ID
	}
	record(t, s, t0, ev(jobevent.Created, "j1", ids...), ev(jobevent.Created, "j2", ids...))
	got := backlog(t, s, t0)
	if got.Scheduled != int64(n) || got.PendingItems != int64(2*n) {
		t.Fatalf("got %+v, want %d scheduled and %d pending items", got, n, 2*n)
	}
}
