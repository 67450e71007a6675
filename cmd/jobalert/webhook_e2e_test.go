package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
)

// receiver is a webhook endpoint that checks Standard Webhooks signatures
// with its own implementation of the spec.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	status int
	calls  []delivery
}

type delivery struct {
	id, signature string
	body          map[string]any
	verified      bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	d := delivery{id: r.Header.Get("webhook-id"), signature: r.Header.Get("webhook-signature")}
	_ = json.Unmarshal(body, &d.body)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rc.secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(d.id + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(d.signature) {
		d.verified = d.verified || hmac.Equal([]byte(sig), []byte(want))
	}
	rc.calls = append(rc.calls, d)
	w.WriteHeader(rc.status)
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.calls...)
}

// A subscription with a webhook gets its matches by email and by a signed
// webhook call, on the same schedule, once confirmed; an endpoint that
// answers 410 Gone is disabled and its owner told by email.
func TestWebhookThroughTheWholePipeline(t *testing.T) {
	s := startStack(t, stackOpts{})
	rc := &receiver{t: t, status: http.StatusOK}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	base := s.env["JOBALERT_PUBLIC_URL"]

	resp := post(t, base+"/v1/subscriptions", "application/json",
		`{"email":"eve@example.com","filter":{"keywords":"backend"},"frequency":"instant","webhook_url":"`+hook.URL+`/hooks/jobs"}`)
	var created struct {
		ID            string `json:"id"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if err := json.Unmarshal([]byte(resp.body), &created); err != nil || resp.StatusCode != http.StatusCreated || !strings.HasPrefix(created.WebhookSecret, "whsec_") {
		t.Fatalf("subscribe with webhook: got %d %s, want 201 with a whsec_ secret", resp.StatusCode, resp.body)
	}
	rc.mu.Lock()
	rc.secret = created.WebhookSecret
	rc.mu.Unlock()
	// Confirmed from the email, which registers the endpoint.
	link := regexp.MustCompile(`https?://[^\s"<>]+/v1/confirm\?token=[A-Za-z0-9_\-.%]+`).FindString(s.waitMail("eve@example.com", 1)[0].Text)
	u, err := url.Parse(link)
	if link == "" || err != nil {
		t.Fatalf("no confirmation link in the email")
	}
	if r := post(t, base+"/v1/confirm", "application/x-www-form-urlencoded", "token="+url.QueryEscape(u.Query().Get("token"))); r.StatusCode != http.StatusOK {
		t.Fatalf("POST confirm: got %d %s, want 200", r.StatusCode, r.body)
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		return containsID(s.app.index.MatchIDs(probeJob(matcherFilter("backend"))), created.ID)
	}, "confirmed subscription not indexed")

	s.publishJob("jobs.created", job("wh-1", "Backend Engineer"))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.got()) == 1 && s.mailsWith("eve@example.com", "wh-1") == 1 },
		"want one webhook call and one email for the job")
	d := rc.got()[0]
	if !d.verified {
		t.Errorf("webhook signature %q did not verify", d.signature)
	}
	if d.body["type"] != "jobs.matched" || d.body["id"] != d.id || d.body["subscription_id"] != created.ID {
		t.Errorf("webhook body: got %v, want type jobs.matched, id = webhook-id %q, subscription %s", d.body, d.id, created.ID)
	}
	if jobs, _ := d.body["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != "wh-1" {
		t.Errorf("webhook jobs: got %v, want [wh-1]", d.body["jobs"])
	}

	// The receiver goes away for good: 410 disables it and tells the owner.
	rc.mu.Lock()
	rc.status = http.StatusGone
	rc.mu.Unlock()
	s.publishJob("jobs.created", job("wh-2", "Backend Developer"))
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, m := range s.sink.To("eve@example.com") {
			if strings.Contains(m.Text, hook.URL) && !strings.Contains(m.Text, "wh-") {
				return true
			}
		}
		return false
	}, "no 'webhook disabled' email to the owner")
	if _, enabled, err := s.app.hooks.Endpoint(t.Context(), created.ID); err != nil || enabled {
		t.Fatalf("endpoint after 410: got enabled=%v err=%v, want disabled", enabled, err)
	}
	if n := len(rc.got()); n != 2 {
		t.Fatalf("webhook calls: got %d, want 2 (no retry after 410)", n)
	}
}

func matcherFilter(keywords string) matcher.Filter { return matcher.Filter{Keywords: keywords} }
