package webhook_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/liveness"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/webhook"
)

// hanging returns a receiver whose first request hangs until the test
// ends (the claimer "crashed" mid-attempt) and whose later ones get 200.
func hanging(t *testing.T, e *env, secret string) *receiver {
	t.Helper()
	release := make(chan struct{})
	rc := newReceiver(t, e.clock, secret, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() { close(release) })
	return rc
}

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

// A process killed with -9 mid-attempt stops beating; another replica
// hands its delivery back and delivers it within seconds, long before the
// lease (which, on the fake clock, never ends here). The dead claimer's
// late outcome is fenced off.
func TestDeadProcessDeliveryTakenOverWithinSeconds(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := hanging(t, e, secret)
	cfg := webhook.Config{Lease: 10 * time.Minute, Timeout: 30 * time.Second, RecoverInterval: 200 * time.Millisecond}

	// A beats once, when its Run starts, and never again: it was killed.
	la := liveness.New(e.rdb, e.prefix, "web-a").WithTiming(time.Second, 200*time.Millisecond)
	acfg := cfg
	acfg.Liveness = la
	a := e.service(t, acfg)
	mustSetEndpoint(t, a, "sub1", rc.srv.URL, secret)
	run(t, a)
	mustEnqueue(t, a, webhook.Delivery{ID: "dlv_orphan", SubscriptionID: "sub1"})
	waitHits(t, rc, 1)
	killed := time.Now()

	lb := liveness.New(e.rdb, e.prefix, "web-b").WithTiming(time.Second, 200*time.Millisecond)
	beat(t, lb)
	bcfg := cfg
	bcfg.Liveness = lb
	b := e.service(t, bcfg)
	run(t, b)

	var st webhook.Status
	testenv.Eventually(t, 15*time.Second, func() bool {
		var err error
		st, err = b.Status(context.Background(), "dlv_orphan")
		return err == nil && st.State == webhook.StateDelivered
	}, "the dead process's delivery was not delivered by the live one (last %+v)", &st)
	t.Logf("delivered by the live replica %s after the claimer stopped beating (its beat lasts %s)",
		time.Since(killed).Round(time.Millisecond), la.TTL())
	if st.Attempts != 1 || len(rc.Hits()) != 2 {
		t.Errorf("got %d attempts recorded, %d requests, want 1 and 2 (the hung one is not recorded)", st.Attempts, len(rc.Hits()))
	}
}

// A restarted process (same instance name, new boot id) takes back its
// own orphans at once, while another replica leaves them alone as long as
// the old boot's key has not expired.
func TestRestartTakesBackItsOwnOrphansAtOnce(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := hanging(t, e, secret)
	cfg := webhook.Config{Lease: 10 * time.Minute, Timeout: 30 * time.Second, RecoverInterval: 200 * time.Millisecond}
	ctx := context.Background()

	old := liveness.New(e.rdb, e.prefix, "web-1") // its key lasts 6 s
	ocfg := cfg
	ocfg.Liveness = old
	a := e.service(t, ocfg)
	mustSetEndpoint(t, a, "sub1", rc.srv.URL, secret)
	run(t, a)
	mustEnqueue(t, a, webhook.Delivery{ID: "dlv_mine", SubscriptionID: "sub1"})
	waitHits(t, rc, 1)

	other := liveness.New(e.rdb, e.prefix, "web-2")
	if err := other.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	ocfg.Liveness = other
	if n, err := webhook.RecoverOrphans(e.service(t, ocfg), ctx, true); err != nil || n != 0 {
		t.Fatalf("another instance, while the claimer still beats: handed back %d, %v, want 0", n, err)
	}

	again := liveness.New(e.rdb, e.prefix, "web-1")
	if err := again.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	ocfg.Liveness = again
	restarted := e.service(t, ocfg)
	if n, err := webhook.RecoverOrphans(restarted, ctx, false); err != nil || n != 0 {
		t.Fatalf("the restarted instance, after its start: handed back %d, %v, want 0 (the old boot still beats)", n, err)
	}
	if n, err := webhook.RecoverOrphans(restarted, ctx, true); err != nil || n != 1 {
		t.Fatalf("the restarted instance: handed back %d, %v, want its 1 orphan", n, err)
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
	rc := hanging(t, e, secret)
	cfg := webhook.Config{Lease: 10 * time.Minute, Timeout: 30 * time.Second}
	ctx := context.Background()

	la := liveness.New(e.rdb, e.prefix, "web-a")
	acfg := cfg
	acfg.Liveness = la
	a := e.service(t, acfg)
	mustSetEndpoint(t, a, "sub1", rc.srv.URL, secret)
	run(t, a)
	mustEnqueue(t, a, webhook.Delivery{ID: "dlv_live", SubscriptionID: "sub1"})
	waitHits(t, rc, 1)

	clk := clock.NewFake(time.Now())
	lb := liveness.New(e.rdb, e.prefix, "web-b").WithClock(clk)
	if err := lb.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	bcfg := cfg
	bcfg.Liveness = lb
	b := e.service(t, bcfg)
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
