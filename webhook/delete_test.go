package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/webhook"
)

// TestDeleteEndpointPurges: deleting an endpoint removes at once every
// delivery record of the subscription (pending, retrying, dead letter and
// delivered) so that no key under the prefix names the subscription or its
// URL any more; another subscription's data stays.
func TestDeleteEndpointPurges(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	ctx := context.Background()
	// sub-del's receiver fails deliveries whose id contains "bad".
	del := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("webhook-id"), "bad") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	keep := newReceiver(t, e.clock, secret, status(http.StatusOK))
	const sub = "sub-del"
	url := del.srv.URL + "/hooks/delete-me"
	svc := e.service(t, webhook.Config{Schedule: []time.Duration{0, time.Minute}})
	mustSetEndpoint(t, svc, sub, url, secret)
	mustSetEndpoint(t, svc, "sub-keep", keep.srv.URL+"/hooks/keep", secret)
	stop := run(t, svc)

	// A dead letter: two failed attempts.
	mustEnqueue(t, svc, webhook.Delivery{ID: sub + ".bad-dead", SubscriptionID: sub, Jobs: sampleJobs()})
	st := waitAttempts(t, svc, sub+".bad-dead", 1)
	e.clock.Set(st.NextAttempt)
	waitStatus(t, svc, sub+".bad-dead", "dead", func(st webhook.Status) bool { return st.State == webhook.StateDead })
	// A delivered one (its record is kept for deduplication) and one
	// retrying (failed once, next attempt a minute away).
	mustEnqueue(t, svc, webhook.Delivery{ID: sub + ".ok", SubscriptionID: sub, Jobs: sampleJobs()})
	waitDelivered(t, svc, sub+".ok")
	mustEnqueue(t, svc, webhook.Delivery{ID: sub + ".bad-retry", SubscriptionID: sub, Jobs: sampleJobs()})
	waitAttempts(t, svc, sub+".bad-retry", 1)
	stop()
	// Two pending, never attempted; and the other subscription's.
	mustEnqueue(t, svc, webhook.Delivery{ID: sub + ".pending-1", SubscriptionID: sub, Jobs: sampleJobs()})
	mustEnqueue(t, svc, webhook.Delivery{ID: sub + ".pending-2", SubscriptionID: sub, Jobs: sampleJobs()})
	mustEnqueue(t, svc, webhook.Delivery{ID: "sub-keep.1", SubscriptionID: "sub-keep"})

	if found := testenv.KeysNaming(t, e.rdb, e.prefix, sub, url); len(found) == 0 {
		t.Fatal("before the delete no key names the subscription: the scan is not looking at the right keys")
	}
	if err := svc.DeleteEndpoint(ctx, sub); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if found := testenv.KeysNaming(t, e.rdb, e.prefix, sub, url, "delete-me"); len(found) != 0 {
		t.Errorf("after DeleteEndpoint got keys naming the subscription or its URL: %s; want none", strings.Join(found, "; "))
	}
	for _, id := range []string{".bad-dead", ".ok", ".bad-retry", ".pending-1", ".pending-2"} {
		if _, err := svc.Status(ctx, sub+id); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("Status(%s): got %v, want ErrNotFound", sub+id, err)
		}
	}
	if dead, err := svc.DeadLetters(ctx, 10); err != nil || len(dead) != 0 {
		t.Errorf("DeadLetters: got %+v, %v; want none", dead, err)
	}
	if found := testenv.KeysNaming(t, e.rdb, e.prefix, "sub-keep"); len(found) < 2 {
		t.Errorf("the other subscription's keys: got %v, want its endpoint and queued delivery kept", found)
	}

	// Nothing of the deleted subscription is sent any more; the other
	// subscription's delivery still is.
	before := len(del.Hits())
	e.clock.Advance(time.Hour)
	run(t, svc)
	waitDelivered(t, svc, "sub-keep.1")
	if n := len(del.Hits()); n != before {
		t.Errorf("deleted endpoint got %d more requests, want 0", n-before)
	}
	if err := svc.DeleteEndpoint(ctx, "no-such-sub"); err != nil {
		t.Errorf("DeleteEndpoint of a missing endpoint: %v, want nil", err)
	}
}

// TestDeleteEndpointDuringAttempt: an attempt in flight when its endpoint
// is deleted has its outcome dropped when it finishes (a failure is not
// retried or dead-lettered), and then nothing names the subscription.
func TestDeleteEndpointDuringAttempt(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	ctx := context.Background()
	release := make(chan struct{})
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	rc := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusInternalServerError)
	})
	const sub = "sub-inflight"
	url := rc.srv.URL + "/hooks/in-flight"
	svc := e.service(t, webhook.Config{Timeout: 30 * time.Second})
	mustSetEndpoint(t, svc, sub, url, secret)
	run(t, svc)
	mustEnqueue(t, svc, webhook.Delivery{ID: sub + ".1", SubscriptionID: sub})
	waitHits(t, rc, 1)

	if err := svc.DeleteEndpoint(ctx, sub); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if _, err := svc.Status(ctx, sub+".1"); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("Status during the attempt: got %v, want ErrNotFound", err)
	}
	close(release)
	released = true
	var found []string
	testenv.Eventually(t, wait, func() bool {
		found = testenv.KeysNaming(t, e.rdb, e.prefix, sub, url)
		return len(found) == 0
	}, "no key naming the subscription after the attempt ended (last: %v)", &found)
	if _, err := svc.Status(ctx, sub+".1"); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("Status after the attempt: got %v, want ErrNotFound", err)
	}
	if dead, err := svc.DeadLetters(ctx, 10); err != nil || len(dead) != 0 {
		t.Errorf("DeadLetters: got %+v, %v; want none", dead, err)
	}
	if n, err := e.rdb.ZCard(ctx, e.prefix+"{wh}q").Result(); err != nil || n != 0 {
		t.Errorf("queue length: got %d, %v; want 0", n, err)
	}
	if n := len(rc.Hits()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

// TestSubscriptionIndexLifetime: the per-subscription index that
// DeleteEndpoint reads ({wh}s:<sub>) never expires while a delivery is
// queued, and expires with the last delivered record otherwise.
func TestSubscriptionIndexLifetime(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	ctx := context.Background()
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{DoneTTL: time.Hour})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	sk := e.prefix + "{wh}s:sub1"
	mustEnqueue(t, svc, webhook.Delivery{ID: "sub1.a", SubscriptionID: "sub1"})
	if ttl, err := e.rdb.PTTL(ctx, sk).Result(); err != nil || ttl != -1 {
		t.Fatalf("index TTL with a queued delivery: got %v, %v; want none (-1ns)", ttl, err)
	}
	run(t, svc)
	waitDelivered(t, svc, "sub1.a")
	ttl, err := e.rdb.PTTL(ctx, sk).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour+time.Second {
		t.Errorf("index TTL after delivery: got %v, %v; want about the 1h DoneTTL", ttl, err)
	}
	if dk, _ := e.rdb.PTTL(ctx, e.prefix+"{wh}d:sub1.a").Result(); dk <= 0 || dk > ttl+time.Second {
		t.Errorf("record TTL %v, index TTL %v: want the index to expire with the record", dk, ttl)
	}
	// Entries of expired records are trimmed at the next write.
	e.clock.Advance(2 * time.Hour)
	mustEnqueue(t, svc, webhook.Delivery{ID: "sub1.b", SubscriptionID: "sub1"})
	if ids, err := e.rdb.ZRange(ctx, sk, 0, -1).Result(); err != nil || !slices.Equal(ids, []string{"sub1.b"}) {
		t.Errorf("index after the first record expired: got %v, %v; want [sub1.b]", ids, err)
	}
}
