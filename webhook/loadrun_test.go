package webhook_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/webhook"
)

// TestLoadRunFastEndpointLatency measures the delivery latency (Enqueue to
// arrival) of a steady stream to a fast endpoint, with the slow host of
// TestSlowHostDoesNotStarveFastEndpoint idle or saturated, under the
// default limits and with the host and subscription limits and the slow
// threshold switched off (the per-URL-only policy of before). It takes
// about 30s and runs only with JOBALERT_WEBHOOK_LOADRUN=1; figures in
// docs/benchmarks.md, "Webhook fairness".
func TestLoadRunFastEndpointLatency(t *testing.T) {
	if os.Getenv("JOBALERT_WEBHOOK_LOADRUN") == "" {
		t.Skip("set JOBALERT_WEBHOOK_LOADRUN=1 to run the webhook fairness load run")
	}
	policies := []struct {
		name string
		cfg  func(*webhook.Config)
	}{
		{"host-limits", func(*webhook.Config) {}},
		{"per-url-only", func(c *webhook.Config) {
			c.PerHost, c.PerSubscription, c.SlowAfter = 1<<20, 1<<20, -1
		}},
	}
	for _, p := range policies {
		for _, saturated := range []bool{false, true} {
			name := fmt.Sprintf("policy=%s/slow=%s", p.name, map[bool]string{false: "idle", true: "saturated"}[saturated])
			t.Run(name, func(t *testing.T) { loadRun(t, name, p.cfg, saturated) })
		}
	}
}

// loadRun: 16 workers, a 1s timeout (15s scaled down 15 times); 16 URLs on
// slow.example.test answer 200 after 900ms (just before the timeout), 10
// deliveries each queued up front when saturated; then 200 deliveries to
// fast.example.test, one every 20ms.
func loadRun(t *testing.T, name string, policy func(*webhook.Config), saturated bool) {
	const (
		slowURLs   = 16
		slowPerURL = 10
		fastTotal  = 200
		fastEvery  = 20 * time.Millisecond
		timeout    = time.Second
		slowAnswer = 900 * time.Millisecond
	)
	e := newEnv(t)
	secret := mustSecret(t)
	slow := newSlowHost(t, slowAnswer)
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived[r.Header.Get("webhook-id")] = time.Now()
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(fast.Close)
	cfg := webhook.Config{Clock: clock.Real{}, Workers: 16, Timeout: timeout, Resolver: loopbackResolver(t)}
	policy(&cfg)
	svc := e.service(t, cfg)
	for i := range slowURLs {
		mustSetEndpoint(t, svc, fmt.Sprintf("slow-%d", i), hostURL(t, slow.srv, "slow.example.test", fmt.Sprintf("/hook/%d", i)), secret)
	}
	mustSetEndpoint(t, svc, "fast", hostURL(t, fast, "fast.example.test", "/hook"), secret)
	if saturated {
		for n := range slowPerURL {
			for i := range slowURLs {
				mustEnqueue(t, svc, webhook.Delivery{ID: fmt.Sprintf("slow-%d.%d", i, n), SubscriptionID: fmt.Sprintf("slow-%d", i)})
			}
		}
	}
	stop := run(t, svc)
	if saturated {
		testenv.Eventually(t, wait, func() bool { slow.mu.Lock(); defer slow.mu.Unlock(); return slow.inflight > 0 }, "slow host busy")
	}

	sent := make(map[string]time.Time, fastTotal)
	tick := time.NewTicker(fastEvery) // the load's arrival rate
	for n := range fastTotal {
		<-tick.C
		id := fmt.Sprintf("fast.%d", n)
		sent[id] = time.Now()
		mustEnqueue(t, svc, webhook.Delivery{ID: id, SubscriptionID: "fast"})
	}
	tick.Stop()
	testenv.Eventually(t, 2*time.Minute, func() bool { mu.Lock(); defer mu.Unlock(); return len(arrived) >= fastTotal },
		"%d deliveries to the fast endpoint", fastTotal)
	slowDone, slowMax := slow.counts()
	stop()

	mu.Lock()
	lat := make([]time.Duration, 0, fastTotal)
	for id, at := range sent {
		lat = append(lat, arrived[id].Sub(at))
	}
	mu.Unlock()
	slices.Sort(lat)
	rank := func(q float64) time.Duration { return lat[max(0, int(q*float64(len(lat))+0.999999)-1)] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	fmt.Printf("RESULT %s fast=%d p50_ms=%s p99_ms=%s max_ms=%s slow_answered=%d slow_max_inflight=%d\n",
		name, len(lat), ms(rank(0.50)), ms(rank(0.99)), ms(lat[len(lat)-1]), slowDone, slowMax)
}
