package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/liveness"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/store"
)

// A digest claimed by a process that is gone is leased again at once, not
// after its 2-minute lease: by a live process once the dead one's
// liveness key is gone, and by a restart of the same instance at once.
func TestADeadProcesssDigestsAreTakenOverAtOnce(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	cfg := store.Config{Prefix: prefix, PendingLimit: 5}
	live := func(instance string) *liveness.Liveness {
		l := liveness.New(rdb, prefix, instance)
		if err := l.Beat(ctx); err != nil {
			t.Fatal(err)
		}
		return l
	}
	la := live("host-a")
	a := store.New(rdb, cfg).WithLiveness(la)
	sub := mustSub(t, a, "instant")
	record(t, a, t0, ev(jobevent.Created, "j1", sub.ID))
	due, err := a.DueAt(ctx, t0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: got %v %v, want one", due, err)
	}
	now := t0.Add(time.Hour)
	claims := []store.Claim{{Due: due[0], DigestID: store.DigestID(sub.ID, due[0].At), LeaseUntil: now.Add(2 * time.Minute)}}
	if res, err := a.ClaimDue(ctx, claims, now); err != nil || res[0] != store.Claimed {
		t.Fatalf("claim: got %v %v", res, err)
	}
	did := claims[0].DigestID

	b := store.New(rdb, cfg).WithLiveness(live("host-b"))
	if ids, err := b.LeaseOutbox(ctx, now, now.Add(2*time.Minute), 10); err != nil || len(ids) != 0 {
		t.Fatalf("while its owner lives: got %v %v, want nothing leased", ids, err)
	}
	// host-a restarts: the new boot takes its digest back at once, though
	// the old boot's key has not expired.
	l2 := live("host-a")
	a2 := store.New(rdb, cfg).WithLiveness(l2)
	if ids, err := a2.LeaseOutbox(ctx, now, now.Add(2*time.Minute), 10); err != nil || !slices.Equal(ids, []string{did}) {
		t.Fatalf("restarted instance: got %v %v, want [%s]", ids, err, did)
	}
	// The new boot dies too (its key is gone): host-b takes the digest
	// over once it has seen the owner dead for a beat and more (a key lost
	// in a failover comes back within a beat).
	if err := l2.Retire(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, err := b.LeaseOutbox(ctx, now, now.Add(2*time.Minute), 10); err != nil || len(ids) != 0 {
		t.Fatalf("owner seen dead once: got %v %v, want nothing yet", ids, err)
	}
	later := now.Add(3 * time.Second)
	if ids, err := b.LeaseOutbox(ctx, later, later.Add(2*time.Minute), 10); err != nil || !slices.Equal(ids, []string{did}) {
		t.Fatalf("owner still dead 3 s later: got %v %v, want [%s]", ids, err, did)
	}
	now = later
	// Finished, it is nobody's: nothing comes back.
	if err := b.FinishDigest(ctx, did); err != nil {
		t.Fatal(err)
	}
	if ids, err := a2.LeaseOutbox(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 10); err != nil || len(ids) != 0 {
		t.Fatalf("after the digest was finished: got %v %v, want nothing", ids, err)
	}
	// The restart sees the first boot as an earlier boot of itself, and
	// not the other way round.
	if got := l2.SameInstance(la.Owner()); !got {
		t.Fatalf("SameInstance(%s) from %s: got false, want true", la.Owner(), l2.Owner())
	}
	if got := la.SameInstance(l2.Owner()); got {
		t.Fatalf("SameInstance(%s) from %s: got true, want false", l2.Owner(), la.Owner())
	}
}

// Two live processes given one instance name by mistake: the later boot
// takes the earlier's digests for its own orphans on its first pass only
// (a restart), never a digest the earlier one claims afterwards while it
// still beats.
func TestALiveProcessOfTheSameInstanceKeepsItsDigests(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	cfg := store.Config{Prefix: prefix, PendingLimit: 5}
	live := func() *liveness.Liveness {
		l := liveness.New(rdb, prefix, "host-a")
		if err := l.Beat(ctx); err != nil {
			t.Fatal(err)
		}
		return l
	}
	a := store.New(rdb, cfg).WithLiveness(live())
	b := store.New(rdb, cfg).WithLiveness(live()) // a later boot, same name
	now := t0.Add(time.Hour)
	if ids, err := b.LeaseOutbox(ctx, now, now.Add(2*time.Minute), 10); err != nil || len(ids) != 0 {
		t.Fatalf("first pass, nothing claimed: got %v %v, want nothing", ids, err)
	}
	sub := mustSub(t, a, "instant")
	record(t, a, t0, ev(jobevent.Created, "j1", sub.ID))
	due, err := a.DueAt(ctx, now, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: got %v %v, want one", due, err)
	}
	claims := []store.Claim{{Due: due[0], DigestID: store.DigestID(sub.ID, due[0].At), LeaseUntil: now.Add(2 * time.Minute)}}
	if res, err := a.ClaimDue(ctx, claims, now); err != nil || res[0] != store.Claimed {
		t.Fatalf("claim: got %v %v", res, err)
	}
	if ids, err := b.LeaseOutbox(ctx, now, now.Add(2*time.Minute), 10); err != nil || len(ids) != 0 {
		t.Fatalf("a digest of a live process of the same instance: got %v %v, want nothing leased", ids, err)
	}
}
