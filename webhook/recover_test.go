package webhook_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/liveness"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/webhook"
)

// beat runs l's beats until the test ends.
func beat(t *testing.T, l *liveness.Liveness) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// crashedClaimer is a process that beat once, claimed id and died before
// sending it (ClaimOnly: nothing of it keeps running), on an endpoint of
// rc. The lease is long, so only fast recovery brings the delivery back.
func crashedClaimer(t *testing.T, e *env, l *liveness.Liveness, rc *receiver, secret, id string) webhook.Config {
	t.Helper()
	ctx := context.Background()
	cfg := webhook.Config{Lease: 10 * time.Minute, Timeout: 30 * time.Second, RecoverInterval: 200 * time.Millisecond, Liveness: l}
	a := e.service(t, cfg)
	mustSetEndpoint(t, a, "sub1", rc.srv.URL, secret)
	mustEnqueue(t, a, webhook.Delivery{ID: id, SubscriptionID: "sub1"})
	if err := l.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	ids, err := webhook.ClaimOnly(a, ctx, 1)
	if err != nil || !slices.Equal(ids, []string{id}) {
		t.Fatalf("claim: got %v, %v, want [%s]", ids, err, id)
	}
	if st := mustStatus(t, a, id); st.NextAttempt.Before(e.clock.Now().Add(9 * time.Minute)) {
		t.Fatalf("claimed delivery due at %v, want the end of its 10 min lease", st.NextAttempt)
	}
	return cfg
}

// A process killed with -9 right after a claim stops beating; another
// replica hands its delivery back and delivers it within seconds, long
// before the lease (which, on the fake clock, never ends here).
func TestDeadProcessDeliveryTakenOverWithinSeconds(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	la := liveness.New(e.rdb, e.prefix, "web-a").WithTiming(time.Second, 200*time.Millisecond)
	cfg := crashedClaimer(t, e, la, rc, secret, "dlv_orphan")
	killed := time.Now()

	lb := liveness.New(e.rdb, e.prefix, "web-b").WithTiming(time.Second, 200*time.Millisecond)
	beat(t, lb)
	cfg.Liveness = lb
	b := e.service(t, cfg)
	run(t, b)

	var st webhook.Status
	testenv.Eventually(t, 15*time.Second, func() bool {
		var err error
		st, err = b.Status(context.Background(), "dlv_orphan")
		return err == nil && st.State == webhook.StateDelivered
	}, "the dead process's delivery was not delivered by the live one (last %+v)", &st)
	t.Logf("delivered by the live replica %s after the claimer's last beat (its beat lasts %s)",
		time.Since(killed).Round(time.Millisecond), la.TTL())
	if st.Attempts != 1 || len(rc.Hits()) != 1 {
		t.Errorf("got %d attempts recorded, %d requests, want 1 and 1", st.Attempts, len(rc.Hits()))
	}
}

// A restarted process (same instance name, new boot id) takes back its
// own orphans at once, at its start, while another replica leaves them
// alone as long as the old boot's key has not expired.
func TestRestartTakesBackItsOwnOrphansAtOnce(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	ctx := context.Background()
	cfg := crashedClaimer(t, e, liveness.New(e.rdb, e.prefix, "web-1"), rc, secret, "dlv_mine") // its key lasts 6 s

	other := liveness.New(e.rdb, e.prefix, "web-2")
	if err := other.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Liveness = other
	if n, err := webhook.RecoverOrphans(e.service(t, cfg), ctx, true); err != nil || n != 0 {
		t.Fatalf("another instance, while the claimer still beats: handed back %d, %v, want 0", n, err)
	}

	again := liveness.New(e.rdb, e.prefix, "web-1")
	if err := again.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Liveness = again
	restarted := e.service(t, cfg)
	if n, err := webhook.RecoverOrphans(restarted, ctx, false); err != nil || n != 0 {
		t.Fatalf("the restarted instance, after its start: handed back %d, %v, want 0 (the old boot still beats)", n, err)
	}
	if n, err := webhook.RecoverOrphans(restarted, ctx, true); err != nil || n != 1 {
		t.Fatalf("the restarted instance, at its start: handed back %d, %v, want its 1 orphan", n, err)
	}
	if st := mustStatus(t, restarted, "dlv_mine"); st.NextAttempt.After(e.clock.Now()) {
		t.Errorf("handed back delivery due at %v, want now (%v)", st.NextAttempt, e.clock.Now())
	}
	run(t, restarted)
	waitDelivered(t, restarted, "dlv_mine")
}

// A live process whose liveness key was lost (a Redis failover that
// dropped its last beat) sets it again at its next beat; an owner is
// handed back only when seen dead twice a beat interval apart, so its
// work stays with it. A dead one is handed back at the second look.
func TestLostBeatDoesNotHandBackLiveWork(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	ctx := context.Background()
	la := liveness.New(e.rdb, e.prefix, "web-a")
	cfg := crashedClaimer(t, e, la, rc, secret, "dlv_live")

	clk := clock.NewFake(time.Now())
	lb := liveness.New(e.rdb, e.prefix, "web-b").WithClock(clk)
	if err := lb.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Liveness = lb
	b := e.service(t, cfg)
	look := func(want int, what string) {
		t.Helper()
		if n, err := webhook.RecoverOrphans(b, ctx, false); err != nil || n != want {
			t.Fatalf("%s: handed back %d, %v, want %d", what, n, err, want)
		}
	}

	if err := e.rdb.Del(ctx, e.prefix+"live:"+la.Owner()).Err(); err != nil {
		t.Fatal(err)
	}
	look(0, "first look at an owner whose key was lost")
	clk.Advance(la.Every() / 2)
	look(0, "second look within a beat interval")
	if err := la.Beat(ctx); err != nil { // its next beat
		t.Fatal(err)
	}
	clk.Advance(la.Every())
	look(0, "a look a beat interval later, after it beat again")

	// Now it is dead for good (no more beats).
	if err := e.rdb.Del(ctx, e.prefix+"live:"+la.Owner()).Err(); err != nil {
		t.Fatal(err)
	}
	look(0, "first look at a dead owner")
	clk.Advance(la.Every())
	look(1, "second look a beat interval later")
}
