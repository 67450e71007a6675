package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// The admin routes on a real Redis: find an address's subscriptions (the
// address in the body, never the URL), counts by status and frequency
// with the pending items and the due schedule, and the suppression list:
// counts, and lifting an address.
func TestAdminFindStatsSuppressions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	auth := []string{"Authorization", "Bearer " + adminToken}
	for _, rt := range []struct{ method, path, body string }{
		{"POST", "/v1/admin/subscriptions/search", `{"email":"a@example.com"}`},
		{"GET", "/v1/admin/stats", ""},
		{"GET", "/v1/admin/suppressions", ""},
		{"POST", "/v1/admin/suppressions/lift", `{"email":"a@example.com"}`},
		{"GET", "/v1/admin/jobs/dead-letters", ""},
		{"GET", "/v1/admin/jobs/dead-letters/1", ""},
		{"POST", "/v1/admin/jobs/dead-letters/1/replay", ""},
	} {
		if r := e.do(rt.method, rt.path, rt.body); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: got %d, want 401", rt.method, rt.path, r.status)
		}
		if r := e.do(rt.method, rt.path, rt.body, "Authorization", "Bearer wrong"); r.status != http.StatusForbidden {
			t.Errorf("%s %s with a wrong token: got %d, want 403", rt.method, rt.path, r.status)
		}
	}

	ann := e.active("ann@example.com", store.StatusActive)
	e.active("ann@example.com", store.StatusPaused)
	instant := &store.Subscription{Email: "bo@example.com", Filter: matcher.Filter{Keywords: "go"}, Frequency: "instant", Timezone: "UTC", Status: store.StatusActive}
	if err := e.st.CreateSubscription(ctx, instant, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.active("cy@example.com", store.StatusUnsubscribed)
	if err := e.st.Record(ctx, []jobevent.Matched{{Event: jobevent.Event{Kind: jobevent.Created, StreamSeq: 1,
		Job: matcher.Job{ID: "j1", Title: "Go developer", Company: "Acme"}}, SubscriptionIDs: []string{instant.ID}}}); err != nil {
		t.Fatal(err)
	}

	r := e.postJSON("/v1/admin/subscriptions/search", map[string]string{"email": "ann@example.com"}, auth...)
	subs, _ := r.json(t)["subscriptions"].([]any)
	if r.status != http.StatusOK || len(subs) != 2 || r.json(t)["suppressed"] != false || !strings.Contains(r.body, ann.ID) {
		t.Fatalf("search: got %d %s, want 200 with ann's two subscriptions, not suppressed", r.status, r.body)
	}
	if r := e.postJSON("/v1/admin/subscriptions/search", map[string]string{"email": "nobody@example.com"}, auth...); r.status != 200 || !strings.Contains(r.body, `"subscriptions":[]`) {
		t.Errorf("search for an unknown address: got %d %s, want 200 and []", r.status, r.body)
	}
	for _, body := range []string{`{"email":"not an address"}`, `{"mail":"ann@example.com"}`, `[]`, ``} {
		if r := e.do("POST", "/v1/admin/subscriptions/search", body, append([]string{"Content-Type", "application/json"}, auth...)...); r.status != http.StatusBadRequest {
			t.Errorf("search with %q: got %d %s, want 400", body, r.status, r.body)
		}
	}

	st := e.do("GET", "/v1/admin/stats", "", auth...)
	want := `{"subscriptions":{"total":4,"by_status":{"active":2,"paused":1,"unsubscribed":1},"by_frequency":{"daily":3,"instant":1},` +
		`"by_status_and_frequency":{"active":{"daily":1,"instant":1},"paused":{"daily":1},"unsubscribed":{"daily":1}},"with_pending_items":1},` +
		`"pending_items":1,"due":2,"outbox":0,"suppressed":0,"bounce_counts":0,` +
		`"unsubscribe_reasons":{"found_job":0,"not_relevant":0,"other":0,"switched_weekly":0,"too_many":0}}`
	if st.status != http.StatusOK || strings.TrimSpace(st.body) != want {
		t.Errorf("stats: got %d %s\nwant %s", st.status, st.body, want)
	}

	// Suppressions: a count only (keyed hashes), and a lift by address.
	if _, err := e.st.DeleteAllForEmail(ctx, "Gone@Example.com", true); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/v1/admin/suppressions", "", auth...); strings.TrimSpace(r.body) != `{"bounce_counts":0,"suppressed":1}` {
		t.Errorf("suppressions: got %d %s, want 1 suppressed", r.status, r.body)
	}
	if r := e.postJSON("/v1/admin/suppressions/lift", map[string]string{"email": "gone@example.com"}, auth...); r.status != 200 || strings.TrimSpace(r.body) != `{"lifted":true}` {
		t.Errorf("lift: got %d %s, want lifted", r.status, r.body)
	}
	if sup, err := e.st.IsSuppressed(ctx, "gone@example.com"); err != nil || sup {
		t.Errorf("after the lift: got suppressed=%v %v, want false", sup, err)
	}
	if r := e.postJSON("/v1/admin/suppressions/lift", map[string]string{"email": "gone@example.com"}, auth...); strings.TrimSpace(r.body) != `{"lifted":false}` {
		t.Errorf("lift again: got %d %s, want lifted false", r.status, r.body)
	}
	// The DLQ routes answer 503 on a server without NATS.
	if r := e.do("GET", "/v1/admin/jobs/dead-letters", "", auth...); r.status != http.StatusServiceUnavailable {
		t.Errorf("DLQ without NATS: got %d, want 503", r.status)
	}
}

// A DLQ sequence that is not a number is a 400 naming it.
func TestAdminDLQBadSequence(t *testing.T) {
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.DLQ = noDLQ{} })
	auth := []string{"Authorization", "Bearer " + adminToken}
	for _, p := range []string{"/v1/admin/jobs/dead-letters/x", "/v1/admin/jobs/dead-letters/0"} {
		if r := e.do("GET", p, "", auth...); r.status != http.StatusBadRequest || r.fields(t)["seq"] == "" {
			t.Errorf("GET %s: got %d %s, want 400 naming seq", p, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/admin/jobs/dead-letters?limit=0&after=x", "", auth...); r.status != http.StatusBadRequest || len(r.fields(t)) != 2 {
		t.Errorf("bad limit and after: got %d %s, want 400 naming both", r.status, r.body)
	}
	if r := e.do("POST", "/v1/admin/jobs/dead-letters/7/replay", "", auth...); r.status != http.StatusNotFound {
		t.Errorf("replay of an unknown event: got %d %s, want 404", r.status, r.body)
	}
}

// noDLQ is an empty DLQ.
type noDLQ struct{}

func (noDLQ) List(context.Context, uint64, int) ([]api.DeadEvent, error) { return nil, nil }
func (noDLQ) Get(context.Context, uint64) (api.DeadEvent, error) {
	return api.DeadEvent{}, api.ErrDeadEventNotFound
}
func (noDLQ) Replay(context.Context, uint64) (string, uint64, error) {
	return "", 0, api.ErrDeadEventNotFound
}
