package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/store"
)

// managePage opens the manage page of id and returns its token and csrf.
func (e *env) managePage(id string) (tok, csrf, body string) {
	e.t.Helper()
	r := e.do("GET", e.manageLink(id), "", "Accept", "text/html")
	if r.status != 200 {
		e.t.Fatalf("manage page: %d\n%s", r.status, r.body)
	}
	tok, csrf = formTokens(e.t, r.body)
	return tok, csrf, r.body
}

func (e *env) manageAction(tok, csrf, action string, extra url.Values) response {
	e.t.Helper()
	f := url.Values{"token": {tok}, "csrf": {csrf}, "action": {action}}
	for k, v := range extra {
		f[k] = v
	}
	return e.postForm("/v1/manage", f)
}

func TestManageEditPauseResume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.active("manage@example.com", store.StatusActive)
	tok, csrf, page := e.managePage(sub.ID)
	for _, want := range []string{`value="backend"`, `value="H-1B" checked`, `id="pause"`, `id="delete-all"`, `data-status="active"`} {
		if !strings.Contains(page, want) {
			t.Errorf("manage page lacks %s", want)
		}
	}

	edit := url.Values{"keywords": {"platform engineer"}, "visa_types": {"TN"}, "locations": {"Denver, CO"}, "remote": {"1"},
		"min_salary": {"140000"}, "seniority": {"senior", "staff"}, "frequency": {"weekly"}, "timezone": {"America/Denver"},
		"send_hour": {"9"}, "weekly_day": {"tuesday"}}
	r := e.manageAction(tok, csrf, "save", edit)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "done=saved") {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	got, _ := e.st.GetSubscription(ctx, sub.ID)
	if got.Frequency != "weekly" || got.WeeklyDay != "tuesday" || got.SendHour != 9 || got.Timezone != "America/Denver" ||
		got.Filter.Keywords != "platform engineer" || strings.Join(got.Filter.VisaTypes, ",") != "TN" ||
		strings.Join(got.Filter.Seniority, ",") != "senior,staff" || got.Filter.MinSalary != 140000 || got.Status != "active" {
		t.Errorf("after save: %+v", got)
	}
	if after := e.do("GET", r.header.Get("Location"), "", "Accept", "text/html"); !strings.Contains(after.body, "Your changes are saved") {
		t.Errorf("no notice after save")
	}

	bad := url.Values{"keywords": {""}, "frequency": {"weekly"}, "timezone": {"Atlantis/Capital"}, "send_hour": {"9"}, "weekly_day": {"tuesday"}}
	r = e.manageAction(tok, csrf, "save", bad)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="timezone-err"`) || !strings.Contains(r.body, `value="Atlantis/Capital"`) ||
		!strings.Contains(r.body, `id="filter-err"`) {
		t.Errorf("bad save: %d\n%s", r.status, r.body)
	}
	if got, _ := e.st.GetSubscription(ctx, sub.ID); got.Timezone != "America/Denver" {
		t.Errorf("a bad save changed the subscription")
	}

	if r := e.manageAction(tok, csrf, "pause", nil); r.status != http.StatusSeeOther || e.status(sub.ID) != store.StatusPaused {
		t.Fatalf("pause: %d, status %s", r.status, e.status(sub.ID))
	}
	if on, _ := e.rdb.HExists(ctx, store.KeysOf(e.prefix, 0, sub.ID).Shard.Filters, sub.ID).Result(); on {
		t.Errorf("a paused subscription is in the filter index")
	}
	if _, _, page := e.managePage(sub.ID); !strings.Contains(page, `id="resume"`) {
		t.Errorf("paused manage page has no resume button")
	}
	if r := e.manageAction(tok, csrf, "resume", nil); r.status != http.StatusSeeOther || e.status(sub.ID) != store.StatusActive {
		t.Fatalf("resume: %d, status %s", r.status, e.status(sub.ID))
	}

	// CSRF: missing, forged, or from another subscription's page.
	other := e.active("other@example.com", store.StatusActive)
	_, otherCSRF, _ := e.managePage(other.ID)
	for name, c := range map[string]string{"missing": "", "forged": "abc.def", "other page": otherCSRF} {
		if r := e.manageAction(tok, c, "pause", nil); r.status != http.StatusForbidden {
			t.Errorf("CSRF %s: %d, want 403", name, r.status)
		}
	}
	if r := e.postForm("/v1/manage", url.Values{"token": {tok}, "csrf": {csrf}, "action": {"pause"}}, "Sec-Fetch-Site", "cross-site"); r.status != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", r.status)
	}
	if e.status(sub.ID) != store.StatusActive {
		t.Errorf("a refused POST changed the status")
	}
}

// assertGone fails if any key under the prefix still names one of ids or
// the address's hash, or if the index or schedule still holds an id.
func (e *env) assertGone(addr string, ids ...string) {
	e.t.Helper()
	ctx := context.Background()
	hash, keyed := store.EmailHash(addr), e.st.AddressKey(addr)
	for _, k := range e.keys() {
		if strings.Contains(k, hash) || strings.Contains(k, keyed) {
			e.t.Errorf("key %s about the address is left", k)
		}
		for _, id := range ids {
			if strings.Contains(k, id) {
				e.t.Errorf("key %s of %s is left", k, id)
			}
		}
	}
	for _, id := range ids {
		if on, _ := e.rdb.HExists(ctx, store.KeysOf(e.prefix, 0, id).Shard.Filters, id).Result(); on {
			e.t.Errorf("%s is still in the filter index", id)
		}
		if err := e.rdb.ZScore(ctx, store.KeysOf(e.prefix, 0, id).Shard.Due, id).Err(); err == nil {
			e.t.Errorf("%s is still scheduled", id)
		}
	}
}

func TestManageDelete(t *testing.T) {
	e := newEnv(t)
	keep := e.active("del@example.com", store.StatusActive)
	sub := e.active("del@example.com", store.StatusActive)
	tok, csrf, _ := e.managePage(sub.ID)
	r := e.manageAction(tok, csrf, "delete", nil)
	if r.status != 200 || !strings.Contains(r.body, "Alert deleted") {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	e.assertGone("nobody@example.com", sub.ID)
	if e.status(keep.ID) != store.StatusActive {
		t.Errorf("delete removed another alert of the address")
	}
	if r := e.do("GET", e.srv.Links().Manage(sub.ID, 0), "", "Accept", "text/html"); r.status != http.StatusNotFound || !strings.Contains(r.body, "no longer exists") {
		t.Errorf("manage page of a deleted alert: %d", r.status)
	}
}

func TestManageDeleteAll(t *testing.T) {
	for _, unsubscribedOne := range []bool{false, true} {
		name := "never unsubscribed"
		if unsubscribedOne {
			name = "one unsubscribed"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			const addr = "all@example.com"
			// One through the API with a webhook (rate-limit and endpoint keys), two stored directly.
			body := goodBody(addr)
			body["webhook_url"] = "https://hooks.example.com/all"
			r := e.postJSON("/v1/subscriptions", body)
			if r.status != 201 {
				t.Fatalf("subscribe: %d %s", r.status, r.body)
			}
			viaAPI, _ := r.json(t)["id"].(string)
			a := e.active(addr, store.StatusActive)
			b := e.active(addr, store.StatusActive)
			if unsubscribedOne {
				if r := e.do("POST", e.srv.Links().Unsubscribe(b.ID), "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
					t.Fatal(r.body)
				}
			}
			bystander := e.active("bystander@example.com", store.StatusActive)
			tok, csrf, page := e.managePage(a.ID)
			if !strings.Contains(page, "this one and 2 more") {
				t.Errorf("manage page does not count the other alerts")
			}
			r = e.manageAction(tok, csrf, "delete_all", nil)
			if r.status != 200 || !strings.Contains(r.body, "Check your inbox") {
				t.Fatalf("delete_all: %d %s", r.status, r.body)
			}
			if got := e.status(a.ID); got != store.StatusActive {
				t.Fatalf("after asking to delete all: status %s, want active until the emailed link is used", got)
			}
			r = e.confirmAction(addr, "/v1/manage/delete-all", "Delete all my data")
			if r.status != 200 || !strings.Contains(r.body, "All your data is deleted") {
				t.Fatalf("delete-all link: %d %s", r.status, r.body)
			}
			e.assertGone(addr, viaAPI, a.ID, b.ID)
			suppressed, _ := e.st.IsSuppressed(ctx, addr)
			if suppressed != unsubscribedOne {
				t.Errorf("suppressed = %v, want %v", suppressed, unsubscribedOne)
			}
			if unsubscribedOne {
				// Kept only as a hash in the suppression set.
				if ok, _ := e.rdb.SIsMember(ctx, e.prefix+"suppressed", e.st.AddressKey(addr)).Result(); !ok {
					t.Errorf("suppression hash missing")
				}
			}
			if e.status(bystander.ID) != store.StatusActive {
				t.Errorf("another address was touched")
			}
			if _, _, err := e.wh.Endpoint(ctx, viaAPI); err == nil {
				t.Errorf("the webhook endpoint is left")
			}
		})
	}
}

func TestManageResumeAfterUnsubscribe(t *testing.T) {
	e := newEnv(t)
	sub := e.active("back@example.com", store.StatusActive)
	e.do("POST", e.srv.Links().Unsubscribe(sub.ID), "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
	tok, csrf, page := e.managePage(sub.ID)
	if !strings.Contains(page, `data-status="unsubscribed"`) || !strings.Contains(page, `id="resume"`) {
		t.Fatalf("unsubscribed manage page:\n%s", page)
	}
	if r := e.manageAction(tok, csrf, "resume", nil); r.status != http.StatusSeeOther || e.status(sub.ID) != store.StatusActive {
		t.Fatalf("resume: %d, status %s", r.status, e.status(sub.ID))
	}
}
