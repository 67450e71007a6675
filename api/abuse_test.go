package api_test

// One test per abuse finding of the public sign-up (docs/security.md),
// each through the HTTP API on the real stack.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
)

// A plain HTML form on any web site can send text/plain; a cross-site
// browser request is refused; an allowed origin gets CORS answers.
func TestSignupCrossSite(t *testing.T) {
	const board = "https://board.example"
	e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.AllowedOrigins = []string{board} })
	b, _ := json.Marshal(goodBody("victim@example.com"))

	r := e.do("POST", "/v1/subscriptions", string(b), "Content-Type", "text/plain")
	if r.status != http.StatusUnsupportedMediaType || r.code(t) != "unsupported_media_type" {
		t.Errorf("text/plain body: got %d %s, want 415", r.status, r.body)
	}
	r = e.do("POST", "/v1/subscriptions", string(b), "Content-Type", "application/json",
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if r.status != http.StatusForbidden {
		t.Errorf("cross-site JSON: got %d %s, want 403", r.status, r.body)
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Fatalf("got %d emails from refused cross-site requests, want 0", n)
	}

	pre := e.do("OPTIONS", "/v1/subscriptions", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := pre.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from another origin: got Access-Control-Allow-Origin %q, want none", got)
	}
	pre = e.do("OPTIONS", "/v1/subscriptions", "", "Origin", board, "Access-Control-Request-Method", "POST")
	if got := pre.header.Get("Access-Control-Allow-Origin"); pre.status != http.StatusNoContent || got != board {
		t.Errorf("preflight from the board: got %d %q, want 204 %q", pre.status, got, board)
	}
	r = e.do("POST", "/v1/subscriptions", string(b), "Content-Type", "application/json",
		"Sec-Fetch-Site", "cross-site", "Origin", board)
	if r.status != http.StatusCreated || r.header.Get("Access-Control-Allow-Origin") != board {
		t.Errorf("sign-up from the allowed board: got %d %s, want 201 with CORS", r.status, r.body)
	}
	// A server-to-server client sends neither Origin nor Sec-Fetch-Site.
	if r := e.postJSON("/v1/subscriptions", goodBody("server@example.com")); r.status != http.StatusCreated {
		t.Errorf("server-side client: got %d %s, want 201", r.status, r.body)
	}
}

// Control, bidi and format characters are refused in every text field;
// the Subject carries only the keywords.
func TestSignupTextRefused(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		field string
		set   func(map[string]any)
	}{
		{"filter.locations", func(b map[string]any) {
			b["filter"].(map[string]any)["locations"] = []string{"Seattle\r\nSubject: your account is locked"}
		}},
		{"filter.keywords", func(b map[string]any) { b["filter"].(map[string]any)["keywords"] = "go \u202eknil eht nepo" }},
		{"filter.companies", func(b map[string]any) { b["filter"].(map[string]any)["companies"] = []string{"Acme\u200b"} }},
		{"filter.exclude_keywords", func(b map[string]any) { b["filter"].(map[string]any)["exclude_keywords"] = []string{"a\u2028b"} }},
		{"timezone", func(b map[string]any) { b["timezone"] = "UTC\n" }},
	}
	for _, c := range cases {
		body := goodBody("text@example.com")
		c.set(body)
		r := e.postJSON("/v1/subscriptions", body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.fields(t)[c.field], "character") {
			t.Errorf("%s: got %d %s, want 400 naming %s", c.field, r.status, r.body, c.field)
		}
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Fatalf("got %d emails for refused text, want 0", n)
	}
	body := goodBody("text@example.com")
	body["filter"].(map[string]any)["companies"] = []string{"Click here to claim your prize"}
	if r := e.postJSON("/v1/subscriptions", body); r.status != http.StatusCreated {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	got := e.sink.To("text@example.com")
	if len(got) != 1 || got[0].Subject != "Confirm your job alert: backend engineer" {
		t.Fatalf("got subjects %v, want one %q", got, "Confirm your job alert: backend engineer")
	}
}

// The per-address limit counts the mailbox, the per-IP limit an IPv6 /64,
// and a global cap bounds every sign-up email.
func TestSignupLimitsDoNotSpread(t *testing.T) {
	t.Run("mailbox", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.ConfirmationsPerHour = 2 })
		for _, a := range []string{"rl+1@gmail.com", "R.L+2@googlemail.com"} {
			e.subscribe(a)
		}
		for _, a := range []string{"rl+3@gmail.com", "r.l@gmail.com", "RL@gmail.com"} {
			if r := e.postJSON("/v1/subscriptions", goodBody(a)); r.status != http.StatusTooManyRequests {
				t.Errorf("%s: got %d, want 429 (same mailbox)", a, r.status)
			}
		}
		e.subscribe("rl+1@example.com") // dots and tags of another domain: another mailbox count
	})
	t.Run("ipv6 /64", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.ConfirmationsPerIPPerHour = 1; c.TrustProxy = true })
		send := func(i int, ip string) int {
			return e.postJSON("/v1/subscriptions", goodBody("v6-"+string(rune('a'+i))+"@example.com"), "X-Forwarded-For", ip).status
		}
		if got := send(0, "2001:db8:1:2::1"); got != http.StatusCreated {
			t.Fatalf("first: got %d, want 201", got)
		}
		if got := send(1, "2001:db8:1:2:ffff::9"); got != http.StatusTooManyRequests {
			t.Errorf("same /64: got %d, want 429", got)
		}
		if got := send(2, "2001:db8:1:3::1"); got != http.StatusCreated {
			t.Errorf("another /64: got %d, want 201", got)
		}
	})
	t.Run("global", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.ConfirmationsPerHourTotal = 2; c.TrustProxy = true })
		for i, ip := range []string{"198.51.100.1", "198.51.100.2"} {
			if r := e.postJSON("/v1/subscriptions", goodBody("g"+string(rune('a'+i))+"@example.com"), "X-Forwarded-For", ip); r.status != http.StatusCreated {
				t.Fatalf("%s: got %d", ip, r.status)
			}
		}
		r := e.postJSON("/v1/subscriptions", goodBody("gz@example.com"), "X-Forwarded-For", "203.0.113.7")
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Errorf("over the global cap: got %d (Retry-After %q), want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
		}
		if n := len(e.sink.Messages()); n != 2 {
			t.Errorf("got %d emails, want 2", n)
		}
	})
}

// Unconfirmed subscriptions expire with everything about them and do not
// count toward the per-address cap.
func TestUnconfirmedExpire(t *testing.T) {
	e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.SubscriptionsPerEmail = 1 })
	// A second server whose unconfirmed subscriptions live one second.
	e2 := newEnv(t, func(_ *api.Config, d *api.Deps) {
		d.Store = store.New(e.rdb, store.Config{Prefix: e.prefix, PendingTTL: time.Second})
	})

	const addr = "stranger-target@example.com"
	ids := []string{e.subscribe(addr), e.subscribe(addr), e.subscribe(addr)}
	if n := len(e.sink.To(addr)); n != 3 {
		t.Fatalf("got %d confirmation emails, want 3: pending ones do not count toward the cap of 1", n)
	}
	ttl, err := e.rdb.PTTL(context.Background(), store.KeysOf(e.prefix, 0, ids[0]).Sub).Result()
	if err != nil || ttl <= 0 || ttl > 7*24*time.Hour {
		t.Errorf("pending subscription TTL: got %v %v, want at most the confirmation TTL", ttl, err)
	}
	// Confirming makes it permanent.
	if r := e.postForm("/v1/confirm", url.Values{"token": {tokenOf(t, e.confirmURL(addr))}}); r.status != 200 {
		t.Fatalf("confirm: %d", r.status)
	}
	confirmed := ""
	for _, id := range ids {
		if e.status(id) == store.StatusActive {
			confirmed = id
		}
	}
	for _, k := range []string{store.KeysOf(e.prefix, 0, confirmed).Sub, e.prefix + "email:" + store.EmailHash(addr)} {
		if ttl, _ := e.rdb.PTTL(context.Background(), k).Result(); ttl != -1 {
			t.Errorf("%s: got TTL %v after confirmation, want none", k, ttl)
		}
	}

	// Through the short-lived store: the data itself is gone, not only the token.
	const other = "never-agreed@example.com"
	r := e2.postJSON("/v1/subscriptions", goodBody(other))
	if r.status != http.StatusCreated {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, k := range e.keys() {
			if strings.Contains(k, id) || strings.Contains(k, store.EmailHash(other)) {
				return false
			}
		}
		return true
	}, "the unconfirmed subscription %s is still in Redis", id)
}

// New, known, capped and suppressed addresses get the same answer.
func TestSignupNoOracle(t *testing.T) {
	e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.SubscriptionsPerEmail = 2 })
	ctx := context.Background()
	e.active("known@example.com", store.StatusPaused) // under its cap
	e.active("capped@example.com", store.StatusActive)
	e.active("capped@example.com", store.StatusActive)
	if _, err := e.st.DeleteAllForEmail(ctx, "suppressed@example.com", true); err != nil {
		t.Fatal(err)
	}

	shape := func(addr string) (int, []string, string) {
		r := e.postJSON("/v1/subscriptions", goodBody(addr))
		m := r.json(t)
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		st, _ := m["status"].(string)
		return r.status, keys, st
	}
	ws, wk, wst := shape("new@example.com")
	if ws != http.StatusCreated || wst != "pending" {
		t.Fatalf("new address: got %d %v %s", ws, wk, wst)
	}
	for _, addr := range []string{"known@example.com", "capped@example.com", "suppressed@example.com", "SUPPRESSED+x@example.com"} {
		s, k, st := shape(addr)
		if s != ws || len(k) != len(wk) || st != wst {
			t.Errorf("%s: got %d %v %s, want the answer of a new address %d %v %s", addr, s, k, st, ws, wk, wst)
		}
	}
	if n := len(e.sink.To("suppressed@example.com")); n != 0 {
		t.Errorf("got %d emails to a suppressed address, want 0", n)
	}
	if ok, _ := e.rdb.SIsMember(ctx, e.prefix+"suppressed", store.EmailHash("suppressed@example.com")).Result(); ok {
		t.Errorf("the suppression list holds a plain hash of the address, want a keyed one")
	}
	capped := e.sink.To("capped@example.com")
	if len(capped) != 1 || !strings.Contains(capped[0].Text, "already has 2 alerts") {
		t.Errorf("capped address: got %d emails, want one notice", len(capped))
	}
	if n, _ := e.st.CountConfirmed(ctx, "capped@example.com"); n != 2 {
		t.Errorf("capped address: got %d subscriptions, want 2", n)
	}
}

// Manage links expire, can be signed out by the owner and the admin, and
// old never-expiring ones are refused; unsubscribe links keep working.
func TestManageLinksRevocable(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(c *api.Config, _ *api.Deps) { c.Clock = clock })
	sub := e.active("owner@example.com", store.StatusActive)

	old := e.signer.Issue(token.Manage, sub.ID, time.Time{}) // as every email carried before
	if r := e.do("GET", "/v1/manage?token="+url.QueryEscape(old), "", "Accept", "text/html"); r.status != http.StatusBadRequest {
		t.Errorf("never-expiring manage link: got %d, want 400", r.status)
	}
	link := e.manageLink(sub.ID)
	mu.Lock()
	now = now.Add(91 * 24 * time.Hour)
	mu.Unlock()
	if r := e.do("GET", link, "", "Accept", "text/html"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "latest email") {
		t.Errorf("manage link after 91 days: got %d, want 400 pointing to the latest email", r.status)
	}

	forwarded := e.manageLink(sub.ID)
	tok, csrf, page := e.managePage(sub.ID)
	if !strings.Contains(page, "Sign out of all links") {
		t.Fatalf("the manage page has no sign-out control")
	}
	r := e.manageAction(tok, csrf, "sign_out", nil)
	if r.status != 200 || !strings.Contains(r.body, "Signed out") {
		t.Fatalf("sign out: got %d %s", r.status, r.body)
	}
	if r := e.do("GET", forwarded, "", "Accept", "text/html"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "signed out") {
		t.Errorf("forwarded link after sign-out: got %d, want 400 signed out", r.status)
	}
	fresh := e.emailLink("owner@example.com", "/v1/manage")
	if r := e.do("GET", fresh, "", "Accept", "text/html"); r.status != 200 {
		t.Errorf("the emailed new manage link: got %d, want 200", r.status)
	}
	if r := e.do("GET", e.srv.Links().Unsubscribe(sub.ID), "", "Accept", "text/html"); r.status != 200 {
		t.Errorf("unsubscribe link after sign-out: got %d, want 200", r.status)
	}

	r = e.do("POST", "/v1/admin/subscriptions/"+sub.ID+"/revoke-links", "", "Authorization", "Bearer "+adminToken)
	if r.status != 200 {
		t.Fatalf("admin revoke: got %d %s", r.status, r.body)
	}
	if r := e.do("GET", fresh, "", "Accept", "text/html"); r.status != http.StatusBadRequest {
		t.Errorf("manage link after the admin revoked: got %d, want 400", r.status)
	}
	if r := e.do("POST", "/v1/admin/subscriptions/sub_nope/revoke-links", "", "Authorization", "Bearer "+adminToken); r.status != http.StatusNotFound {
		t.Errorf("revoke a missing subscription: got %d, want 404", r.status)
	}
}

// A refused sign-up writes no key and no info log line, and refusals
// cannot lock an address out.
func TestRefusedSignupWritesNothing(t *testing.T) {
	var logs testenv.SyncBuffer
	e := newEnv(t, func(c *api.Config, d *api.Deps) {
		c.ConfirmationsPerIPPerHour = 1
		c.TrustProxy = true
		d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	const flooder = "192.0.2.66"
	if r := e.postJSON("/v1/subscriptions", goodBody("first@example.com"), "X-Forwarded-For", flooder); r.status != http.StatusCreated {
		t.Fatalf("first: %d", r.status)
	}
	before, logBefore := len(e.keys()), logs.String()
	for i := 0; i < 20; i++ {
		if r := e.postJSON("/v1/subscriptions", goodBody("target@example.com"), "X-Forwarded-For", flooder); r.status != http.StatusTooManyRequests {
			t.Fatalf("request %d: got %d, want 429", i, r.status)
		}
	}
	if after := len(e.keys()); after != before {
		t.Errorf("got %d keys after 20 refused sign-ups, want %d", after, before)
	}
	if l := logs.String(); l != logBefore {
		t.Errorf("refused sign-ups logged at info:\n%s", strings.TrimPrefix(l, logBefore))
	}
	// The target is not locked out.
	if r := e.postJSON("/v1/subscriptions", goodBody("target@example.com"), "X-Forwarded-For", "198.51.100.20"); r.status != http.StatusCreated {
		t.Errorf("the target from its own network: got %d, want 201", r.status)
	}
}

// The manage page shows a webhook's host, never its full URL.
func TestManagePageShowsWebhookHost(t *testing.T) {
	e := newEnv(t)
	sub := &store.Subscription{Email: "hosted@example.com", Filter: e.active("x@example.com", store.StatusActive).Filter,
		Frequency: "daily", Timezone: "UTC", SendHour: 8, Status: store.StatusActive, WebhookURL: "https://hooks.example.net/p?key=s3cr3t"}
	if err := e.st.CreateSubscription(context.Background(), sub, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, page := e.managePage(sub.ID)
	if !strings.Contains(page, "hooks.example.net") || strings.Contains(page, "s3cr3t") {
		t.Errorf("manage page: want the webhook host and not its query")
	}
}
