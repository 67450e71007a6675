package webhook_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jobalert/jobalert/webhook"
)

// Keys of the layout before hash tags ("<prefix>wh:...") are moved under
// the tag, once; the endpoint and the queued delivery work afterwards.
func TestMigrateKeysMovesTheOldLayout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_old", SubscriptionID: "sub1"})

	// Put them back where the old layout kept them.
	for _, rest := range []string{"ep:sub1", "d:dlv_old", "q", "s:sub1"} {
		from, to := e.prefix+"{wh}"+rest, e.prefix+"wh:"+rest
		dump, err := e.rdb.Dump(ctx, from).Result()
		if err != nil {
			t.Fatalf("DUMP %s: %v", from, err)
		}
		if err := e.rdb.Restore(ctx, to, 0, dump).Err(); err != nil {
			t.Fatalf("RESTORE %s: %v", to, err)
		}
		if err := e.rdb.Del(ctx, from).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := svc.Endpoint(ctx, "sub1"); err == nil {
		t.Fatal("the endpoint is found before the migration, want it under the old name only")
	}

	var seen int
	n, err := webhook.MigrateKeys(ctx, e.rdb, e.prefix, func(moved int) { seen = moved })
	if err != nil || n != 4 || seen != 4 {
		t.Fatalf("MigrateKeys: got %d (progress %d), %v, want 4 keys moved", n, seen, err)
	}
	if n, err := webhook.MigrateKeys(ctx, e.rdb, e.prefix, nil); err != nil || n != 0 {
		t.Fatalf("MigrateKeys again: got %d, %v, want 0 (nothing left to move)", n, err)
	}
	if url, enabled, err := svc.Endpoint(ctx, "sub1"); err != nil || url != rc.srv.URL || !enabled {
		t.Fatalf("endpoint after the migration: got %q, %v, %v, want %s enabled", url, enabled, err, rc.srv.URL)
	}
	run(t, svc)
	waitDelivered(t, svc, "dlv_old")
}
