package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
)

// After a one-click unsubscribe the page asks why; the answer is counted
// once per subscription in the admin stats; "too many" offers weekly
// instead, which starts the alert again as weekly. Everything posted needs
// the signed unsubscribe link and comes from this site.
func TestUnsubscribeReason(t *testing.T) {
	e := newEnv(t)
	a := e.active("ada@example.com", store.StatusActive)
	b := e.active("bob@example.com", store.StatusActive)
	tokA := e.signer.Issue(token.Unsubscribe, a.ID, time.Time{})
	tokB := e.signer.Issue(token.Unsubscribe, b.ID, time.Time{})

	res := e.postForm("/v1/unsubscribe?token="+url.QueryEscape(tokA), url.Values{"List-Unsubscribe": {"One-Click"}})
	if res.status != 200 || !strings.Contains(res.body, `action="/v1/unsubscribe/feedback"`) || !strings.Contains(res.body, `value="too_many"`) {
		t.Fatalf("unsubscribe page: got %d, want the question", res.status)
	}
	if got := e.status(a.ID); got != store.StatusUnsubscribed {
		t.Fatalf("after unsubscribe: got %s want unsubscribed", got)
	}
	// The answer, twice (counted once), then from another site, then forged.
	for range 2 {
		if res := e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {tokA}, "reason": {"found_job"}}, "Origin", e.url); res.status != 200 {
			t.Fatalf("reason: got %d %s", res.status, res.body)
		}
	}
	if res := e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {tokA}, "reason": {"other"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); res.status != 403 {
		t.Errorf("cross-site answer: got %d want 403", res.status)
	}
	if res := e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {tokA + "x"}, "reason": {"other"}}, "Origin", e.url); res.status < 400 {
		t.Errorf("forged token: got %d want an error", res.status)
	}
	manage := e.signer.Issue(token.Manage, a.ID, time.Now().Add(time.Hour))
	if res := e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {manage}, "reason": {"other"}}, "Origin", e.url); res.status < 400 {
		t.Errorf("a manage token: got %d want an error", res.status)
	}
	if res := e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {tokA}, "reason": {"spam"}}, "Origin", e.url); res.status != 400 {
		t.Errorf("unknown reason: got %d want 400", res.status)
	}

	// b: too many, weekly instead.
	e.postForm("/v1/unsubscribe?token="+url.QueryEscape(tokB), url.Values{"List-Unsubscribe": {"One-Click"}})
	res = e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {tokB}, "weekly": {"1"}}, "Origin", e.url)
	if res.status != 200 || !strings.Contains(res.body, "one email a week") {
		t.Fatalf("weekly instead: got %d %s", res.status, res.body)
	}
	sub, err := e.st.GetSubscription(context.Background(), b.ID)
	if err != nil || sub.Status != store.StatusActive || sub.Frequency != "weekly" || sub.WeeklyDay != "monday" {
		t.Errorf("after weekly instead: got %+v, %v want active, weekly on monday", sub, err)
	}

	// The unsubscribe link never expires: it must not start an alert again
	// long after its owner unsubscribed, nor one that is paused or active,
	// and its pages hand out no manage link.
	for _, c := range []struct {
		name   string
		status string
		since  time.Duration
	}{
		{"unsubscribed two hours ago", store.StatusUnsubscribed, 2 * time.Hour},
		{"paused", store.StatusPaused, 0},
		{"active", store.StatusActive, 0},
	} {
		x := e.active("cy-"+strings.ReplaceAll(c.name, " ", "")+"@example.com", store.StatusActive)
		if _, err := e.st.UpdateSubscription(context.Background(), x.ID, time.Now(), func(sub *store.Subscription) error {
			sub.Status, sub.UnsubscribedAt = c.status, time.Now().Add(-c.since)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		tok := e.signer.Issue(token.Unsubscribe, x.ID, time.Time{})
		if res := e.postForm("/v1/unsubscribe/feedback", url.Values{"token": {tok}, "weekly": {"1"}}); res.status != 409 {
			t.Errorf("%s: weekly instead from the unsubscribe link: got %d want 409", c.name, res.status)
		}
		if got := e.status(x.ID); got != c.status {
			t.Errorf("%s: status after the refused switch: got %s want %s", c.name, got, c.status)
		}
	}
	for _, page := range []string{
		e.postForm("/v1/unsubscribe?token="+url.QueryEscape(tokA), url.Values{"List-Unsubscribe": {"One-Click"}}).body,
		res.body,
	} {
		if strings.Contains(page, "/manage") {
			t.Errorf("a page reached by the unsubscribe link holds a manage link: %s", page)
		}
	}

	stats := e.do("GET", "/v1/admin/stats", "", "Authorization", "Bearer "+adminToken)
	var body struct {
		Reasons map[string]int64 `json:"unsubscribe_reasons"`
	}
	if err := json.Unmarshal([]byte(stats.body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"found_job": 1, "too_many": 1, "not_relevant": 0, "other": 0, "switched_weekly": 1}
	for k, v := range want {
		if body.Reasons[k] != v {
			t.Errorf("stats %s: got %d want %d (all: %v)", k, body.Reasons[k], v, body.Reasons)
		}
	}
}

// POST /v1/admin/jobs/lookup: which job an id's events are recorded under.
func TestAdminJobLookup(t *testing.T) {
	e := newEnv(t)
	auth := []string{"Content-Type", "application/json", "Authorization", "Bearer " + adminToken}
	res := e.do("POST", "/v1/admin/jobs/lookup", `{"id":"never-seen"}`, auth...)
	if res.status != 200 || !strings.Contains(res.body, `"id":"never-seen","of":"","reason":""`) {
		t.Errorf("unknown id: got %d %s", res.status, res.body)
	}
	for _, body := range []string{`{}`, `{"id":"  "}`, `{"job":"x"}`, `[]`} {
		if res := e.do("POST", "/v1/admin/jobs/lookup", body, auth...); res.status != 400 || res.fields(t)["id"] == "" {
			t.Errorf("%s: got %d %s want 400 naming id", body, res.status, res.body)
		}
	}
	if res := e.do("POST", "/v1/admin/jobs/lookup", `{"id":"x"}`, "Content-Type", "application/json"); res.status != 401 {
		t.Errorf("without the admin token: got %d want 401", res.status)
	}
}
