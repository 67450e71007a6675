package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

func TestLayoutStoresItsShardCountAndRefusesAnother(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	if err := store.New(rdb, store.Config{Prefix: prefix, Shards: 16}).CheckLayout(ctx); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if err := store.New(rdb, store.Config{Prefix: prefix, Shards: 16}).CheckLayout(ctx); err != nil {
		t.Fatalf("second start, same shards: %v", err)
	}
	err := store.New(rdb, store.Config{Prefix: prefix, Shards: 64}).CheckLayout(ctx)
	if err == nil || !strings.Contains(err.Error(), "JOBALERT_REDIS_SHARDS=16") {
		t.Fatalf("another shard count: got %v, want a refusal naming JOBALERT_REDIS_SHARDS=16", err)
	}
	if err := store.New(rdb, store.Config{Prefix: "a{b}:"}).CheckLayout(ctx); err == nil || !strings.Contains(err.Error(), "{ or }") {
		t.Fatalf("prefix with a hash tag: got %v, want a refusal", err)
	}
	// The old layout is recognised by its fixed keys.
	if err := rdb.HSet(ctx, prefix+"x:filters", "sub_a", "{}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := store.New(rdb, store.Config{Prefix: prefix + "x:"}).CheckLayout(ctx); !errors.Is(err, store.ErrOldLayout) || !strings.Contains(err.Error(), "jobalert migrate") {
		t.Fatalf("old layout: got %v, want ErrOldLayout naming jobalert migrate", err)
	}
}

// Every key of a subscription and of its shard has the same hash tag, so
// each script touches one slot of a cluster.
func TestAShardsKeysShareOneHashTag(t *testing.T) {
	tag := func(k string) string {
		i := strings.IndexByte(k, '{')
		j := strings.IndexByte(k[i+1:], '}')
		if i < 0 || j <= 0 {
			t.Fatalf("key %q has no hash tag", k)
		}
		return k[i+1 : i+1+j]
	}
	for _, id := range []string{"sub_a", "sub_b", "f123", "x.y"} {
		k := store.KeysOf("jobalert:", 64, id)
		sh := k.Shard
		want := tag(k.Sub)
		for _, key := range []string{k.Pending, sh.Due, sh.Filters, sh.Outbox, sh.JobSeq, sh.Jid, sh.Jobs, sh.JobExp, sh.Recording} {
			if got := tag(key); got != want {
				t.Errorf("%s: key %q has tag %q, want %q", id, key, got, want)
			}
		}
	}
	if got := store.JobKey("jobalert:", "job-1"); got != "jobalert:{jjob-1}job" {
		t.Errorf("job key: got %q, want jobalert:{jjob-1}job", got)
	}
}
