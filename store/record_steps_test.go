package store

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// These tests stop Record between its steps, as a crash or a slow batch
// would, and claim in between.

var stepT0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func stepStore(t *testing.T) (*Redis, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s := New(rdb, Config{Prefix: prefix, PendingLimit: 5}) // instant window 0
	sub := &Subscription{Email: "ada@example.com", Filter: matcher.Filter{Keywords: "backend"},
		Frequency: "instant", Timezone: "UTC", SendHour: 8, WeeklyDay: "monday", Status: StatusActive}
	if err := s.CreateSubscription(context.Background(), sub, stepT0); err != nil {
		t.Fatal(err)
	}
	return s, sub.ID
}

func created(id string, subs ...string) jobevent.Matched {
	return jobevent.Matched{Event: jobevent.Event{Kind: jobevent.Created,
		Job: matcher.Job{ID: id, Title: "Backend Engineer", Company: "Acme"}}, SubscriptionIDs: subs}
}

// claimNow claims sub's due entry at now and returns the digest's items
// ("" for an empty claim) and the claim result.
func claimNow(t *testing.T, s *Redis, sub string, now time.Time) (string, ClaimResult) {
	t.Helper()
	ctx := context.Background()
	due, err := s.DueAt(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(due, func(d Due) bool { return d.SubscriptionID == sub })
	if i < 0 {
		t.Fatalf("claim at %s: %s is not due (due: %v)", now.Format(time.TimeOnly), sub, due)
	}
	claims := []Claim{{Due: due[i], DigestID: DigestID(sub, due[i].At), LeaseUntil: now.Add(time.Minute)}}
	res, err := s.ClaimDue(ctx, claims, now)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != Claimed {
		return "", res[0]
	}
	d, err := s.Digest(ctx, claims[0].DigestID)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]string, len(d.Seqs))
	for j, q := range d.Seqs {
		items[j] = strconv.FormatInt(q, 10)
	}
	return strings.Join(items, ","), Claimed
}

func TestClaimBetweenMarkAndPushDoesNotCoverTheJob(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	if _, err := s.RecordResults(ctx, []jobevent.Matched{created("j1", a)}, stepT0); err != nil {
		t.Fatal(err)
	}
	// j2's recorder marks it, then dies before pushing.
	if _, _, err := s.stepJobs(ctx, []jobevent.Matched{created("j2", a)}, stepT0, "dead"); err != nil {
		t.Fatal(err)
	}
	if got, res := claimNow(t, s, a, stepT0); got != "1" {
		t.Fatalf("claim while j2 is marked: got items %q (%v), want \"1\"", got, res)
	}
	if cov, _ := s.rdb.HGet(ctx, s.k.sub(a), "cov").Result(); cov != "1" {
		t.Fatalf("cov after the claim: got %q, want \"1\" (below j2, still recording)", cov)
	}
	// The redelivery pushes j2 (known job, not covered), takes the mark
	// over and clears it.
	res, err := s.RecordResults(ctx, []jobevent.Matched{created("j2", a)}, stepT0.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Recorded != 1 {
		t.Fatalf("redelivery: got %d recorded, want 1", res[0].Recorded)
	}
	// The dead recorder's own mark holds j2 back while its liveness key
	// lives (it might still be pushing); once the key has expired, j2
	// goes out once.
	if _, res := claimNow(t, s, a, stepT0.Add(30*time.Second)); res != ClaimedEmpty {
		t.Fatalf("claim while the dead recorder looks alive: got %v, want ClaimedEmpty", res)
	}
	if err := s.killRecorder(ctx, "dead"); err != nil { // as if expired
		t.Fatal(err)
	}
	// The early claim put a back as due after as long as j2 had been
	// recording (30 s).
	if got, _ := claimNow(t, s, a, stepT0.Add(time.Minute)); got != "2" {
		t.Fatalf("claim once the dead recorder's key is gone: got items %q, want \"2\"", got)
	}
	if n, _ := s.markCount(ctx); n != 0 {
		t.Fatalf("recording marks after the claim: got %d, want 0", n)
	}
	// A second redelivery finds j2 covered.
	res, err = s.RecordResults(ctx, []jobevent.Matched{created("j2", a)}, stepT0.Add(time.Minute))
	if err != nil || res[0].Recorded != 0 {
		t.Fatalf("second redelivery: got %+v %v, want 0 recorded", res, err)
	}
}

func TestItemsOfABatchStillRecordingWaitForTheNextClaim(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	batch := []jobevent.Matched{created("j1", a)}
	r, out, err := s.stepJobs(ctx, batch, stepT0, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.push(ctx, r, out, stepT0); err != nil {
		t.Fatal(err)
	}
	if _, res := claimNow(t, s, a, stepT0); res != ClaimedEmpty {
		t.Fatalf("claim before the batch is done: got %v, want ClaimedEmpty", res)
	}
	if n, _ := s.PendingCount(ctx, a); n != 1 {
		t.Fatalf("pending after the early claim: got %d, want 1", n)
	}
	if at, _ := s.rdb.ZScore(ctx, s.k.of(a).due(), a).Result(); int64(at) != ms(stepT0.Add(time.Second)) {
		t.Fatalf("due after the early claim: got %v, want %d (a second later)", at, ms(stepT0.Add(time.Second)))
	}
	if err := s.recordDone(ctx, r, "slow"); err != nil {
		t.Fatal(err)
	}
	if got, _ := claimNow(t, s, a, stepT0.Add(time.Second)); got != "1" {
		t.Fatalf("claim after the batch: got items %q, want \"1\"", got)
	}
}

func TestUnfinishedFirstAppearanceHoldsNewerItemsForADay(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	if _, _, err := s.stepJobs(ctx, []jobevent.Matched{created("j1", a)}, stepT0, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordResults(ctx, []jobevent.Matched{created("j2", a)}, stepT0); err != nil {
		t.Fatal(err)
	}
	if _, res := claimNow(t, s, a, stepT0.Add(time.Hour)); res != ClaimedEmpty {
		t.Fatalf("claim an hour later: got %v, want ClaimedEmpty (j2 waits for j1's first appearance)", res)
	}
	late := stepT0.Add(recordFlagTTL + time.Hour)
	if got, _ := claimNow(t, s, a, late); got != "2" {
		t.Fatalf("claim a day later: got items %q, want \"2\"", got)
	}
	if n, _ := s.markCount(ctx); n != 0 {
		t.Fatalf("recording marks after a day: got %d, want 0", n)
	}
}

func TestBatchGroupsAMatchingSubscriptionsItemsInEventOrder(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	res, err := s.RecordResults(ctx, []jobevent.Matched{created("j1", a), created("j2"), created("j3", a),
		created("j1", a), {Event: jobevent.Event{Kind: jobevent.Closed, Job: matcher.Job{ID: "j3"}}}}, stepT0)
	if err != nil {
		t.Fatal(err)
	}
	got := []int{res[0].Recorded, res[1].Recorded, res[2].Recorded, res[3].Recorded, res[4].Recorded}
	if !slices.Equal(got, []int{1, 0, 1, 0, 0}) {
		t.Fatalf("recorded per event: got %v, want [1 0 1 0 0]", got)
	}
	items, err := s.rdb.LRange(ctx, s.k.pending(a), 0, -1).Result()
	// Sequence numbers are per shard, given to jobs with matches there:
	// j2, matching nobody, has none.
	if err != nil || !slices.Equal(items, []string{"1", "2"}) {
		t.Fatalf("pending list: got %v %v, want [1 2]", items, err)
	}
}

func TestRecordAfterRedisLostItsScripts(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	if _, err := s.RecordResults(ctx, []jobevent.Matched{created("j1", a)}, stepT0); err != nil {
		t.Fatal(err)
	}
	// As after a restart of Redis without its scripts.
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.RecordResults(ctx, []jobevent.Matched{created("j2", a), created("j3", a)}, stepT0)
	if err != nil {
		t.Fatalf("record after SCRIPT FLUSH: %v", err)
	}
	if res[0].Recorded != 1 || res[1].Recorded != 1 {
		t.Fatalf("recorded: got %+v, want 1 each", res)
	}
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := claimNow(t, s, a, stepT0); got != "3,2,1" {
		t.Fatalf("claim after SCRIPT FLUSH: got items %q, want \"3,2,1\"", got)
	}
}

func TestTwoRecordersOfOneJobSendItOnce(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	// The first delivery of j1 is slow: marked, not pushed yet.
	first := []jobevent.Matched{created("j1", a)}
	r, out, err := s.stepJobs(ctx, first, stepT0, "slow")
	if err != nil {
		t.Fatal(err)
	}
	// An update of j1, recorded to the end meanwhile, pushes j1 to a;
	// then the first delivery pushes it too.
	upd := created("j1", a)
	upd.Event.Kind = jobevent.Updated
	if res, err := s.RecordResults(ctx, []jobevent.Matched{upd}, stepT0); err != nil || res[0].Recorded != 1 {
		t.Fatalf("update: got %+v %v, want 1 recorded", res, err)
	}
	if err := s.push(ctx, r, out, stepT0); err != nil {
		t.Fatal(err)
	}
	if _, res := claimNow(t, s, a, stepT0); res != ClaimedEmpty {
		t.Fatalf("claim while the first recorder runs: got %v, want ClaimedEmpty", res)
	}
	if err := s.recordDone(ctx, r, "slow"); err != nil {
		t.Fatal(err)
	}
	if got, _ := claimNow(t, s, a, stepT0.Add(time.Second)); got != "1" {
		t.Fatalf("claim after both: got items %q, want \"1\" (once)", got)
	}
	if n, _ := s.PendingCount(ctx, a); n != 0 {
		t.Fatalf("pending after the claim: got %d, want 0", n)
	}
}

// popularBatch is 256 events of 13,000 matches each over 1M
// subscriptions, overlapping as popular jobs do (a quarter of the matches
// from a hot 10%), with the matcher's keys when keyed.
func popularBatch(keyed bool) ([]jobevent.Matched, []int64) {
	const events, matches, subs = 256, 13_000, 1_000_000
	ids := make([]string, subs)
	for i := range ids {
		ids[i] = "f" + strconv.Itoa(i)
	}
	batch := make([]jobevent.Matched, events)
	modes := make([]int64, 2*events)
	for e := range batch {
		m := make([]string, matches)
		var keys []uint32
		if keyed {
			keys = make([]uint32, matches)
		}
		for j := range m {
			n := (e*7919 + j*104729) % subs
			if j%4 == 0 {
				n %= subs / 10
			}
			m[j] = ids[n]
			if keyed {
				keys[j] = uint32(n)
			}
		}
		batch[e].SubscriptionIDs, batch[e].Keys = m, keys
		modes[2*e], modes[2*e+1] = int64(e+1), 1
	}
	return batch, modes
}

func BenchmarkGroupBySubscription(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "hash", true: "keys"}[keyed], func(b *testing.B) {
			batch, modes := popularBatch(keyed)
			for b.Loop() {
				groupBySubscription(batch, modes)
			}
		})
	}
}

func TestGroupingByKeysEqualsGroupingByIDs(t *testing.T) {
	sub := func(ids ...string) []string { return ids }
	batch := []jobevent.Matched{
		{SubscriptionIDs: sub("a", "b", "c"), Keys: []uint32{5, 1, 9}},
		{}, // closed: skipped by its mode
		{SubscriptionIDs: sub("c", "a"), Keys: []uint32{9, 5}},
		{SubscriptionIDs: sub("d", "b"), Keys: []uint32{2, 1}},
	}
	modes := []int64{1, 1, 2, 0, 3, 2, 4, 1}
	hashed := make([]jobevent.Matched, len(batch))
	for i, m := range batch {
		hashed[i] = jobevent.Matched{SubscriptionIDs: m.SubscriptionIDs}
	}
	want := groupBySubscription(hashed, modes)
	got := groupBySubscription(batch, modes)
	same := func(a, b subscriptionItems) bool {
		return slices.Equal(a.ids, b.ids) && slices.Equal(a.start, b.start) && slices.Equal(a.items, b.items) && slices.Equal(a.event, b.event)
	}
	if !same(got, want) {
		t.Fatalf("by keys: got %+v, want %+v", got, want)
	}
	if !slices.Equal(want.ids, []string{"a", "b", "c", "d"}) || !slices.Equal(want.items, []int64{1, -3, 1, 4, 1, -3, 4}) {
		t.Fatalf("grouping: got ids %v items %v, want [a b c d] and [1 -3 1 4 1 -3 4]", want.ids, want.items)
	}
	// A key standing for two ids (a slot reused during the batch) falls
	// back to the ids.
	batch[3].Keys = []uint32{9, 1}
	if got := groupBySubscription(batch, modes); !same(got, want) {
		t.Fatalf("reused key: got %+v, want %+v", got, want)
	}
}

func TestFirstEventMarkEndsWhenTheJobClosesOrNoLongerMatches(t *testing.T) {
	for _, end := range []string{"closed", "matches nobody"} {
		t.Run(end, func(t *testing.T) {
			ctx := context.Background()
			s, a := stepStore(t)
			// j1's first recorder dies after marking it; j2 is recorded.
			if _, _, err := s.stepJobs(ctx, []jobevent.Matched{created("j1", a)}, stepT0, "gone"); err != nil {
				t.Fatal(err)
			}
			if err := s.killRecorder(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RecordResults(ctx, []jobevent.Matched{created("j2", a)}, stepT0); err != nil {
				t.Fatal(err)
			}
			if _, res := claimNow(t, s, a, stepT0); res != ClaimedEmpty {
				t.Fatalf("claim while j1 is unfinished: got %v, want ClaimedEmpty", res)
			}
			ev := created("j1") // the redelivery, matching nobody now
			if end == "closed" {
				ev = jobevent.Matched{Event: jobevent.Event{Kind: jobevent.Closed, Job: matcher.Job{ID: "j1"}}}
			}
			if _, err := s.RecordResults(ctx, []jobevent.Matched{ev}, stepT0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if got, _ := claimNow(t, s, a, stepT0.Add(time.Minute)); got != "2" {
				t.Fatalf("claim once j1 %s: got items %q, want \"2\"", end, got)
			}
			if m, _ := s.marks(ctx); len(m) != 0 {
				t.Fatalf("recording marks after the claim: got %v, want none", m)
			}
		})
	}
}

func TestAnUpdateOfAnOldJobHoldsNothingBack(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	if _, err := s.RecordResults(ctx, []jobevent.Matched{created("j1", a)}, stepT0); err != nil {
		t.Fatal(err)
	}
	if got, _ := claimNow(t, s, a, stepT0); got != "1" {
		t.Fatalf("first claim: got items %q, want \"1\"", got)
	}
	// A slow update of j1 is under way while j2 is recorded and claimed.
	upd := created("j1", a)
	upd.Event.Kind = jobevent.Updated
	batch := []jobevent.Matched{upd}
	r, out, err := s.stepJobs(ctx, batch, stepT0, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordResults(ctx, []jobevent.Matched{created("j2", a)}, stepT0); err != nil {
		t.Fatal(err)
	}
	if got, _ := claimNow(t, s, a, stepT0.Add(time.Second)); got != "2" {
		t.Fatalf("claim during the update: got items %q, want \"2\"", got)
	}
	if err := s.push(ctx, r, out, stepT0); err != nil {
		t.Fatal(err)
	}
	if err := s.recordDone(ctx, r, "slow"); err != nil {
		t.Fatal(err)
	}
	if out[0].Recorded != 0 {
		t.Fatalf("update: got %d recorded, want 0 (j1 was sent)", out[0].Recorded)
	}
	if cov, _ := s.rdb.HGet(ctx, s.k.sub(a), "cov").Result(); cov != "2" {
		t.Fatalf("cov: got %q, want \"2\"", cov)
	}
}

// A partition's Record call never ends another partition's first-event
// mark: partition 1 recording an event that matched nobody of its own
// leaves the mark partition 0's dead recorder left in its shard.
func TestAPartitionLeavesTheOtherPartitionsMarksAlone(t *testing.T) {
	ctx := context.Background()
	s, a := stepStore(t)
	k := s.k.shardOf(a)
	p := func(n int) *Redis {
		return New(s.rdb, Config{Prefix: s.cfg.Prefix, PendingLimit: 5, Partition: n, Partitions: 2})
	}
	mine, other := p(k%2), p(1-k%2)
	if _, _, err := mine.stepJobs(ctx, []jobevent.Matched{created("j1", a)}, stepT0, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.killRecorder(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// The other partition sees the same event, matching none of its own.
	if _, err := other.RecordResults(ctx, []jobevent.Matched{created("j1")}, stepT0); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.RecordResults(ctx, []jobevent.Matched{created("j2", a)}, stepT0); err != nil {
		t.Fatal(err)
	}
	if _, res := claimNow(t, s, a, stepT0); res != ClaimedEmpty {
		t.Fatalf("claim while j1's first event is unfinished in its partition: got %v, want ClaimedEmpty", res)
	}
	// Its own partition's redelivery ends it.
	if _, err := mine.RecordResults(ctx, []jobevent.Matched{created("j1", a)}, stepT0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := claimNow(t, s, a, stepT0.Add(time.Minute)); got != "1,2" {
		t.Fatalf("claim after the redelivery: got items %q, want \"1,2\" (in the order pushed, newest first)", got)
	}
}
