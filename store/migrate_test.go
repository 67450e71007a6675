package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// writeOldLayout writes a keyspace as the unsharded layout had it (the
// old key names, docs/redis.md before sharding): 5 jobs, 30 active
// subscriptions (every other one daily) each covered up to job 2 with
// jobs 3-5 pending and a due entry, one claimed digest of jobs 1-2 in
// the outbox, and a rate limit counter.
func writeOldLayout(t *testing.T, s *Redis, now time.Time) (subs []string, digest string) {
	t.Helper()
	ctx := context.Background()
	o := oldKeys(s.cfg.Prefix)
	rdb := s.rdb
	if err := rdb.Set(ctx, o.jobseq, 5, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= 5; seq++ {
		q := strconv.Itoa(seq)
		data := fmt.Sprintf(`{"id":"j%d","title":"Backend Engineer %d","company":"Acme"}`, seq, seq)
		if err := rdb.HSet(ctx, o.job(q), "id", "j"+q, "data", data, "first", ms(now), "updated", ms(now), "sseq", seq).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, o.jid("j"+q), q, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		sub := &Subscription{ID: fmt.Sprintf("sub_old%02d", i), Email: fmt.Sprintf("u%d@example.com", i),
			Filter: matcher.Filter{Keywords: "backend"}, Frequency: "instant", Timezone: "UTC", SendHour: 8,
			Status: StatusActive, CreatedAt: now, ConfirmedAt: now}
		if i%2 == 1 {
			sub.Frequency = "daily"
		}
		f, _, err := sub.fields()
		if err != nil {
			t.Fatal(err)
		}
		f["cov"] = 2
		if err := rdb.HSet(ctx, o.sub(sub.ID), f).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.RPush(ctx, o.pending(sub.ID), 3, 4, 5).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, o.filters, sub.ID, f["filter"]).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ZAdd(ctx, o.due, redisZ(ms(now), sub.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub.ID)
	}
	// A digest of the old fallback id (a second claim in one millisecond).
	digest = subs[0] + "." + strconv.FormatInt(ms(now), 36) + ".4"
	if err := rdb.HSet(ctx, o.digest(digest), "sub", subs[0], "items", "2,1", "dropped", 0, "created", ms(now), "due", ms(now)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, o.outbox, redisZ(ms(now), digest)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, o.p+"rate:confirm-ip:127.0.0.1", 2, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	return subs, digest
}

func TestMigrateIsResumableAndEverythingArrivesOnce(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	s := New(rdb, Config{Prefix: prefix, Shards: 8, PendingLimit: 100})
	now := time.Now().Truncate(time.Millisecond)
	subs, oldDigest := writeOldLayout(t, s, now)

	if err := s.CheckLayout(ctx); !errors.Is(err, ErrOldLayout) || !strings.Contains(err.Error(), "jobalert migrate") {
		t.Fatalf("CheckLayout on the old layout: got %v, want ErrOldLayout naming jobalert migrate", err)
	}

	// Killed part-way: the context ends after the first chunks.
	defer func(n int) { migrateChunk = n }(migrateChunk)
	migrateChunk = 4
	cut, cancel := context.WithCancel(ctx)
	var seen int64
	_, err := s.Migrate(cut, func(total, done int64) {
		if seen = done; done >= 12 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("migration cut short: got %v, want context.Canceled", err)
	}
	if err := s.CheckLayout(ctx); !errors.Is(err, ErrOldLayout) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("CheckLayout after a cut migration: got %v, want it refused as unfinished", err)
	}

	var total, last int64
	c, err := s.Migrate(ctx, func(t, d int64) { total, last = t, d })
	if err != nil {
		t.Fatal(err)
	}
	if last != total || total == 0 || total >= 5+30+1+1 {
		t.Errorf("rerun progress: got %d of %d, want all of what was left (less than the 37 of the first run, which moved %d)", last, total, seen)
	}
	want := MigrateCounts{ToMove: total, Subscriptions: 30, PendingItems: 90, Due: 30, Digests: 1, Jobs: 5}
	if c != want {
		t.Fatalf("counts: got %+v, want %+v", c, want)
	}
	if err := s.CheckLayout(ctx); err != nil {
		t.Fatalf("CheckLayout after the migration: %v", err)
	}
	// Nothing of the old layout is left.
	var left []string
	if err := s.scanKeys(ctx, escapeGlob(prefix)+"*", func(keys []string) error {
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix+"{") && !strings.HasPrefix(k, prefix+"email:") {
				left = append(left, k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("old keys left: %v", left)
	}
	// A third run finds nothing to move and changes nothing.
	if c, err := s.Migrate(ctx, nil); err != nil || c.ToMove != 0 || c.Subscriptions != 30 || c.PendingItems != 90 {
		t.Fatalf("third run: got %+v %v, want nothing to move and the same counts", c, err)
	}

	// Sending works: every subscription's digest holds jobs 5, 4, 3 once,
	// with their data.
	due, err := s.DueAt(ctx, now.Add(48*time.Hour), 100)
	if err != nil || len(due) != 30 {
		t.Fatalf("due: got %d %v, want 30", len(due), err)
	}
	claims := make([]Claim, len(due))
	for i, d := range due {
		claims[i] = Claim{Due: d, DigestID: DigestID(d.SubscriptionID, d.At), LeaseUntil: now.Add(time.Minute)}
	}
	res, err := s.ClaimDue(ctx, claims, now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != Claimed {
			t.Fatalf("claim %s: got %v, want Claimed", claims[i].Due.SubscriptionID, r)
		}
		d, err := s.Digest(ctx, claims[i].DigestID)
		if err != nil || !slices.Equal(d.Seqs, []int64{5, 4, 3}) {
			t.Fatalf("digest of %s: got %+v %v, want jobs 5,4,3", claims[i].Due.SubscriptionID, d, err)
		}
		jobs, err := s.Jobs(ctx, d.SubscriptionID, d.Seqs)
		if err != nil || len(jobs) != 3 || !strings.Contains(string(jobs[0].Data), "Backend Engineer 5") || jobs[2].Closed {
			t.Fatalf("jobs of %s: got %+v %v, want the data of jobs 5, 4, 3", d.SubscriptionID, jobs, err)
		}
	}
	// The digest claimed before the migration is in its shard's outbox.
	ids, err := s.LeaseOutbox(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.TrimSuffix(oldDigest, ".4") + "-4"
	if !slices.Contains(ids, moved) {
		t.Fatalf("outbox: got %v, want %s among them", ids, moved)
	}
	d, err := s.Digest(ctx, moved)
	if err != nil || !slices.Equal(d.Seqs, []int64{2, 1}) {
		t.Fatalf("moved digest: got %+v %v, want jobs 2,1", d, err)
	}
	// Dedup goes on: an update of a sent job alerts nobody again; a new
	// job gets the next sequence number.
	upd := jobevent.Matched{Event: jobevent.Event{Kind: jobevent.Updated, Job: matcher.Job{ID: "j4", Title: "Backend Engineer 4"}}, SubscriptionIDs: subs}
	fresh := jobevent.Matched{Event: jobevent.Event{Kind: jobevent.Created, Job: matcher.Job{ID: "j6", Title: "Backend Engineer 6"}}, SubscriptionIDs: subs[:1]}
	out, err := s.RecordResults(ctx, []jobevent.Matched{upd, fresh}, now.Add(48*time.Hour))
	if err != nil || out[0].Recorded != 0 || out[1].Recorded != 1 || out[1].Seq != 6 {
		t.Fatalf("record after the migration: got %+v %v, want the update recorded nowhere and j6 once as seq 6", out, err)
	}
}

func redisZ(score int64, member string) redis.Z {
	return redis.Z{Score: float64(score), Member: member}
}
