package webhook_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/webhook"
)

// slowHost is an httptest server standing for one host with many webhook
// URLs (any path) that all answer 200, but only after delay. It counts the
// requests in flight and the answers given.
type slowHost struct {
	srv   *httptest.Server
	delay time.Duration

	mu                sync.Mutex
	inflight, maxSeen int
	answered          int
}

func newSlowHost(t *testing.T, delay time.Duration) *slowHost {
	t.Helper()
	h := &slowHost{delay: delay}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *slowHost) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.inflight++
	h.maxSeen = max(h.maxSeen, h.inflight)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inflight--
		h.mu.Unlock()
	}()
	select { // the endpoint's latency, not synchronisation
	case <-time.After(h.delay):
	case <-r.Context().Done():
		return
	}
	w.WriteHeader(http.StatusOK)
	h.mu.Lock()
	h.answered++
	h.mu.Unlock()
}

func (h *slowHost) counts() (answered, maxSeen int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.answered, h.maxSeen
}

// hostURL returns srv's URL with its loopback address replaced by name
// (resolved to 127.0.0.1 by loopbackResolver).
func hostURL(t *testing.T, srv *httptest.Server, name, path string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + name + ":" + port + path
}

// TestSlowHostDoesNotStarveFastEndpoint is the load test of the per-host
// share: 16 URLs on one host answer 200 just before the timeout, with a
// backlog of 32 deliveries queued ahead of 8 deliveries to a fast endpoint
// on another host. The slow host may hold at most Workers/4 = 4 of the 16
// workers, so the fast deliveries all arrive while the slow host is still
// working through its backlog, and every delivery is made exactly once
// (deferring at the share is not an attempt). Before per-host limits the
// 16 slow URLs took all 16 workers and the fast endpoint waited for the
// whole backlog.
func TestSlowHostDoesNotStarveFastEndpoint(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	const (
		slowURLs   = 16
		perURL     = 2
		slowTotal  = slowURLs * perURL
		fastTotal  = 8
		timeout    = 800 * time.Millisecond
		slowAnswer = 450 * time.Millisecond // over half the timeout: slow, but a success
	)
	slow := newSlowHost(t, slowAnswer)
	fast := newReceiver(t, clock.Real{}, secret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{
		Clock: clock.Real{}, Workers: 16, Timeout: timeout,
		Resolver: loopbackResolver(t), // *.example.test -> 127.0.0.1
	})
	for i := range slowURLs {
		mustSetEndpoint(t, svc, fmt.Sprintf("slow-%d", i), hostURL(t, slow.srv, "slow.example.test", fmt.Sprintf("/hook/%d", i)), secret)
	}
	mustSetEndpoint(t, svc, "fast", hostURL(t, fast.srv, "fast.example.test", "/hook"), secret)
	// The slow backlog first (round-robin over its URLs), then the fast
	// deliveries: all due at once, the slow ones first in queue order.
	for n := range perURL {
		for i := range slowURLs {
			mustEnqueue(t, svc, webhook.Delivery{ID: fmt.Sprintf("slow-%d.%d", i, n), SubscriptionID: fmt.Sprintf("slow-%d", i)})
		}
	}
	for n := range fastTotal {
		mustEnqueue(t, svc, webhook.Delivery{ID: fmt.Sprintf("fast.%d", n), SubscriptionID: "fast"})
	}
	run(t, svc)

	testenv.Eventually(t, 30*time.Second, func() bool { return len(fast.Hits()) >= fastTotal }, "%d deliveries to the fast endpoint", fastTotal)
	slowDone, _ := slow.counts()
	t.Logf("fast endpoint served all %d while the slow host had answered %d of %d", fastTotal, slowDone, slowTotal)
	if slowDone >= slowTotal/2 {
		t.Errorf("got %d of %d slow deliveries answered before the fast endpoint had its %d, want fewer than %d (fast deliveries must not wait for the slow backlog)",
			slowDone, slowTotal, fastTotal, slowTotal/2)
	}

	// Nothing lost, nothing attempted twice, the share never exceeded.
	for n := range fastTotal {
		st := waitDelivered(t, svc, fmt.Sprintf("fast.%d", n))
		if st.Attempts != 1 {
			t.Errorf("fast.%d: got %d attempts, want 1", n, st.Attempts)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() bool { n, _ := slow.counts(); return n >= slowTotal }, "the slow backlog answered")
	for n := range perURL {
		for i := range slowURLs {
			id := fmt.Sprintf("slow-%d.%d", i, n)
			st := waitDelivered(t, svc, id)
			if st.Attempts != 1 || st.LastError != "" {
				t.Errorf("%s: got %d attempts (last error %q), want 1 successful attempt", id, st.Attempts, st.LastError)
			}
		}
	}
	if _, maxSlow := slow.counts(); maxSlow > 4 {
		t.Errorf("got %d concurrent requests to the slow host, want at most 4 (Workers/4)", maxSlow)
	}
	if n := len(fast.Hits()); n != fastTotal {
		t.Errorf("fast endpoint got %d requests, want %d", n, fastTotal)
	}
}

// TestSlowAnswersTripBreaker: 2xx answers slower than half the timeout are
// delivered, but count toward the breaker like failures; a fast answer
// after the cool-down closes it again.
func TestSlowAnswersTripBreaker(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	var mu sync.Mutex
	answerAfter := 300 * time.Millisecond
	rc := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := answerAfter
		mu.Unlock()
		select { // the endpoint's latency, not synchronisation
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// Timeout 400ms: answers over 200ms are slow.
	svc := e.service(t, webhook.Config{Timeout: 400 * time.Millisecond, BreakerThreshold: 2, BreakerCooldown: time.Minute})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	run(t, svc)

	for _, id := range []string{"d1", "d2"} {
		mustEnqueue(t, svc, webhook.Delivery{ID: id, SubscriptionID: "sub1"})
		if st := waitDelivered(t, svc, id); st.Attempts != 1 || st.LastStatus != 200 {
			t.Fatalf("%s: got %+v, want delivered in one attempt", id, st)
		}
	}
	opened := e.clock.Now()
	mustEnqueue(t, svc, webhook.Delivery{ID: "d3", SubscriptionID: "sub1"})
	st := waitStatus(t, svc, "d3", "postponed by the breaker", func(st webhook.Status) bool {
		return st.State == webhook.StateDelivered || st.NextAttempt.Sub(opened) >= time.Minute
	})
	if st.State != webhook.StateQueued || st.Attempts != 0 || len(rc.Hits()) != 2 {
		t.Fatalf("d3: got %+v after %d requests, want it postponed a minute without an attempt after two slow answers", st, len(rc.Hits()))
	}

	mu.Lock()
	answerAfter = 0
	mu.Unlock()
	e.clock.Set(st.NextAttempt)
	waitDelivered(t, svc, "d3")
	// The fast answer closed the breaker: the next delivery goes at once.
	mustEnqueue(t, svc, webhook.Delivery{ID: "d4", SubscriptionID: "sub1"})
	if st := waitDelivered(t, svc, "d4"); st.Attempts != 1 {
		t.Errorf("d4: got %d attempts, want 1", st.Attempts)
	}
}

// TestEndpointWithoutHostKey: an endpoint stored before host keys existed
// (no "hh" field) gets one on its first due delivery, which is delivered.
func TestEndpointWithoutHostKey(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	ctx := context.Background()
	ek := e.prefix + "{wh}ep:sub1"
	want, err := e.rdb.HGet(ctx, ek, "hh").Result()
	if err != nil || len(want) != 24 {
		t.Fatalf("host key after SetEndpoint: got %q, %v; want 24 hex digits", want, err)
	}
	if err := e.rdb.HDel(ctx, ek, "hh").Err(); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_legacy", SubscriptionID: "sub1"})
	run(t, svc)
	if st := waitDelivered(t, svc, "dlv_legacy"); st.Attempts != 1 {
		t.Errorf("got %d attempts, want 1", st.Attempts)
	}
	if got, _ := e.rdb.HGet(ctx, ek, "hh").Result(); got != want {
		t.Errorf("host key after the delivery: got %q, want %q", got, want)
	}
}
