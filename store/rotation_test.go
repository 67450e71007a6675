package store_test

import (
	"context"
	"testing"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// Rotating the secret (the old address key now previous) never
// unsuppresses anyone nor forgets a bounce; an entry read while the
// previous key is configured is written under the current one, so it
// outlives the previous secret; writes use the current key only; a lift
// clears the address under the current and previous keys.
func TestAddressKeyRotation(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	oldKey, newKey, newerKey := []byte("old-address-key"), []byte("new-address-key"), []byte("newer-address-key")
	before := store.New(rdb, store.Config{Prefix: prefix, AddressKey: oldKey})
	rotated := store.New(rdb, store.Config{Prefix: prefix, AddressKey: newKey, PreviousAddressKeys: [][]byte{oldKey}})
	dropped := store.New(rdb, store.Config{Prefix: prefix, AddressKey: newKey})
	next := store.New(rdb, store.Config{Prefix: prefix, AddressKey: newerKey, PreviousAddressKeys: [][]byte{newKey}})

	// Suppressed and bounced once under the old key.
	if _, err := before.DeleteAllForEmail(ctx, "Gone.Person+x@example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := before.RecordBounce(ctx, "bouncy@example.com", 2, t0); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.SCard(ctx, prefix+"suppressed").Result(); n != 1 {
		t.Fatalf("suppression entries before the rotation: got %d, want 1", n)
	}

	// Before anything reads it after the rotation, the entry is under the
	// old key only: the rotated store finds it, a store without the
	// previous key does not.
	if sup, err := dropped.IsSuppressed(ctx, "gone.person@example.com"); err != nil || sup {
		t.Fatalf("without the previous key, before any read: got %v %v, want false (the entry is under the old key only)", sup, err)
	}
	if sup, err := rotated.IsSuppressed(ctx, "gone.person@example.com"); err != nil || !sup {
		t.Fatalf("after the rotation: got suppressed=%v %v, want true", sup, err)
	}
	// That read wrote the entry under the new key: it survives dropping
	// the previous secret, and the next rotation.
	for name, s := range map[string]*store.Redis{"previous key removed": dropped, "next rotation": next} {
		if sup, err := s.IsSuppressed(ctx, "gone.person@example.com"); err != nil || !sup {
			t.Errorf("%s: got suppressed=%v %v, want true", name, sup, err)
		}
	}

	// The bounce under the old key counts: the second bounce after the
	// rotation reaches the limit of 2.
	if sup, err := rotated.RecordBounce(ctx, "bouncy@example.com", 2, t0); err != nil || !sup {
		t.Fatalf("second bounce after the rotation: got suppressed=%v %v, want true", sup, err)
	}
	if sup, err := dropped.IsSuppressed(ctx, "bouncy@example.com"); err != nil || !sup {
		t.Errorf("bounce suppression written after the rotation: got %v %v, want it under the current key", sup, err)
	}
	// Writes use the current key only: the old entries are the old ones.
	if n, _ := rdb.HLen(ctx, prefix+"bounces").Result(); n != 2 {
		t.Errorf("bounce counts: got %d fields, want 2 (one under each key)", n)
	}
	// Deleting all data clears the counts under both keys.
	if _, err := rotated.DeleteAllForEmail(ctx, "bouncy@example.com", false); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.HLen(ctx, prefix+"bounces").Result(); n != 0 {
		t.Errorf("bounce counts after delete-all: got %d fields, want 0", n)
	}
	// Lifting takes the address off under every key.
	if lifted, err := rotated.LiftSuppression(ctx, "gone.person@example.com"); err != nil || !lifted {
		t.Fatalf("lift: got %v %v, want lifted", lifted, err)
	}
	for name, s := range map[string]*store.Redis{"before": before, "rotated": rotated, "dropped": dropped} {
		if sup, err := s.IsSuppressed(ctx, "gone.person@example.com"); err != nil || sup {
			t.Errorf("%s, after the lift: got suppressed=%v %v, want false", name, sup, err)
		}
	}
	if sup, _ := rotated.IsSuppressed(ctx, "other@example.com"); sup {
		t.Errorf("an unknown address: got suppressed, want not")
	}
}
