package webhook_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const wait = 5 * time.Second

// env is one test's Redis, key prefix and fake clock, shared by the
// services it starts (replicas or restarts).
type env struct {
	rdb    redis.UniversalClient
	prefix string
	clock  *clock.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return &env{rdb: rdb, prefix: prefix, clock: clock.NewFake(time.Now().Truncate(time.Second))}
}

// service returns a Service with test defaults: private targets allowed
// (httptest listens on loopback), the fake clock, fast polling.
func (e *env) service(t *testing.T, cfg webhook.Config) *webhook.Service {
	t.Helper()
	cfg.AllowPrivate = true
	if cfg.Clock == nil {
		cfg.Clock = e.clock
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.WaitReplicas == 0 {
		cfg.WaitReplicas = -1 // WAIT for a replica on a cluster (with-redis-cluster.sh)
	}
	return webhook.New(e.rdb, e.prefix, cfg, nil)
}

// run starts svc.Run and returns a function stopping it and waiting for it
// to return; it is also stopped at cleanup.
func run(t *testing.T, svc *webhook.Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// hit is one request a receiver got.
type hit struct {
	header http.Header
	body   []byte
	err    error // signature verification
	at     time.Time
}

// receiver is an httptest server that verifies each request's signature
// with the independent verifier and answers with respond(n, w) for the
// n-th request (1-based).
type receiver struct {
	srv     *httptest.Server
	clock   webhook.Clock
	mu      sync.Mutex
	secrets []string // accepted secrets; a request must verify under each
	hits    []hit
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, clock webhook.Clock, secret string, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{clock: clock, secrets: []string{secret}, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	h := hit{header: r.Header.Clone(), body: body, at: time.Now()}
	for _, s := range rc.secrets {
		if err := verify(s, r.Header, body, rc.clock.Now()); err != nil {
			h.err = err
		}
	}
	rc.hits = append(rc.hits, h)
	n, respond := len(rc.hits), rc.respond
	rc.mu.Unlock()
	if respond != nil {
		respond(n, w, r)
	}
}

func (rc *receiver) Hits() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

func (rc *receiver) setRespond(f func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = f
}

func (rc *receiver) setSecrets(s ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets = s
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// sequence answers the n-th request with codes[n-1], and the last code
// after that.
func sequence(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
	}
}

func mustSetEndpoint(t *testing.T, svc *webhook.Service, sub, url, secret string) {
	t.Helper()
	if err := svc.SetEndpoint(context.Background(), sub, url, secret); err != nil {
		t.Fatalf("SetEndpoint(%s, %s): %v", sub, url, err)
	}
}

func mustEnqueue(t *testing.T, svc *webhook.Service, d webhook.Delivery) {
	t.Helper()
	if err := svc.Enqueue(context.Background(), d); err != nil {
		t.Fatalf("Enqueue(%s): %v", d.ID, err)
	}
}

func mustStatus(t *testing.T, svc *webhook.Service, id string) webhook.Status {
	t.Helper()
	st, err := svc.Status(context.Background(), id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	return st
}

// waitStatus polls until delivery id's status satisfies cond.
func waitStatus(t *testing.T, svc *webhook.Service, id, what string, cond func(webhook.Status) bool) webhook.Status {
	t.Helper()
	var st webhook.Status
	testenv.Eventually(t, wait, func() bool {
		var err error
		st, err = svc.Status(context.Background(), id)
		return err == nil && cond(st)
	}, "delivery %s: %s (last status %+v)", id, what, &st)
	return st
}

func waitAttempts(t *testing.T, svc *webhook.Service, id string, n int) webhook.Status {
	t.Helper()
	return waitStatus(t, svc, id, fmt.Sprintf("%d attempts", n), func(st webhook.Status) bool { return st.Attempts >= n })
}

func waitDelivered(t *testing.T, svc *webhook.Service, id string) webhook.Status {
	t.Helper()
	return waitStatus(t, svc, id, "delivered", func(st webhook.Status) bool { return st.State == webhook.StateDelivered })
}

func waitHits(t *testing.T, rc *receiver, n int) []hit {
	t.Helper()
	testenv.Eventually(t, wait, func() bool { return len(rc.Hits()) >= n }, "%d requests to %s", n, rc.srv.URL)
	return rc.Hits()
}

func sampleJobs() []matcher.Job {
	return []matcher.Job{
		{ID: "sbux-1042", Title: "Backend Engineer II", Company: "Starbucks", Locations: []string{"Seattle, WA, US"},
			Workplace: "hybrid", VisaTypes: []string{"H-1B"}, Salary: &matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"},
			URL: "https://careers.example.com/sbux-1042", PostedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
		{ID: "acme-7", Title: "Senior Backend Engineer", Company: "Acme"},
	}
}

func TestDeliverSignedPayload(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusNoContent))
	svc := e.service(t, webhook.Config{UserAgent: "jobalert/1.2.3"})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL+"/hook", secret)
	run(t, svc)

	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_1", SubscriptionID: "sub1", Jobs: sampleJobs(), More: 3})
	st := waitDelivered(t, svc, "dlv_1")
	hits := rc.Hits()
	if len(hits) != 1 {
		t.Fatalf("got %d requests, want 1", len(hits))
	}
	h := hits[0]
	if h.err != nil {
		t.Fatalf("signature: %v", h.err)
	}
	for k, want := range map[string]string{
		"webhook-id":        "dlv_1",
		"webhook-timestamp": strconv.FormatInt(e.clock.Now().Unix(), 10),
		"Content-Type":      "application/json",
		"User-Agent":        "jobalert/1.2.3",
	} {
		if got := h.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var body struct {
		Type           string        `json:"type"`
		ID             string        `json:"id"`
		SubscriptionID string        `json:"subscription_id"`
		Jobs           []matcher.Job `json:"jobs"`
		More           *int          `json:"more"`
	}
	if err := json.Unmarshal(h.body, &body); err != nil {
		t.Fatalf("body %s: %v", h.body, err)
	}
	if body.Type != "jobs.matched" || body.ID != "dlv_1" || body.SubscriptionID != "sub1" ||
		len(body.Jobs) != 2 || body.Jobs[0].Title != "Backend Engineer II" || body.Jobs[0].Salary.Max != 160000 ||
		body.More == nil || *body.More != 3 {
		t.Errorf("body = %s", h.body)
	}
	if st.Attempts != 1 || st.LastStatus != http.StatusNoContent {
		t.Errorf("status = %+v, want 1 attempt with 204", st)
	}
}

func TestRetry503Then200SameID(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, sequence(503, 503, 200))
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	run(t, svc)

	start := e.clock.Now()
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_retry", SubscriptionID: "sub1", Jobs: sampleJobs()})
	st := waitAttempts(t, svc, "dlv_retry", 1)
	if d := st.NextAttempt.Sub(start); d < 4*time.Second || d > 6*time.Second {
		t.Errorf("second attempt due %v after the first, want 5s ±20%%", d)
	}
	e.clock.Set(st.NextAttempt)
	st = waitAttempts(t, svc, "dlv_retry", 2)
	if d := st.NextAttempt.Sub(st.LastAttempt); d < 4*time.Minute || d > 6*time.Minute {
		t.Errorf("third attempt due %v after the second, want 5m ±20%%", d)
	}
	e.clock.Set(st.NextAttempt)
	st = waitDelivered(t, svc, "dlv_retry")

	hits := rc.Hits()
	if len(hits) != 3 || st.Attempts != 3 {
		t.Fatalf("got %d requests, %d attempts recorded, want 3", len(hits), st.Attempts)
	}
	var stamps []string
	for i, h := range hits {
		if got := h.header.Get("webhook-id"); got != "dlv_retry" {
			t.Errorf("attempt %d webhook-id = %q, want dlv_retry", i+1, got)
		}
		if h.err != nil {
			t.Errorf("attempt %d signature: %v", i+1, h.err)
		}
		stamps = append(stamps, h.header.Get("webhook-timestamp"))
	}
	if stamps[0] == stamps[1] || stamps[1] == stamps[2] {
		t.Errorf("timestamps %v: want a new one per attempt", stamps)
	}
}

func TestRetryAfter(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	// Each case has its own path; the first request to a path gets the
	// case's answer, later ones 200.
	var mu sync.Mutex
	seen := map[string]bool{}
	answers := map[string]func(w http.ResponseWriter){}
	rc := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first, answer := !seen[r.URL.Path], answers[r.URL.Path]
		seen[r.URL.Path] = true
		mu.Unlock()
		if first && answer != nil {
			answer(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	svc := e.service(t, webhook.Config{})
	run(t, svc)

	tests := []struct {
		name       string
		code       int
		retryAfter func(now time.Time) string
		min, max   time.Duration
	}{
		{"429 seconds", 429, func(time.Time) string { return "120" }, 120 * time.Second, 120 * time.Second},
		{"503 seconds", 503, func(time.Time) string { return "7" }, 7 * time.Second, 7 * time.Second},
		{"503 http date", 503, func(now time.Time) string { return now.Add(90 * time.Second).UTC().Format(http.TimeFormat) }, 90 * time.Second, 90 * time.Second},
		{"429 zero is 1s", 429, func(time.Time) string { return "0" }, time.Second, time.Second},
		{"429 past date is 1s", 429, func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) }, time.Second, time.Second},
		{"503 huge is 24h", 503, func(time.Time) string { return "999999999" }, 24 * time.Hour, 24 * time.Hour},
		{"503 garbage follows the schedule", 503, func(time.Time) string { return "soon" }, 4 * time.Second, 6 * time.Second},
		{"500 ignores Retry-After", 500, func(time.Time) string { return "3600" }, 4 * time.Second, 6 * time.Second},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fmt.Sprintf("/case%d", i)
			now := e.clock.Now()
			mu.Lock()
			answers[path] = func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", tt.retryAfter(now))
				w.WriteHeader(tt.code)
			}
			mu.Unlock()
			sub, id := fmt.Sprintf("sub%d", i), fmt.Sprintf("dlv%d", i)
			mustSetEndpoint(t, svc, sub, rc.srv.URL+path, secret)
			mustEnqueue(t, svc, webhook.Delivery{ID: id, SubscriptionID: sub})
			st := waitAttempts(t, svc, id, 1)
			if st.LastStatus != tt.code {
				t.Errorf("last status %d, want %d", st.LastStatus, tt.code)
			}
			if got := st.NextAttempt.Sub(st.LastAttempt); got < tt.min || got > tt.max {
				t.Errorf("next attempt after %v, want [%v, %v]", got, tt.min, tt.max)
			}
			e.clock.Set(st.NextAttempt)
			waitDelivered(t, svc, id)
		})
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusGone))
	type gone struct{ sub, url string }
	goneCh := make(chan gone, 10)
	svc := e.service(t, webhook.Config{OnGone: func(_ context.Context, sub, url string) { goneCh <- gone{sub, url} }})
	url := rc.srv.URL + "/hook"
	mustSetEndpoint(t, svc, "sub1", url, secret)
	run(t, svc)

	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_gone", SubscriptionID: "sub1"})
	select {
	case g := <-goneCh:
		if g != (gone{"sub1", url}) {
			t.Errorf("OnGone(%q, %q), want (sub1, %q)", g.sub, g.url, url)
		}
	case <-time.After(wait):
		t.Fatal("OnGone not called")
	}
	gotURL, enabled, err := svc.Endpoint(context.Background(), "sub1")
	if err != nil || enabled || gotURL != url {
		t.Fatalf("Endpoint = %q, %v, %v; want %q disabled", gotURL, enabled, err, url)
	}
	st := waitStatus(t, svc, "dlv_gone", "dead", func(st webhook.Status) bool { return st.State == webhook.StateDead })
	if st.Attempts != 1 || st.LastStatus != 410 || !strings.Contains(st.DeadReason, "410") {
		t.Errorf("status %+v, want one attempt dead-lettered for 410", st)
	}
	// Disabled: enqueueing is a no-op, replay refused, until SetEndpoint.
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_after", SubscriptionID: "sub1"})
	if _, err := svc.Status(context.Background(), "dlv_after"); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("Status of delivery enqueued to a disabled endpoint: %v, want ErrNotFound", err)
	}
	if err := svc.Replay(context.Background(), "dlv_gone"); !errors.Is(err, webhook.ErrEndpointDisabled) {
		t.Errorf("Replay to disabled endpoint: %v, want ErrEndpointDisabled", err)
	}
	if n := len(rc.Hits()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	select {
	case g := <-goneCh:
		t.Errorf("OnGone called again: %v", g)
	default:
	}
	rc.setRespond(status(http.StatusOK))
	mustSetEndpoint(t, svc, "sub1", url, "")
	if err := svc.Replay(context.Background(), "dlv_gone"); err != nil {
		t.Fatalf("Replay after re-enabling: %v", err)
	}
	waitDelivered(t, svc, "dlv_gone")
}

func TestQueuedDeliveriesOfDisabledEndpointAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusGone))
	var gone atomic.Int32
	svc := e.service(t, webhook.Config{PerEndpoint: 1, OnGone: func(context.Context, string, string) { gone.Add(1) }})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	for _, id := range []string{"d1", "d2", "d3"} {
		mustEnqueue(t, svc, webhook.Delivery{ID: id, SubscriptionID: "sub1"})
	}
	run(t, svc)
	// One at a time: the others wait a second or two of (fake) time.
	testenv.Eventually(t, wait, func() bool {
		e.clock.Advance(100 * time.Millisecond)
		dead, err := svc.DeadLetters(context.Background(), 10)
		return err == nil && len(dead) == 3
	}, "3 dead letters")
	testenv.Eventually(t, wait, func() bool { return gone.Load() > 0 }, "OnGone called")
	if n := gone.Load(); n != 1 {
		t.Errorf("OnGone called %d times, want 1", n)
	}
	if n := len(rc.Hits()); n != 1 {
		t.Errorf("receiver got %d requests, want 1 (the rest are not sent once it is gone)", n)
	}
	dead, _ := svc.DeadLetters(context.Background(), 10)
	reasons := map[string]int{}
	for _, d := range dead {
		reasons[d.DeadReason]++
	}
	if reasons["endpoint answered 410 Gone"] != 1 || reasons["endpoint disabled"] != 2 {
		t.Errorf("dead reasons %v, want one 410 and two disabled", reasons)
	}
}

func TestDeleteEndpointDropsQueuedDeliveries(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_del", SubscriptionID: "sub1"})
	if err := svc.DeleteEndpoint(context.Background(), "sub1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Endpoint(context.Background(), "sub1"); !errors.Is(err, webhook.ErrNoEndpoint) {
		t.Errorf("Endpoint after delete: %v, want ErrNoEndpoint", err)
	}
	run(t, svc)
	testenv.Eventually(t, wait, func() bool {
		_, err := svc.Status(context.Background(), "dlv_del")
		return errors.Is(err, webhook.ErrNotFound)
	}, "delivery of a deleted endpoint dropped")
	if n := len(rc.Hits()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	target := newReceiver(t, e.clock, secret, status(http.StatusOK))
	rc := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.srv.URL+"/elsewhere", http.StatusFound)
	})
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	run(t, svc)

	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_302", SubscriptionID: "sub1"})
	st := waitAttempts(t, svc, "dlv_302", 1)
	if st.State != webhook.StateQueued || st.LastStatus != http.StatusFound || !strings.Contains(st.LastError, "redirect") {
		t.Errorf("status %+v, want a failed attempt (302) queued for retry", st)
	}
	if n := len(target.Hits()); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

// A failed attempt is logged and kept without the endpoint's path and
// query, the redirect target's, or an address the receiver answered
// with: only hosts.
func TestFailedAttemptsShowHostsOnly(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "https://elsewhere.example/in?token=LOCSECRET")
		w.WriteHeader(http.StatusFound)
		fmt.Fprint(w, "moved for owner@example.com")
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // connection refused: the HTTP client's error quotes the URL
	var log testenv.SyncBuffer
	cfg := webhook.Config{AllowPrivate: true, Clock: e.clock, PollInterval: 10 * time.Millisecond, Timeout: 3 * time.Second}
	svc := webhook.New(e.rdb, e.prefix, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL+"/hooks/PATHSECRET?key=QSECRET", secret)
	mustSetEndpoint(t, svc, "sub2", closedURL+"/hooks/PATHSECRET2?key=QSECRET2", secret)
	stop := run(t, svc)
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_a", SubscriptionID: "sub1"})
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_b", SubscriptionID: "sub2"})
	a, b := waitAttempts(t, svc, "dlv_a", 1), waitAttempts(t, svc, "dlv_b", 1)
	stop()
	for _, text := range []string{a.LastError, b.LastError, log.String()} {
		for _, leak := range []string{"SECRET", "/hooks", "/in", "owner@"} {
			if strings.Contains(text, leak) {
				t.Errorf("got %q, want no %q in it", text, leak)
			}
		}
	}
	if !strings.Contains(a.LastError, "https://elsewhere.example") || !strings.Contains(a.LastError, "o***@example.com") ||
		!strings.Contains(b.LastError, closedURL) || !strings.Contains(log.String(), "will retry") {
		t.Errorf("got errors %q and %q, log:\n%s\nwant the hosts kept and the retries logged", a.LastError, b.LastError, log.String())
	}
}

func TestHangingEndpointDoesNotDelayOthers(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	var (
		mu                sync.Mutex
		inflight, maxSeen int
		cancelledAfter    []time.Duration
	)
	hanging := newReceiver(t, e.clock, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mu.Lock()
		inflight++
		maxSeen = max(maxSeen, inflight)
		mu.Unlock()
		select {
		case <-r.Context().Done():
			mu.Lock()
			cancelledAfter = append(cancelledAfter, time.Since(start))
			mu.Unlock()
		case <-time.After(60 * time.Second):
		}
		mu.Lock()
		inflight--
		mu.Unlock()
	})
	healthy := newReceiver(t, e.clock, secret, status(http.StatusOK))
	// Real clock: the timeout and the concurrency lease run in real time.
	svc := e.service(t, webhook.Config{Clock: clock.Real{}, Workers: 4, PerEndpoint: 2, Timeout: 500 * time.Millisecond})
	mustSetEndpoint(t, svc, "slow", hanging.srv.URL, secret)
	mustSetEndpoint(t, svc, "fast", healthy.srv.URL, secret)
	for i := range 8 {
		mustEnqueue(t, svc, webhook.Delivery{ID: fmt.Sprintf("slow-%d", i), SubscriptionID: "slow"})
	}
	run(t, svc)
	testenv.Eventually(t, wait, func() bool { mu.Lock(); defer mu.Unlock(); return inflight == 2 }, "2 requests hanging")

	start := time.Now()
	for i := range 3 {
		mustEnqueue(t, svc, webhook.Delivery{ID: fmt.Sprintf("fast-%d", i), SubscriptionID: "fast"})
	}
	testenv.Eventually(t, 2*time.Second, func() bool { return len(healthy.Hits()) == 3 }, "3 deliveries to the healthy endpoint")
	t.Logf("healthy endpoint served in %v while the other hangs", time.Since(start))

	testenv.Eventually(t, wait, func() bool { mu.Lock(); defer mu.Unlock(); return len(cancelledAfter) >= 2 }, "hanging requests cancelled")
	mu.Lock()
	if maxSeen > 2 {
		t.Errorf("%d concurrent requests to one endpoint, want at most 2", maxSeen)
	}
	for _, d := range cancelledAfter {
		if d > 3*time.Second {
			t.Errorf("hanging request cancelled after %v, want about the 500ms timeout", d)
		}
	}
	mu.Unlock()
	// The attempts that hung are recorded as timeouts (which ones were
	// attempted, and which postponed by the breaker, depends on timing).
	testenv.Eventually(t, wait, func() bool {
		for i := range 8 {
			st, err := svc.Status(context.Background(), fmt.Sprintf("slow-%d", i))
			if err == nil && st.Attempts > 0 && strings.Contains(st.LastError, "no response within 500ms") {
				return true
			}
		}
		return false
	}, "a hanging attempt recorded as a timeout")
}

func TestRestartResumesSchedule(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, sequence(503, 200))
	first := e.service(t, webhook.Config{})
	mustSetEndpoint(t, first, "sub1", rc.srv.URL, secret)
	stop := run(t, first)
	mustEnqueue(t, first, webhook.Delivery{ID: "dlv_restart", SubscriptionID: "sub1"})
	st := waitAttempts(t, first, "dlv_restart", 1)
	stop()

	second := e.service(t, webhook.Config{})
	if got := mustStatus(t, second, "dlv_restart"); got.NextAttempt != st.NextAttempt || got.State != webhook.StateQueued {
		t.Fatalf("after restart: %+v, want queued for %v", got, st.NextAttempt)
	}
	run(t, second)
	e.clock.Set(st.NextAttempt)
	st = waitDelivered(t, second, "dlv_restart")
	hits := rc.Hits()
	if len(hits) != 2 || st.Attempts != 2 {
		t.Fatalf("%d requests, %d attempts; want 2", len(hits), st.Attempts)
	}
	if hits[0].header.Get("webhook-id") != hits[1].header.Get("webhook-id") {
		t.Errorf("webhook-id changed across the restart")
	}
}

func TestDeadLetterReplay(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusInternalServerError))
	reg := prometheus.NewRegistry()
	svc := e.service(t, webhook.Config{Schedule: []time.Duration{0, time.Second}, Metrics: webhook.NewMetrics(reg)})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	run(t, svc)
	ctx := context.Background()

	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_dead", SubscriptionID: "sub1", Jobs: sampleJobs()})
	st := waitAttempts(t, svc, "dlv_dead", 1)
	e.clock.Set(st.NextAttempt)
	waitStatus(t, svc, "dlv_dead", "dead", func(st webhook.Status) bool { return st.State == webhook.StateDead })
	if got := metricValue(t, reg, "jobalert_webhook_dead_letters_total", "exhausted"); got != 1 {
		t.Errorf("dead_letters_total{reason=exhausted}: got %v, want 1", got)
	}
	if b := mustBacklog(t, svc); b.DeadLetters != 1 || b.Queued != 0 {
		t.Errorf("backlog: got %+v, want 1 dead letter, nothing queued", b)
	}

	dead, err := svc.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != "dlv_dead" || dead[0].SubscriptionID != "sub1" || dead[0].Attempts != 2 ||
		dead[0].LastStatus != 500 || dead[0].DeadReason != "attempts exhausted" || dead[0].URL != rc.srv.URL {
		t.Fatalf("DeadLetters = %+v", dead)
	}
	// A duplicate enqueue of a dead letter does not revive it.
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_dead", SubscriptionID: "sub1"})
	if st := mustStatus(t, svc, "dlv_dead"); st.State != webhook.StateDead {
		t.Fatalf("after re-enqueue: %+v, want still dead", st)
	}

	rc.setRespond(status(http.StatusOK))
	if err := svc.Replay(ctx, "dlv_dead"); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	waitDelivered(t, svc, "dlv_dead")
	hits := rc.Hits()
	if len(hits) != 3 {
		t.Fatalf("%d requests, want 3", len(hits))
	}
	if string(hits[2].body) != string(hits[0].body) || hits[2].header.Get("webhook-id") != "dlv_dead" || hits[2].err != nil {
		t.Errorf("replayed request differs: %s %v", hits[2].body, hits[2].err)
	}
	if dead, _ := svc.DeadLetters(ctx, 10); len(dead) != 0 {
		t.Errorf("DeadLetters after replay = %+v, want none", dead)
	}
	if err := svc.Replay(ctx, "dlv_dead"); !errors.Is(err, webhook.ErrNotDeadLetter) {
		t.Errorf("Replay of a delivered id: %v, want ErrNotDeadLetter", err)
	}
	if err := svc.Replay(ctx, "nope"); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("Replay of unknown id: %v, want ErrNotFound", err)
	}
}

func TestEnqueueIdempotent(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)

	d := webhook.Delivery{ID: "dlv_once", SubscriptionID: "sub1", Jobs: sampleJobs()}
	mustEnqueue(t, svc, d)
	mustEnqueue(t, svc, d)
	run(t, svc)
	waitDelivered(t, svc, "dlv_once")
	mustEnqueue(t, svc, d) // after delivery, too
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_marker", SubscriptionID: "sub1"})
	waitDelivered(t, svc, "dlv_marker")
	var ids []string
	for _, h := range rc.Hits() {
		ids = append(ids, h.header.Get("webhook-id"))
	}
	if len(ids) != 2 || ids[0] != "dlv_once" || ids[1] != "dlv_marker" {
		t.Fatalf("requests %v, want [dlv_once dlv_marker]", ids)
	}
	// No endpoint: a no-op, not an error.
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_none", SubscriptionID: "no-such-sub"})
	if _, err := svc.Status(context.Background(), "dlv_none"); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("Status of delivery without endpoint: %v, want ErrNotFound", err)
	}
}

func TestRotateSecret(t *testing.T) {
	e := newEnv(t)
	oldSecret := mustSecret(t)
	rc := newReceiver(t, e.clock, oldSecret, status(http.StatusOK))
	svc := e.service(t, webhook.Config{})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, oldSecret)
	run(t, svc)
	ctx := context.Background()

	newSecret, err := svc.RotateSecret(ctx, "sub1")
	if err != nil {
		t.Fatal(err)
	}
	rc.setSecrets(oldSecret, newSecret) // must verify under each
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_a", SubscriptionID: "sub1"})
	waitDelivered(t, svc, "dlv_a")
	h := rc.Hits()[0]
	if sigs := strings.Fields(h.header.Get("webhook-signature")); len(sigs) != 2 || h.err != nil {
		t.Fatalf("during overlap: signatures %q, verify %v; want two, both valid", sigs, h.err)
	}

	e.clock.Advance(webhook.RotationOverlap + time.Minute)
	rc.setSecrets(newSecret)
	mustEnqueue(t, svc, webhook.Delivery{ID: "dlv_b", SubscriptionID: "sub1"})
	waitDelivered(t, svc, "dlv_b")
	h = rc.Hits()[1]
	if sigs := strings.Fields(h.header.Get("webhook-signature")); len(sigs) != 1 || h.err != nil {
		t.Fatalf("after overlap: signatures %q, verify %v; want one valid", sigs, h.err)
	}
	if err := verify(oldSecret, h.header, h.body, e.clock.Now()); err == nil {
		t.Error("old secret still verifies after the overlap")
	}
	if _, err := svc.RotateSecret(ctx, "nobody"); !errors.Is(err, webhook.ErrNoEndpoint) {
		t.Errorf("RotateSecret without endpoint: %v, want ErrNoEndpoint", err)
	}
}

func TestCircuitBreakerPostponesWithoutAttempts(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	rc := newReceiver(t, e.clock, secret, status(http.StatusInternalServerError))
	reg := prometheus.NewRegistry()
	svc := e.service(t, webhook.Config{BreakerThreshold: 2, BreakerCooldown: time.Minute, Metrics: webhook.NewMetrics(reg)})
	mustSetEndpoint(t, svc, "sub1", rc.srv.URL, secret)
	run(t, svc)

	mustEnqueue(t, svc, webhook.Delivery{ID: "d1", SubscriptionID: "sub1"})
	waitAttempts(t, svc, "d1", 1)
	if b := mustBacklog(t, svc); b.CircuitsOpen != 0 {
		t.Fatalf("after one failure: got %d circuits open, want 0", b.CircuitsOpen)
	}
	mustEnqueue(t, svc, webhook.Delivery{ID: "d2", SubscriptionID: "sub1"})
	waitAttempts(t, svc, "d2", 1) // second consecutive failure: breaker opens
	opened := e.clock.Now()
	if b := mustBacklog(t, svc); b.CircuitsOpen != 1 || b.Queued != 2 {
		t.Fatalf("breaker open: got %+v, want 1 circuit open, 2 queued", b)
	}

	mustEnqueue(t, svc, webhook.Delivery{ID: "d3", SubscriptionID: "sub1"})
	st := waitStatus(t, svc, "d3", "postponed", func(st webhook.Status) bool {
		return st.NextAttempt.Sub(opened) >= time.Minute
	})
	if st.Attempts != 0 || len(rc.Hits()) != 2 {
		t.Fatalf("d3 %+v, %d requests; want postponed without an attempt", st, len(rc.Hits()))
	}

	rc.setRespond(status(http.StatusOK))
	e.clock.Set(st.NextAttempt)
	// Three are due at once and two may go concurrently: the third waits
	// a second or two of (fake) time, so keep the clock moving.
	testenv.Eventually(t, wait, func() bool {
		e.clock.Advance(100 * time.Millisecond)
		for _, id := range []string{"d1", "d2", "d3"} {
			if st, err := svc.Status(context.Background(), id); err != nil || st.State != webhook.StateDelivered {
				return false
			}
		}
		return true
	}, "d1, d2, d3 delivered after the cool-down")
	if st := mustStatus(t, svc, "d3"); st.Attempts != 1 {
		t.Errorf("d3 attempts %d, want 1", st.Attempts)
	}
	if b := mustBacklog(t, svc); b.CircuitsOpen != 0 || b.Queued != 0 {
		t.Errorf("after the successes: got %+v, want no circuit open, nothing queued", b)
	}
	for class, want := range map[string]float64{"5xx": 2, "2xx": 3, "4xx": 0, "error": 0} {
		if got := metricValue(t, reg, "jobalert_webhook_attempts_total", class); got != want {
			t.Errorf("attempts{class=%q}: got %v, want %v", class, got, want)
		}
	}
}

func mustBacklog(t *testing.T, svc *webhook.Service) webhook.Backlog {
	t.Helper()
	b, err := svc.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metricValue is the value of the counter name whose one label is label.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{%s}: missing", name, label)
	return 0
}

func TestLeaseTakeover(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	rc := newReceiver(t, e.clock, secret, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 { // the claimer that "crashed": it answers only when released
			<-release
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	cfg := webhook.Config{Lease: time.Minute, Timeout: 30 * time.Second}
	a := e.service(t, cfg)
	mustSetEndpoint(t, a, "sub1", rc.srv.URL, secret)
	run(t, a)
	mustEnqueue(t, a, webhook.Delivery{ID: "dlv_lease", SubscriptionID: "sub1"})
	waitHits(t, rc, 1)

	// Within the lease, a second replica does not touch it.
	b := e.service(t, cfg)
	run(t, b)
	st := mustStatus(t, b, "dlv_lease")
	if st.NextAttempt.Sub(e.clock.Now()) < 59*time.Second {
		t.Fatalf("claimed delivery due at %v, want the end of the lease", st.NextAttempt)
	}
	// After the lease, another worker takes it over.
	e.clock.Advance(2 * time.Minute)
	waitDelivered(t, b, "dlv_lease")
	close(release)
	// The late claimer's 500 is fenced off: still delivered, one attempt.
	testenv.Eventually(t, wait, func() bool {
		st, err := b.Status(context.Background(), "dlv_lease")
		return err == nil && st.State == webhook.StateDelivered && st.Attempts == 1
	}, "late outcome ignored")
	if n := len(rc.Hits()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestDialTimeSSRFRefusal(t *testing.T) {
	e := newEnv(t)
	secret := mustSecret(t)
	var hits int
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	url := "https://hooks.example.test:" + port + "/hook"
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg := webhook.Config{
		Clock: e.clock, PollInterval: 10 * time.Millisecond, Timeout: 3 * time.Second,
		Resolver:        loopbackResolver(t), // hooks.example.test -> 127.0.0.1
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
	}
	strict := webhook.New(e.rdb, e.prefix, cfg, nil)
	if err := strict.SetEndpoint(context.Background(), "sub1", url, secret); err != nil {
		t.Fatalf("SetEndpoint: %v (the hostname is only checked at dial time)", err)
	}
	if err := strict.SetEndpoint(context.Background(), "sub2", "https://127.0.0.1:"+port+"/", secret); !errors.Is(err, webhook.ErrForbiddenAddress) {
		t.Errorf("SetEndpoint with a loopback literal: %v, want ErrForbiddenAddress", err)
	}
	stop := run(t, strict)
	mustEnqueue(t, strict, webhook.Delivery{ID: "dlv_ssrf", SubscriptionID: "sub1"})
	st := waitAttempts(t, strict, "dlv_ssrf", 1)
	if !strings.Contains(st.LastError, "refusing to connect to 127.0.0.1") {
		t.Errorf("last error %q, want a refusal naming 127.0.0.1", st.LastError)
	}
	mu.Lock()
	if hits != 0 {
		t.Errorf("server got %d requests, want 0", hits)
	}
	mu.Unlock()
	stop()

	cfg.AllowPrivate = true
	lax := webhook.New(e.rdb, e.prefix, cfg, nil)
	run(t, lax)
	e.clock.Set(st.NextAttempt)
	waitDelivered(t, lax, "dlv_ssrf")
}

func TestBodyCap(t *testing.T) {
	desc := strings.Repeat("x", 4096)
	jobs := make([]matcher.Job, 100)
	for i := range jobs {
		jobs[i] = matcher.Job{ID: fmt.Sprintf("job-%d", i), Title: "Engineer", Company: "Acme", Description: desc}
	}
	body, err := webhook.Delivery{ID: "d", SubscriptionID: "s", Jobs: jobs, More: 7}.Body()
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > webhook.MaxBodyBytes {
		t.Fatalf("body %d bytes, want at most %d", len(body), webhook.MaxBodyBytes)
	}
	var p struct {
		Jobs []matcher.Job `json:"jobs"`
		More int           `json:"more"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Jobs) < 50 || len(p.Jobs) >= 100 || len(p.Jobs)+p.More != 107 || p.Jobs[len(p.Jobs)-1].ID != fmt.Sprintf("job-%d", len(p.Jobs)-1) {
		t.Errorf("%d jobs + more %d, want the leading jobs that fit and the rest in more (107 in all)", len(p.Jobs), p.More)
	}

	body, err = webhook.Delivery{ID: "d", SubscriptionID: "s"}.Body()
	if err != nil || string(body) != `{"type":"jobs.matched","id":"d","subscription_id":"s","jobs":[],"more":0}` {
		t.Errorf("empty body %s, %v", body, err)
	}
	for _, bad := range []webhook.Delivery{{SubscriptionID: "s"}, {ID: "a b", SubscriptionID: "s"}, {ID: "d"}, {ID: "d", SubscriptionID: "s", More: -1}} {
		if _, err := bad.Body(); !errors.Is(err, webhook.ErrInvalidDelivery) {
			t.Errorf("Body(%+v) = %v, want ErrInvalidDelivery", bad, err)
		}
	}
}
