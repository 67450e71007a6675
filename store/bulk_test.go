package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

func TestImportSubscriptionsStoresWhatCreateDoes(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	subs := []*store.Subscription{
		{ID: "i1", Email: "a@example.com", Filter: matcher.Filter{Keywords: "backend"}, Frequency: "instant", Timezone: "UTC", SendHour: 8, Status: store.StatusActive},
		{ID: "d1", Email: "b@example.com", Filter: matcher.Filter{Keywords: "data"}, Frequency: "daily", Timezone: "Europe/Paris", SendHour: 9, Status: store.StatusActive},
		{ID: "p1", Email: "c@example.com", Filter: matcher.Filter{Keywords: "sre"}, Frequency: "weekly", Timezone: "UTC", SendHour: 8, WeeklyDay: "monday"},
	}
	if err := s.ImportSubscriptions(ctx, subs, t0); err != nil {
		t.Fatal(err)
	}
	for _, want := range subs {
		got, err := s.GetSubscription(ctx, want.ID)
		if err != nil {
			t.Fatalf("get %s: %v", want.ID, err)
		}
		if got.Email != want.Email || got.Frequency != want.Frequency || got.Filter.Keywords != want.Filter.Keywords || got.Status != want.Status {
			t.Fatalf("get %s: got %+v, want %+v", want.ID, got, want)
		}
	}
	if got := subs[2].Status; got != store.StatusPending {
		t.Fatalf("empty status: got %q, want pending", got)
	}
	ix := &fakeIndex{ids: map[string]matcher.Filter{}}
	if n, err := s.LoadFilters(ctx, ix, testenv.Logger(t)); err != nil || n != 2 || !ix.has("i1") || !ix.has("d1") {
		t.Fatalf("LoadFilters: got %d %v, want the two active subscriptions", n, err)
	}
	due, err := s.DueAt(ctx, t0.Add(48*time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].SubscriptionID != "d1" {
		t.Fatalf("due: got %v %v, want the daily subscription only", due, err)
	}
	if n, _ := s.CountConfirmed(ctx, "A@example.com"); n != 1 {
		t.Fatalf("count by email: got %d, want 1", n)
	}
}

// A batch matching more than one pipeline carries is recorded in several
// pipelines, in event order, with one result per event.
func TestRecordSplitsLargeBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 30,000 subscriptions")
	}
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	const n = 30_000
	subs := make([]*store.Subscription, n)
	ids := make([]string, n)
	for i := range subs {
		ids[i] = fmt.Sprintf("s%05d", i)
		subs[i] = &store.Subscription{ID: ids[i], Email: ids[i] + "@example.com", Filter: matcher.Filter{Keywords: "backend"},
			Frequency: "instant", Timezone: "UTC", SendHour: 8, Status: store.StatusActive}
	}
	if err := s.ImportSubscriptions(ctx, subs, t0); err != nil {
		t.Fatal(err)
	}
	res := record(t, s, t0, ev(jobevent.Created, "j1", ids...), ev(jobevent.Created, "j2", ids...), ev(jobevent.Created, "j1", ids[:10]...))
	want := []store.RecordResult{{Seq: 1, Recorded: n}, {Seq: 2, Recorded: n}, {Seq: 1, Recorded: 0}}
	if len(res) != len(want) {
		t.Fatalf("results: got %d, want %d", len(res), len(want))
	}
	for i := range want {
		if res[i] != want[i] {
			t.Fatalf("result %d: got %+v, want %+v", i, res[i], want[i])
		}
	}
	if got := pending(t, s, ids[n-1]); len(got) != 2 || got[0] != "2" {
		t.Fatalf("pending: got %v, want [2 1]", got)
	}
	due, err := s.DueAt(ctx, t0.Add(time.Minute), 2*n)
	if err != nil || len(due) != n {
		t.Fatalf("due: got %d %v, want a window for each of the %d subscriptions", len(due), err, n)
	}
}
