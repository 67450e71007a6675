package api_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
	"github.com/jobalert/jobalert/webhook"
)

func TestValidation(t *testing.T) {
	e := newEnv(t)
	type want map[string]string // field -> substring of its message
	cases := []struct {
		name string
		body string
		want want
	}{
		{"bad email", `{"email":"not-an-email","filter":{"keywords":"go"}}`,
			want{"email": "not a valid email address"}},
		{"email with a name", `{"email":"Ada <ada@example.com>","filter":{"keywords":"go"}}`,
			want{"email": "not a valid email address"}},
		{"no email", `{"filter":{"keywords":"go"}}`, want{"email": "is required"}},
		{"unknown visa lists the codes", `{"email":"a@example.com","filter":{"visa_types":["H1X","tn"]}}`,
			want{"filter.visa_types": `unknown visa type "H1X"; valid codes are H-1B, H-1B1, E-3, TN, O-1, L-1, J-1, OPT, STEM-OPT, GREEN-CARD`}},
		{"unknown seniority", `{"email":"a@example.com","filter":{"keywords":"go","seniority":["wizard"]}}`,
			want{"filter.seniority": `unknown seniority "wizard"; valid values are intern, junior`}},
		{"no positive clause", `{"email":"a@example.com","filter":{"exclude_keywords":["senior"],"exclude_companies":["Acme"]}}`,
			want{"filter": "would match almost every job"}},
		{"empty filter", `{"email":"a@example.com","filter":{}}`, want{"filter": "would match almost every job"}},
		{"no filter", `{"email":"a@example.com"}`, want{"filter": "is required"}},
		{"empty exclude entry", `{"email":"a@example.com","filter":{"keywords":"go","exclude_keywords":["senior","  - "]}}`,
			want{"filter.exclude_keywords": "empty entry"}},
		{"negative salary", `{"email":"a@example.com","filter":{"keywords":"go","min_salary":-5}}`,
			want{"filter.min_salary": "zero or more"}},
		{"fractional salary", `{"email":"a@example.com","filter":{"keywords":"go","min_salary":1.5}}`,
			want{"filter.min_salary": "whole number"}},
		{"frequency", `{"email":"a@example.com","filter":{"keywords":"go"},"frequency":"hourly"}`,
			want{"frequency": "instant, daily, weekly"}},
		{"timezone", `{"email":"a@example.com","filter":{"keywords":"go"},"timezone":"Mars/Olympus"}`,
			want{"timezone": `unknown time zone "Mars/Olympus"`}},
		{"send_hour 24", `{"email":"a@example.com","filter":{"keywords":"go"},"send_hour":24}`,
			want{"send_hour": "0 to 23"}},
		{"send_hour -1", `{"email":"a@example.com","filter":{"keywords":"go"},"send_hour":-1}`,
			want{"send_hour": "0 to 23"}},
		{"send_hour a string", `{"email":"a@example.com","filter":{"keywords":"go"},"send_hour":"eight"}`,
			want{"send_hour": "whole number from 0 to 23"}},
		{"weekly_day", `{"email":"a@example.com","filter":{"keywords":"go"},"frequency":"weekly","weekly_day":"someday"}`,
			want{"weekly_day": "monday to sunday"}},
		{"webhook private", `{"email":"a@example.com","filter":{"keywords":"go"},"webhook_url":"https://10.0.0.1/hook"}`,
			want{"webhook_url": "10.0.0.1"}},
		{"webhook http", `{"email":"a@example.com","filter":{"keywords":"go"},"webhook_url":"http://hooks.example.com/x"}`,
			want{"webhook_url": "https"}},
		{"unknown fields", `{"email":"a@example.com","filter":{"keywords":"go","colour":"red"},"nickname":"x"}`,
			want{"nickname": "unknown field", "filter.colour": "unknown field"}},
		{"everything at once", `{"email":"nope","filter":{"visa_types":["XYZ"],"min_salary":-1,"seniority":["boss"]},` +
			`"frequency":"weekly","weekly_day":"caturday","timezone":"Nowhere/Land","send_hour":99,"webhook_url":"ftp://x","extra":1}`,
			want{"email": "valid email", "filter.visa_types": "valid codes", "filter.min_salary": "zero or more",
				"filter.seniority": "valid values", "weekly_day": "monday", "timezone": "unknown time zone",
				"send_hour": "0 to 23", "webhook_url": "ftp", "extra": "unknown field"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/subscriptions", c.body, "Content-Type", "application/json")
			if r.status != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", r.status, r.body)
			}
			if got := r.code(t); got != "invalid" {
				t.Errorf("code: got %q, want invalid", got)
			}
			got := r.fields(t)
			for f, sub := range c.want {
				if !strings.Contains(got[f], sub) {
					t.Errorf("fields[%q]: got %q, want it to contain %q", f, got[f], sub)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("fields: got %v, want exactly the keys of %v", got, c.want)
			}
		})
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Errorf("%d emails sent for invalid requests, want none", n)
	}
}

func TestBodyLimitsAndShape(t *testing.T) {
	e := newEnv(t)
	big := `{"email":"a@example.com","filter":{"keywords":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}}`
	if r := e.do("POST", "/v1/subscriptions", big, "Content-Type", "application/json"); r.status != http.StatusRequestEntityTooLarge || r.code(t) != "too_large" {
		t.Errorf("oversized body: got %d %s, want 413 too_large", r.status, r.body)
	}
	for _, body := range []string{`not json`, `[1,2]`, `{"email":`, ``} {
		r := e.do("POST", "/v1/subscriptions", body, "Content-Type", "application/json")
		if r.status != http.StatusBadRequest || r.code(t) != "invalid" {
			t.Errorf("body %q: got %d %s, want 400 invalid", body, r.status, r.body)
		}
	}
}

func TestSubscribeConfirmFlow(t *testing.T) {
	e := newEnv(t)
	const addr = "ada@example.com"
	r := e.postJSON("/v1/subscriptions", goodBody(addr))
	if r.status != http.StatusCreated {
		t.Fatalf("got %d %s, want 201", r.status, r.body)
	}
	m := r.json(t)
	id, _ := m["id"].(string)
	if m["status"] != "pending" || !strings.HasPrefix(id, "sub_") {
		t.Fatalf("got %v, want a pending sub_ id", m)
	}
	if _, ok := m["webhook_secret"]; ok {
		t.Errorf("webhook_secret without a webhook_url")
	}
	sub, err := e.st.GetSubscription(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Status != store.StatusPending || sub.Filter.VisaTypes[0] != "H-1B" {
		t.Errorf("stored %+v: want pending with canonical visa H-1B", sub)
	}
	if on, _ := e.rdb.HExists(context.Background(), store.KeysOf(e.prefix, 0, id).Shard.Filters, id).Result(); on {
		t.Errorf("a pending subscription is in the filter index")
	}

	link := e.confirmURL(addr)
	if !strings.HasPrefix(link, e.url+"/v1/confirm?token=") {
		t.Fatalf("link %s does not start with PUBLIC_URL/v1/confirm?token=", link)
	}
	page := e.do("GET", link, "", "Accept", "text/html")
	if page.status != 200 || !strings.Contains(page.body, `action="/v1/confirm"`) || !strings.Contains(page.body, "Confirm my alert") {
		t.Fatalf("confirm page: %d\n%s", page.status, page.body)
	}
	if e.status(id) != store.StatusPending {
		t.Fatalf("GET on the confirm link changed the status")
	}
	u, _ := url.Parse(link)
	done := e.postForm("/v1/confirm", url.Values{"token": {u.Query().Get("token")}})
	if done.status != 200 || !strings.Contains(done.body, "subscribed") {
		t.Fatalf("confirm POST: %d\n%s", done.status, done.body)
	}
	if got := e.status(id); got != store.StatusActive {
		t.Fatalf("status after confirm: %s, want active", got)
	}
	if on, _ := e.rdb.HExists(context.Background(), store.KeysOf(e.prefix, 0, id).Shard.Filters, id).Result(); !on {
		t.Errorf("a confirmed subscription is not in the filter index")
	}
	// Confirming again (JSON) is fine.
	again := e.postJSON("/v1/confirm", map[string]string{"token": u.Query().Get("token")})
	if again.status != 200 || again.json(t)["status"] != "active" {
		t.Errorf("second confirm: %d %s", again.status, again.body)
	}
}

func TestWebhookSecretAndRotate(t *testing.T) {
	e := newEnv(t)
	const addr = "hook@example.com"
	body := goodBody(addr)
	body["webhook_url"] = "https://hooks.example.com/jobs?key=s3cr3t"
	r := e.postJSON("/v1/subscriptions", body)
	if r.status != http.StatusCreated {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	m := r.json(t)
	id, _ := m["id"].(string)
	secret, _ := m["webhook_secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("webhook_secret %q, want whsec_...", secret)
	}
	// Nothing is registered until the address owner confirms; the email
	// names the webhook's host (not its path or query).
	if _, _, err := e.wh.Endpoint(context.Background(), id); !errors.Is(err, webhook.ErrNoEndpoint) {
		t.Fatalf("endpoint before confirmation: got %v, want ErrNoEndpoint", err)
	}
	mail := e.sink.To(addr)[0]
	if !strings.Contains(mail.Text, "hooks.example.com") || strings.Contains(mail.Text, "s3cr3t") {
		t.Errorf("confirmation email: want the webhook host and not its query\n%s", mail.Text)
	}
	if r := e.postForm("/v1/confirm", url.Values{"token": {tokenOf(t, e.confirmURL(addr))}}); r.status != 200 {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	u, enabled, err := e.wh.Endpoint(context.Background(), id)
	if err != nil || u != "https://hooks.example.com/jobs?key=s3cr3t" || !enabled {
		t.Fatalf("endpoint: %q %v %v", u, enabled, err)
	}
	if sub, _ := e.st.GetSubscription(context.Background(), id); sub.PendingWebhookSecret != "" {
		t.Errorf("the secret is still kept in the subscription after confirmation")
	}

	// The API call with a manage token only emails a link: the secret is
	// shown on the page that link opens, once.
	tok := e.manageToken(id)
	path := "/v1/subscriptions/" + id + "/webhook/rotate"
	rot := e.do("POST", path, "", "Authorization", "Bearer "+tok)
	if rot.status != http.StatusAccepted || strings.Contains(rot.body, "whsec_") {
		t.Fatalf("rotate: got %d %s, want 202 without a secret", rot.status, rot.body)
	}
	done := e.confirmAction(addr, "/v1/manage/rotate-webhook", "Rotate the secret")
	s2 := regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]+`).FindString(html.UnescapeString(done.body))
	if done.status != 200 || s2 == "" || s2 == secret {
		t.Fatalf("rotation page: got %d with secret %q, want 200 and a new whsec_ secret\n%s", done.status, s2, done.body)
	}
	again := e.postForm("/v1/manage/rotate-webhook", url.Values{"token": {tokenOf(t, e.emailLink(addr, "/v1/manage/rotate-webhook"))}})
	if again.status != http.StatusConflict || strings.Contains(again.body, "whsec_") {
		t.Errorf("second use of the rotation link: got %d, want 409 without a secret", again.status)
	}
	if r := e.do("POST", path+"?token="+url.QueryEscape(tok), ""); r.status != http.StatusAccepted {
		t.Errorf("rotate with ?token=: %d %s", r.status, r.body)
	}
	if r := e.do("POST", path, ""); r.status != http.StatusUnauthorized {
		t.Errorf("rotate without a token: %d, want 401", r.status)
	}
	other := e.srv.Links().ManageToken("sub_other", 0)
	if r := e.do("POST", path, "", "Authorization", "Bearer "+other); r.status != http.StatusForbidden {
		t.Errorf("rotate with another subscription's token: %d, want 403", r.status)
	}
	unsub := e.signer.Issue(token.Unsubscribe, id, time.Time{})
	if r := e.do("POST", path, "", "Authorization", "Bearer "+unsub); r.status != http.StatusBadRequest || r.code(t) != "invalid_token" {
		t.Errorf("rotate with an unsubscribe token: %d %s, want 400 invalid_token", r.status, r.body)
	}
	plain := e.active("nohook@example.com", store.StatusActive)
	if r := e.do("POST", "/v1/subscriptions/"+plain.ID+"/webhook/rotate", "", "Authorization", "Bearer "+e.manageToken(plain.ID)); r.status != http.StatusNotFound {
		t.Errorf("rotate without a webhook: %d %s, want 404", r.status, r.body)
	}
}

// tokenOf returns the token query parameter of a link.
func tokenOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.SubscriptionsPerEmail = 2 })
		e.active("many@example.com", store.StatusActive)
		e.active("many@example.com", store.StatusPaused)
		// At the cap the answer looks the same; the address is told by email.
		r := e.postJSON("/v1/subscriptions", goodBody("many@example.com"))
		if r.status != http.StatusCreated || r.json(t)["status"] != "pending" {
			t.Fatalf("third subscription: got %d %s, want 201 pending", r.status, r.body)
		}
		if n, _ := e.st.CountConfirmed(context.Background(), "many@example.com"); n != 2 {
			t.Errorf("got %d subscriptions, want 2 (nothing stored at the cap)", n)
		}
		got := e.sink.To("many@example.com")
		if len(got) != 1 || !strings.Contains(got[0].Subject, "You already have 2 job alerts") || !strings.Contains(got[0].Text, "/v1/manage?token=") {
			t.Fatalf("got %d emails %v, want one cap notice with a manage link", len(got), got)
		}
		e.subscribe("other@example.com")
	})
	t.Run("confirmations per address", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.ConfirmationsPerHour = 2 })
		e.subscribe("c@example.com")
		e.subscribe("C@example.com") // the same address
		r := e.postJSON("/v1/subscriptions", goodBody("c@example.com"))
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("third confirmation: %d %s (Retry-After %q), want 429 with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
		}
		if n := len(e.sink.Messages()); n != 2 {
			t.Errorf("%d emails, want 2", n)
		}
		if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 3500 || ra > 3600 {
			t.Errorf("Retry-After %q, want the rest of the hour", r.header.Get("Retry-After"))
		}
	})
	t.Run("confirmations per IP", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.ConfirmationsPerIPPerHour = 2 })
		e.subscribe("ip1@example.com")
		e.subscribe("ip2@example.com")
		if r := e.postJSON("/v1/subscriptions", goodBody("ip3@example.com")); r.status != http.StatusTooManyRequests {
			t.Fatalf("third from one IP: %d %s, want 429", r.status, r.body)
		}
		// X-Forwarded-For is ignored unless TrustProxy is set.
		if r := e.postJSON("/v1/subscriptions", goodBody("ip4@example.com"), "X-Forwarded-For", "203.0.113.9"); r.status != http.StatusTooManyRequests {
			t.Fatalf("spoofed X-Forwarded-For: %d, want 429", r.status)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.ConfirmationsPerIPPerHour = 1; c.TrustProxy = true })
		for i, ip := range []string{"198.51.100.1", "198.51.100.2"} {
			r := e.postJSON("/v1/subscriptions", goodBody(fmt.Sprintf("p%d@example.com", i)), "X-Forwarded-For", "10.9.9.9, "+ip)
			if r.status != http.StatusCreated {
				t.Fatalf("from %s: %d %s, want 201", ip, r.status, r.body)
			}
		}
		r := e.postJSON("/v1/subscriptions", goodBody("p9@example.com"), "X-Forwarded-For", "10.9.9.8, 198.51.100.1")
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("second from 198.51.100.1: %d, want 429", r.status)
		}
	})
}

func TestConfirmationEmailFailure(t *testing.T) {
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Mailer = failingMailer{} })
	body := goodBody("down@example.com")
	body["webhook_url"] = "https://hooks.example.com/x"
	r := e.postJSON("/v1/subscriptions", body)
	if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
		t.Fatalf("got %d %s, want 503", r.status, r.body)
	}
	if subs, _ := e.st.SubscriptionsByEmail(context.Background(), "down@example.com"); len(subs) != 0 {
		t.Errorf("got %d subscriptions left after a failed confirmation email, want 0", len(subs))
	}
	for _, k := range e.keys() {
		if strings.Contains(k, ":sub:") || strings.Contains(k, "{wh}ep:") || strings.Contains(k, ":rate:") {
			t.Errorf("key %s left after a failed confirmation email", k)
		}
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t)
	sub := e.active("leave@example.com", store.StatusActive)
	link := e.srv.Links().Unsubscribe(sub.ID)
	if !strings.HasPrefix(link, e.url+"/v1/unsubscribe?token=") {
		t.Fatalf("link %s", link)
	}
	page := e.do("GET", link, "", "Accept", "text/html")
	if page.status != 200 || !strings.Contains(page.body, `List-Unsubscribe`) || e.status(sub.ID) != store.StatusActive {
		t.Fatalf("GET page: %d, status %s\n%s", page.status, e.status(sub.ID), page.body)
	}
	// As a mail provider sends it: no cookies, no Accept.
	r := e.do("POST", link, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 {
		t.Fatalf("one-click POST: %d %s", r.status, r.body)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("one-click answer sets cookies")
	}
	if got := e.status(sub.ID); got != store.StatusUnsubscribed {
		t.Fatalf("status %s, want unsubscribed", got)
	}
	if on, _ := e.rdb.HExists(context.Background(), store.KeysOf(e.prefix, 0, sub.ID).Shard.Filters, sub.ID).Result(); on {
		t.Errorf("an unsubscribed subscription is still in the filter index")
	}
	// Again, and from a browser with a foreign Origin (no CSRF on this one).
	again := e.do("POST", link, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded",
		"Accept", "text/html", "Origin", "https://mail.example.net", "Sec-Fetch-Site", "cross-site")
	if again.status != 200 || !strings.Contains(again.body, "unsubscribed") {
		t.Errorf("second one-click: %d %s", again.status, again.body)
	}
	// A deleted subscription is reported as unsubscribed.
	if err := e.st.DeleteSubscription(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", link, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Errorf("one-click on a deleted subscription: %d %s", r.status, r.body)
	}
}

func TestBadTokens(t *testing.T) {
	e := newEnv(t)
	sub := e.active("tok@example.com", store.StatusPending)
	good := e.signer.Issue(token.Confirm, sub.ID, time.Now().Add(time.Hour))
	tampered := good[:len(good)-3] + "AAA"
	if tampered == good {
		tampered = good[:len(good)-3] + "BBB"
	}
	other, _ := token.NewSigner("another-secret-of-enough-bytes")
	cases := []struct {
		name, tok, msg string
	}{
		{"tampered", tampered, "not valid"},
		{"foreign signer", other.Issue(token.Confirm, sub.ID, time.Time{}), "not valid"},
		{"expired", e.signer.Issue(token.Confirm, sub.ID, time.Now().Add(-time.Minute)), "expired"},
		{"wrong scope", e.signer.Issue(token.Manage, sub.ID, time.Time{}), "not meant for this page"},
		{"garbage", "%%%not-a-token", "damaged"},
		{"empty", "", "no token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := "?token=" + url.QueryEscape(c.tok)
			page := e.do("GET", "/v1/confirm"+q, "", "Accept", "text/html")
			if page.status != http.StatusBadRequest || !strings.Contains(page.body, "This link does not work") || !strings.Contains(page.body, c.msg) {
				t.Errorf("GET confirm page: %d, want 400 page mentioning %q\n%s", page.status, c.msg, page.body)
			}
			j := e.postJSON("/v1/confirm", map[string]string{"token": c.tok})
			if j.status != http.StatusBadRequest || j.code(t) != "invalid_token" {
				t.Errorf("POST confirm JSON: %d %s, want 400 invalid_token", j.status, j.body)
			}
			for _, p := range []string{"/v1/unsubscribe", "/v1/manage"} {
				if c.name == "wrong scope" && p == "/v1/manage" {
					continue // a manage token is right there
				}
				if r := e.do("GET", p+q, "", "Accept", "text/html"); r.status != http.StatusBadRequest {
					t.Errorf("GET %s: %d, want 400", p, r.status)
				}
			}
			if r := e.do("POST", "/v1/unsubscribe"+q, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded"); r.status != http.StatusBadRequest || r.code(t) != "invalid_token" {
				t.Errorf("one-click: %d %s, want 400 invalid_token", r.status, r.body)
			}
		})
	}
	if got := e.status(sub.ID); got != store.StatusPending {
		t.Errorf("status %s after bad tokens, want pending", got)
	}
	// A confirm token of a deleted subscription: 404, not 500.
	if err := e.st.DeleteSubscription(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.postJSON("/v1/confirm", map[string]string{"token": good}); r.status != http.StatusNotFound {
		t.Errorf("confirm a deleted subscription: %d %s, want 404", r.status, r.body)
	}
}

type fakeDigests struct{ got time.Time }

func (f *fakeDigests) RunDue(_ context.Context, now time.Time) (notifier.RunResult, error) {
	f.got = now
	return notifier.RunResult{Sent: 3, SkippedEmpty: 2, Deferred: 1}, nil
}

func TestAdmin(t *testing.T) {
	fd := &fakeDigests{}
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Digests = fd })
	sub := e.active("admin@example.com", store.StatusActive)
	path := "/v1/subscriptions/" + sub.ID
	routes := []struct{ method, path, body string }{
		{"GET", path, ""},
		{"DELETE", "/v1/subscriptions/sub_nonexistent", ""},
		{"POST", "/v1/admin/digests/run", `{"now":"2026-11-27T16:00:00Z"}`},
		{"GET", "/v1/admin/webhooks/dead-letters", ""},
		{"POST", "/v1/admin/webhooks/dead-letters/d1/replay", ""},
	}
	for _, rt := range routes {
		if r := e.do(rt.method, rt.path, rt.body); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s without a token: %d, want 401 with WWW-Authenticate", rt.method, rt.path, r.status)
		}
		if r := e.do(rt.method, rt.path, rt.body, "Authorization", "Bearer wrong-token"); r.status != http.StatusForbidden {
			t.Errorf("%s %s with a wrong token: %d, want 403", rt.method, rt.path, r.status)
		}
	}
	auth := []string{"Authorization", "Bearer " + adminToken}
	r := e.do("GET", path, "", auth...)
	if r.status != 200 || r.json(t)["email"] != "admin@example.com" || r.json(t)["status"] != "active" {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	run := e.do("POST", "/v1/admin/digests/run", `{"now":"2026-11-27T08:00:00-08:00"}`, auth...)
	if run.status != 200 || run.body != `{"sent":3,"skipped_empty":2,"deferred":1}`+"\n" {
		t.Errorf("digests run: %d %q", run.status, run.body)
	}
	if want := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC); !fd.got.Equal(want) {
		t.Errorf("digests run at %v, want %v", fd.got, want)
	}
	if r := e.do("POST", "/v1/admin/digests/run", `{"now":"tomorrow"}`, auth...); r.status != 400 || r.fields(t)["now"] == "" {
		t.Errorf("bad now: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/admin/webhooks/dead-letters", "", auth...); r.status != 200 || !strings.Contains(r.body, `"dead_letters":[]`) {
		t.Errorf("dead letters: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/admin/webhooks/dead-letters/d-unknown/replay", "", auth...); r.status != 404 {
		t.Errorf("replay unknown: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", path, "", auth...); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if r := e.do("GET", path, "", auth...); r.status != 404 {
		t.Errorf("GET after DELETE: %d, want 404", r.status)
	}
	if r := e.do("DELETE", path, "", auth...); r.status != 404 {
		t.Errorf("DELETE again: %d, want 404", r.status)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.AdminToken = "" })
	if r := e.do("GET", "/v1/subscriptions/sub_x", "", "Authorization", "Bearer "); r.status != http.StatusUnauthorized {
		t.Errorf("empty bearer: %d, want 401", r.status)
	}
	if r := e.do("GET", "/v1/subscriptions/sub_x", "", "Authorization", "Bearer anything"); r.status != http.StatusForbidden {
		t.Errorf("no admin token configured: %d, want 403", r.status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	sub := e.active("hdr@example.com", store.StatusActive)
	for _, p := range []string{"/", "/static/style.css", "/healthz", "/v1/manage?token=" + url.QueryEscape(e.manageToken(sub.ID)),
		"/v1/confirm?token=bad", "/no-such-page", "/v1/subscriptions/x"} {
		r := e.do("GET", p, "", "Accept", "text/html")
		h := r.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows unsafe-inline", p)
		}
		for k, want := range map[string]string{"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", p, k, got, want)
			}
		}
		if r.status >= 500 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	if r := e.do("GET", "/", ""); !strings.Contains(r.body, `<script src="/static/tz.js"`) || strings.Contains(r.body, "<script>") {
		t.Errorf("the page has an inline script or no tz.js")
	}
	if r := e.do("GET", "/no-such-page", ""); r.status != 404 || r.code(t) != "not_found" {
		t.Errorf("404: %d %s", r.status, r.body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ready := error(nil)
	e := newEnv(t, func(_ *api.Config, d *api.Deps) {
		d.Ready = func(context.Context) error { return ready }
		d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "jobalert_up 1") })
	})
	if r := e.do("GET", "/healthz", ""); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
	if r := e.do("GET", "/readyz", ""); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	// The answer names the failing parts; the error text (hosts, users)
	// goes to the log only.
	ready = errors.Join(&api.Unready{Part: "redis", Err: errors.New("dial tcp 10.0.0.7:6379: connection refused")},
		&api.Unready{Part: "filter_index", Err: errors.New("still loading")})
	r := e.do("GET", "/readyz", "")
	if want := `{"status":"unavailable","failing":["filter_index","redis"]}`; r.status != 503 || strings.TrimSpace(r.body) != want {
		t.Errorf("readyz when not ready: got %d %s, want 503 %s", r.status, r.body, want)
	}
	ready = fmt.Errorf("something else at redis://u:pw@10.0.0.7")
	if r := e.do("GET", "/readyz", ""); r.status != 503 || strings.TrimSpace(r.body) != `{"status":"unavailable","failing":["service"]}` {
		t.Errorf("readyz with a plain error: got %d %s, want 503 failing [service]", r.status, r.body)
	}
	if r := e.do("GET", "/metrics", ""); r.status != 200 || !strings.Contains(r.body, "jobalert_up") {
		t.Errorf("metrics: %d %s", r.status, r.body)
	}
}

// panicStore panics on reads, to show that a panic becomes a logged 500.
type panicStore struct{ *store.Redis }

func (panicStore) GetSubscription(context.Context, string) (*store.Subscription, error) {
	panic("boom")
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Store = panicStore{d.Store.(*store.Redis)} })
	r := e.do("GET", "/v1/subscriptions/sub_x", "", "Authorization", "Bearer "+adminToken)
	if r.status != 500 || r.code(t) != "internal" {
		t.Fatalf("got %d %s, want 500 internal", r.status, r.body)
	}
	if r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the 500 lacks the security headers")
	}
}

func TestSubscribePageForm(t *testing.T) {
	e := newEnv(t)
	page := e.do("GET", "/", "", "Accept", "text/html")
	for _, want := range []string{`<label for="email"`, `name="visa_types" value="H-1B"`, `name="visa_types" value="GREEN-CARD"`,
		`name="remote"`, `<label for="min_salary"`, `name="frequency" value="weekly"`, `<label for="timezone"`, `<label for="send_hour"`,
		`<label for="weekly_day"`, `<link rel="stylesheet" href="/static/style.css">`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("subscribe page lacks %s", want)
		}
	}
	bad := url.Values{"email": {"nope"}, "keywords": {""}, "min_salary": {"lots"}, "frequency": {"daily"}, "timezone": {"UTC"}, "send_hour": {"8"}, "weekly_day": {"monday"}}
	r := e.postForm("/", bad)
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad form: %d", r.status)
	}
	for _, want := range []string{`id="email-err"`, `value="nope"`, `id="min_salary-err"`, `value="lots"`, "Please correct"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("bad form page lacks %s", want)
		}
	}
	none := url.Values{"email": {"x@example.com"}, "send_hour": {"8"}, "frequency": {"daily"}, "timezone": {"UTC"}}
	if r := e.postForm("/", none); r.status != 400 || !strings.Contains(r.body, `id="filter-err"`) {
		t.Errorf("form without a filter: %d, want the filter error", r.status)
	}
	good := url.Values{"email": {"form@example.com"}, "keywords": {"backend engineer"}, "visa_types": {"H-1B", "TN"},
		"locations": {"Seattle, WA\r\nAustin, TX"}, "remote": {"1"}, "min_salary": {"150,000"}, "frequency": {"weekly"},
		"timezone": {"America/New_York"}, "send_hour": {"7"}, "weekly_day": {"friday"}}
	r = e.postForm("/", good)
	if r.status != 200 || !strings.Contains(r.body, "Check your inbox") {
		t.Fatalf("good form: %d\n%s", r.status, r.body)
	}
	subs, err := e.st.SubscriptionsByEmail(context.Background(), "form@example.com")
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions: %v %v", subs, err)
	}
	s := subs[0]
	if s.Status != "pending" || s.Frequency != "weekly" || s.WeeklyDay != "friday" || s.SendHour != 7 || s.Filter.MinSalary != 150000 ||
		strings.Join(s.Filter.Locations, "|") != "Seattle, WA|Austin, TX|remote" || strings.Join(s.Filter.VisaTypes, ",") != "H-1B,TN" {
		t.Errorf("stored %+v", s)
	}
	e.confirmURL("form@example.com")
	// A cross-site form post is refused.
	if r := e.postForm("/", good, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); r.status != http.StatusForbidden {
		t.Errorf("cross-site form: %d, want 403", r.status)
	}
}

// A known path with the wrong method is 405 with Allow, not 404.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ method, path, allow string }{
		{"GET", "/v1/subscriptions", "POST, OPTIONS"},
		{"DELETE", "/v1/manage", "GET, POST, HEAD"},
		{"PUT", "/v1/subscriptions/sub_x", "GET, DELETE, HEAD"},
	}
	for _, c := range cases {
		r := e.do(c.method, c.path, "")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: got %d Allow %q, want 405 Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.allow)
		}
	}
	if r := e.do("GET", "/nowhere", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /nowhere: got %d, want 404", r.status)
	}
}

// emailCount is an api.EmailCounter keeping "kind outcome" per email.
type emailCount struct {
	mu  sync.Mutex
	got []string
}

func (c *emailCount) CountEmail(kind string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, kind+" "+notifier.EmailOutcome(err))
}

func (c *emailCount) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func TestConfirmationEmailsAreCounted(t *testing.T) {
	var c emailCount
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Emails = &c })
	e.subscribe("ada@example.com")
	e.sink.FailUntil(smtpsink.StageMail, 421, time.Now().Add(time.Hour))
	if r := e.postJSON("/v1/subscriptions", goodBody("bob@example.com")); r.status != http.StatusServiceUnavailable {
		t.Fatalf("sign-up while the relay answers 421: got %d %s, want 503", r.status, r.body)
	}
	if got, want := c.list(), []string{"confirmation sent", "confirmation deferred"}; !slices.Equal(got, want) {
		t.Fatalf("emails counted: got %q, want %q", got, want)
	}
}

// Probes serves the three endpoints alone, for the metrics listener.
func TestProbesAlone(t *testing.T) {
	var ready error
	srv := httptest.NewServer(api.Probes(func(context.Context) error { return ready },
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "jobalert_up 1") }), nil))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, `"ok"`}, {"/readyz", 200, `"ready"`}, {"/metrics", 200, "jobalert_up 1"}, {"/v1/subscriptions", 404, ""},
	} {
		if code, body := get(c.path); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("GET %s: got %d %q, want %d with %q", c.path, code, body, c.code, c.body)
		}
	}
	ready = &api.Unready{Part: "redis", Err: errors.New("dial tcp 10.0.0.5:6379: connection refused")}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, `"failing":["redis"]`) || strings.Contains(body, "10.0.0.5") {
		t.Errorf("GET /readyz when not ready: got %d %q, want 503 naming the failing part and no error text", code, body)
	}
}
