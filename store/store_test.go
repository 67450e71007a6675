package store_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

func mustStore(t *testing.T, window time.Duration) *store.Redis {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return store.New(rdb, store.Config{Prefix: prefix, InstantWindow: window, PendingLimit: 5})
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func mustSub(t *testing.T, s *store.Redis, freq string) *store.Subscription {
	t.Helper()
	sub := &store.Subscription{Email: "ada@example.com", Filter: matcher.Filter{Keywords: "backend"},
		Frequency: freq, Timezone: "America/Los_Angeles", SendHour: 8, WeeklyDay: "monday", Status: store.StatusActive}
	if err := s.CreateSubscription(context.Background(), sub, t0); err != nil {
		t.Fatal(err)
	}
	return sub
}

func ev(kind jobevent.Kind, id string, subs ...string) jobevent.Matched {
	return jobevent.Matched{Event: jobevent.Event{Kind: kind, Job: matcher.Job{ID: id, Title: "Backend Engineer " + id, Company: "Acme"}}, SubscriptionIDs: subs}
}

func pending(t *testing.T, s *store.Redis, sub string) []string {
	t.Helper()
	v, err := s.PendingItems(context.Background(), sub)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(v) // newest first
	return v
}

func record(t *testing.T, s *store.Redis, now time.Time, batch ...jobevent.Matched) []store.RecordResult {
	t.Helper()
	res, err := s.RecordResults(context.Background(), batch, now)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRecordIsIdempotentAcrossRedeliveryAndUpdates(t *testing.T) {
	s := mustStore(t, time.Minute)
	a := mustSub(t, s, "instant")
	b := mustSub(t, s, "instant")

	res := record(t, s, t0, ev(jobevent.Created, "j1", a.ID))
	if res[0].Recorded != 1 {
		t.Fatalf("first record: got %d recorded, want 1", res[0].Recorded)
	}
	// Redelivery of the same event, then an update matching both.
	res = record(t, s, t0, ev(jobevent.Created, "j1", a.ID), ev(jobevent.Updated, "j1", a.ID, b.ID))
	if res[0].Recorded != 0 || res[1].Recorded != 1 {
		t.Fatalf("redelivery+update: got %+v, want 0 then 1 (only b newly matches)", res)
	}
	if got := pending(t, s, a.ID); len(got) != 1 {
		t.Fatalf("pending a: got %v, want one item", got)
	}
	if got := pending(t, s, b.ID); len(got) != 1 {
		t.Fatalf("pending b: got %v, want one item", got)
	}
}

func TestUpdateAfterSentDigestDoesNotRealert(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	a := mustSub(t, s, "instant")
	b := mustSub(t, s, "instant")
	record(t, s, t0, ev(jobevent.Created, "j1", a.ID))
	// a's window closes and its digest is claimed (as sent).
	due, err := s.DueAt(ctx, t0.Add(time.Minute), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: got %v %v, want one entry", due, err)
	}
	claims := []store.Claim{{Due: due[0], DigestID: "d1", LeaseUntil: time.Now().Add(time.Minute)}}
	if r, err := s.ClaimDue(ctx, claims, t0.Add(time.Minute)); err != nil || r[0] != store.Claimed {
		t.Fatalf("claim: got %v %v, want Claimed", r, err)
	}
	// b had not matched j1 and no digest of b covered it: an update that
	// now matches b alerts b; a, whose digest covered j1, gets nothing.
	res := record(t, s, t0.Add(2*time.Minute), ev(jobevent.Updated, "j1", a.ID, b.ID))
	if res[0].Recorded != 1 {
		t.Fatalf("update: got %d recorded, want 1 (b only)", res[0].Recorded)
	}
	if got := pending(t, s, a.ID); len(got) != 0 {
		t.Fatalf("pending a after update: got %v, want none", got)
	}
}

func TestClosedJobIsNotRecordedAgainAndTombstoneBeatsLateCreate(t *testing.T) {
	s := mustStore(t, time.Minute)
	a := mustSub(t, s, "instant")
	record(t, s, t0, ev(jobevent.Closed, "j9"))
	res := record(t, s, t0, ev(jobevent.Created, "j9", a.ID))
	if res[0].Recorded != 0 {
		t.Fatalf("create after close: got %d recorded, want 0", res[0].Recorded)
	}
}

func TestPausedSubscriptionIsNotSentAndKeepsItemsForResume(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	a := mustSub(t, s, "instant")
	pause := func(st string) {
		if _, err := s.UpdateSubscription(ctx, a.ID, t0, func(sub *store.Subscription) error {
			sub.Status = st
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	pause(store.StatusPaused)
	// A match in the second before the pause reached the index.
	record(t, s, t0, ev(jobevent.Created, "j1", a.ID))
	due, err := s.DueAt(ctx, t0.Add(time.Minute), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: got %v %v, want one entry", due, err)
	}
	claims := []store.Claim{{Due: due[0], DigestID: "d1", LeaseUntil: time.Now().Add(time.Minute)}}
	if r, err := s.ClaimDue(ctx, claims, t0.Add(time.Minute)); err != nil || r[0] != store.NotClaimed {
		t.Fatalf("claim while paused: got %v %v, want NotClaimed", r, err)
	}
	if got := pending(t, s, a.ID); len(got) != 1 {
		t.Fatalf("pending while paused: got %v, want the item kept", got)
	}
	pause(store.StatusActive)
	due, err = s.DueAt(ctx, t0.Add(time.Minute), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due after resume: got %v %v, want the window reopened", due, err)
	}
	claims = []store.Claim{{Due: due[0], DigestID: "d2", LeaseUntil: time.Now().Add(time.Minute)}}
	if r, err := s.ClaimDue(ctx, claims, t0.Add(time.Minute)); err != nil || r[0] != store.Claimed {
		t.Fatalf("claim after resume: got %v %v, want Claimed", r, err)
	}
}

func TestPendingIsBoundedAndCounted(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	a := mustSub(t, s, "daily")
	for i := 0; i < 12; i++ {
		record(t, s, t0, ev(jobevent.Created, "j"+strconv.Itoa(i), a.ID))
	}
	got := pending(t, s, a.ID)
	if len(got) > 10 || got[0] != "12" {
		t.Fatalf("pending: got %v, want at most 2x the limit (5), newest (12) first", got)
	}
	dropped, _ := s.DroppedCount(ctx, a.ID)
	if dropped+len(got) != 12 {
		t.Fatalf("dropped %d + pending %d: got %d, want 12", dropped, len(got), dropped+len(got))
	}
}

func TestClaimIsExactlyOnceUnderRace(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, 0)
	var subs []*store.Subscription
	for i := 0; i < 50; i++ {
		sub := mustSub(t, s, "instant")
		subs = append(subs, sub)
		record(t, s, t0, ev(jobevent.Created, fmt.Sprintf("j%d", i), sub.ID))
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due, err := s.DueAt(ctx, t0, 100)
			if err != nil {
				t.Error(err)
				return
			}
			var claims []store.Claim
			for _, d := range due {
				claims = append(claims, store.Claim{Due: d, DigestID: store.DigestID(d.SubscriptionID, d.At), LeaseUntil: time.Now().Add(time.Minute)})
			}
			res, err := s.ClaimDue(ctx, claims, t0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, r := range res {
				if r == store.Claimed {
					claimed[claims[i].Due.SubscriptionID]++
				}
			}
		}()
	}
	wg.Wait()
	for _, sub := range subs {
		if claimed[sub.ID] != 1 {
			t.Fatalf("subscription %s claimed %d times, want 1", sub.ID, claimed[sub.ID])
		}
	}
	if n, _ := s.OutboxLen(ctx); n != 50 {
		t.Fatalf("outbox: got %d, want 50", n)
	}
}

type fakeIndex struct {
	mu  sync.Mutex
	ids map[string]matcher.Filter
	// gate, when set, holds every Add until it is closed: a slow
	// replica, falling behind the change feed.
	gate atomic.Pointer[chan struct{}]
}

func (f *fakeIndex) Add(id string, fl matcher.Filter) error {
	if g := f.gate.Load(); g != nil {
		<-*g
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids[id] = fl
	return nil
}

func (f *fakeIndex) Remove(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[id]
	delete(f.ids, id)
	return ok
}

func (f *fakeIndex) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[id]
	return ok
}

func TestChangeFeedKeepsIndexCurrent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := mustStore(t, time.Minute)
	before := mustSub(t, s, "daily")
	f := startFollowing(t, ctx, s, nil)
	if n := <-f.loaded; n != 1 || !f.current().has(before.ID) {
		t.Fatalf("initial load: got %d filters, want 1 including %s", n, before.ID)
	}
	ix := f.current()
	after := mustSub(t, s, "daily")
	testenv.Eventually(t, 2*time.Second, func() bool { return ix.has(after.ID) }, "new subscription not indexed")
	if err := s.DeleteSubscription(ctx, before.ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, func() bool { return !ix.has(before.ID) }, "deleted subscription still indexed")
	cancel()
	f.wait(t)
	if f.current() != ix || f.built.Load() != 1 {
		t.Fatalf("got %d indexes built, want the first one followed throughout", f.built.Load())
	}
}

func TestOutOfOrderEventsKeepNewestData(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	sub := mustSub(t, s, "instant")
	newer := ev(jobevent.Updated, "j1", sub.ID)
	newer.Event.StreamSeq, newer.Event.Job.Title = 10, "Newest title"
	older := ev(jobevent.Created, "j1", sub.ID)
	older.Event.StreamSeq, older.Event.Job.Title = 5, "Old title"
	res := record(t, s, t0, newer, older)
	jobs, err := s.Jobs(ctx, sub.ID, []int64{res[0].Seq})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(jobs[0].Data); !strings.Contains(got, "Newest title") {
		t.Fatalf("job data: got %s, want the newest title", got)
	}
}

func TestTwoClaimsInOneMillisecondKeepBothDigests(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, 0)
	a := mustSub(t, s, "instant")
	var ids []string
	for _, j := range []string{"j1", "j2"} {
		record(t, s, t0, ev(jobevent.Created, j, a.ID))
		due, err := s.DueAt(ctx, t0, 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("due: got %v %v, want one entry", due, err)
		}
		claims := []store.Claim{{Due: due[0], DigestID: store.DigestID(a.ID, due[0].At), LeaseUntil: time.Now().Add(time.Minute)}}
		if r, err := s.ClaimDue(ctx, claims, t0); err != nil || r[0] != store.Claimed {
			t.Fatalf("claim: got %v %v, want Claimed", r, err)
		}
		ids = append(ids, claims[0].DigestID)
	}
	if ids[0] == ids[1] {
		t.Fatalf("digest ids: got %q twice, want two ids", ids[0])
	}
	for _, id := range ids {
		if d, err := s.Digest(ctx, id); err != nil || len(d.Seqs) != 1 {
			t.Fatalf("digest %s: got %+v %v, want one job each", id, d, err)
		}
	}
}

func TestRecordLeaseMustOutlastTheRecordTimeout(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	s := store.New(rdb, store.Config{Prefix: prefix}) // default lease, 3 minutes
	if err := s.CheckRecordTimeout(2 * time.Minute); err != nil {
		t.Errorf("defaults (lease 3m, timeout 2m): got %v, want nil", err)
	}
	for _, timeout := range []time.Duration{3 * time.Minute, 5 * time.Minute} {
		err := s.CheckRecordTimeout(timeout)
		if err == nil || !strings.Contains(err.Error(), "record lease (3m0s) must be longer than the record timeout ("+timeout.String()+")") {
			t.Errorf("timeout %v: got %v, want the lease and the timeout named", timeout, err)
		}
	}
}

// claimAllDue claims every digest due at now, as a sender would.
func claimAllDue(t *testing.T, s *store.Redis, now time.Time) int {
	t.Helper()
	due, err := s.DueAt(context.Background(), now, 100)
	if err != nil {
		t.Fatal(err)
	}
	var claims []store.Claim
	for i, d := range due {
		claims = append(claims, store.Claim{Due: d, DigestID: fmt.Sprintf("%s.%d-%d", d.SubscriptionID, now.UnixMilli(), i), LeaseUntil: now.Add(time.Minute)})
	}
	if len(claims) == 0 {
		return 0
	}
	if _, err := s.ClaimDue(context.Background(), claims, now); err != nil {
		t.Fatal(err)
	}
	return len(claims)
}

// A subscription activated after a job was first seen in its shard gets
// that job's update (a repost is recorded as one) once, even after its
// watermark has passed the job by digests of newer jobs, and never again;
// one that got the job first gets nothing (docs/redis.md, "Jobs older than
// a subscription").
func TestLateSubscriptionGetsAnOlderJobOnceAfterItsWatermarkPassedIt(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	// One shard: the job has a sequence number in the late subscription's shard.
	s := store.New(rdb, store.Config{Prefix: prefix, InstantWindow: time.Minute, PendingLimit: 5, Shards: 1})
	a := mustSub(t, s, "instant")
	record(t, s, t0, ev(jobevent.Created, "j1", a.ID))
	late := mustSub(t, s, "instant")
	record(t, s, t0.Add(time.Second), ev(jobevent.Created, "j2", late.ID))
	if n := claimAllDue(t, s, t0.Add(2*time.Minute)); n != 2 {
		t.Fatalf("claims after the windows: got %d want 2 (a: j1, late: j2)", n)
	}

	res := record(t, s, t0.Add(3*time.Minute), ev(jobevent.Updated, "j1", a.ID, late.ID))
	if res[0].Recorded != 1 {
		t.Fatalf("j1 updated after late's watermark passed it: got %d recorded want 1 (late only)", res[0].Recorded)
	}
	if got := pending(t, s, a.ID); len(got) != 0 {
		t.Errorf("a, which got j1: got pending %v want none", got)
	}
	if got := pending(t, s, late.ID); len(got) != 1 {
		t.Fatalf("late: got pending %v want j1 once", got)
	}
	if n := claimAllDue(t, s, t0.Add(5*time.Minute)); n != 1 {
		t.Fatalf("claims: got %d want 1 (late: j1)", n)
	}
	res = record(t, s, t0.Add(6*time.Minute), ev(jobevent.Updated, "j1", a.ID, late.ID))
	if res[0].Recorded != 0 {
		t.Errorf("j1 updated again after late got it: got %d recorded want 0", res[0].Recorded)
	}
	if n, err := rdb.Exists(context.Background(), store.KeysOf(prefix, 1, late.ID).Older).Result(); err != nil || n != 1 {
		t.Errorf("late's older: set: got exists %d, %v want 1", n, err)
	}
	if err := s.DeleteSubscription(context.Background(), late.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(context.Background(), store.KeysOf(prefix, 1, late.ID).Older).Result(); n != 0 {
		t.Errorf("late's older: set after delete: got exists %d want 0", n)
	}
}

// Only a first activation stores born: a subscription written before the
// field existed keeps its watermark's rule when it is paused and resumed,
// since it got jobs before (a born set then would send them again).
func TestResumeDoesNotSetBorn(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	s := store.New(rdb, store.Config{Prefix: prefix, InstantWindow: time.Minute, PendingLimit: 5})
	sub := mustSub(t, s, "instant")
	key := store.KeysOf(prefix, 0, sub.ID).Sub
	if born, err := rdb.HGet(ctx, key, "born").Result(); err != nil {
		t.Fatalf("born after the first activation: got %q, %v want it set", born, err)
	}
	rdb.HDel(ctx, key, "born") // as a subscription of the layout before born
	for _, st := range []string{store.StatusPaused, store.StatusActive} {
		if _, err := s.UpdateSubscription(ctx, sub.ID, t0, func(x *store.Subscription) error { x.Status = st; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := rdb.HExists(ctx, key, "born").Result(); n {
		t.Errorf("born after pause and resume: got set, want absent")
	}
}
