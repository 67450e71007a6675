package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// serve refuses the unsharded layout, naming jobalert migrate; migrate
// moves it and prints the counts; serve's layout check then passes.
func TestServeRefusesTheOldLayoutUntilMigrateMovesIt(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	// The unsharded layout's keys, as the version before sharding wrote them.
	if err := rdb.HSet(ctx, prefix+"sub:sub_old", "email", "ada@example.com", "filter", `{"keywords":"backend"}`,
		"freq", "instant", "tz", "UTC", "hour", 8, "status", "active", "created", 1, "tv", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, prefix+"filters", "sub_old", `{"keywords":"backend"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, prefix+"pend:sub_old", 1).Err(); err != nil {
		t.Fatal(err)
	}
	// A webhook endpoint of the layout before the {wh} tag.
	if err := rdb.HSet(ctx, prefix+"wh:ep:sub_old", "url", "https://hooks.example/x", "enabled", 1).Err(); err != nil {
		t.Fatal(err)
	}
	env := startupEnv(t, testenv.RedisEnv(t))
	env["JOBALERT_REDIS_PREFIX"] = prefix
	getenv := func(k string) string { return env[k] }

	var out, errOut bytes.Buffer
	err := run(ctx, []string{"serve"}, getenv, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "jobalert migrate") {
		t.Fatalf("serve on the old layout: got %v, want a refusal naming jobalert migrate", err)
	}
	out.Reset()
	if err := run(ctx, []string{"migrate"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v (stderr %s)", err, errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "1 subscriptions, 1 pending items") || !strings.Contains(got, "1 webhook queue keys moved") {
		t.Fatalf("migrate output: got %q, want the counts (1 subscriptions, 1 pending items, 1 webhook queue keys moved)", got)
	}
	if got, err := rdb.HGet(ctx, prefix+"{wh}ep:sub_old", "url").Result(); err != nil || got != "https://hooks.example/x" {
		t.Fatalf("webhook endpoint after migrate: got %q, %v want it under the {wh} tag", got, err)
	}
	st := store.New(rdb, store.Config{Prefix: prefix})
	if err := st.CheckLayout(ctx); err != nil {
		t.Fatalf("layout after migrate: %v", err)
	}
	if sub, err := st.GetSubscription(ctx, "sub_old"); err != nil || sub.Email != "ada@example.com" {
		t.Fatalf("migrated subscription: got %+v %v", sub, err)
	}
}
