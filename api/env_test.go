package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
	"github.com/jobalert/jobalert/webhook"
)

const adminToken = "admin-token-for-tests"

// env is one API server on a real Redis (unique key prefix), sending its
// confirmation emails through the real mailer into an in-process SMTP sink.
type env struct {
	t      testing.TB
	url    string
	srv    *api.Server
	st     *store.Redis
	rdb    redis.UniversalClient
	prefix string
	sink   *smtpsink.Sink
	signer *token.Signer
	wh     *webhook.Service
	client *http.Client // does not follow redirects
}

type envOption func(*api.Config, *api.Deps)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	e := &env{t: t, rdb: rdb, prefix: prefix, st: store.New(rdb, store.Config{Prefix: prefix})}
	t.Cleanup(func() { cleanPrefix(rdb, prefix) })

	sink, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		t.Fatalf("smtp sink: %v", err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	e.sink = sink
	mailer, err := notifier.NewMailer(notifier.MailerConfig{Host: sink.Host(), Port: sink.Port(), TLS: "none", Pool: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("mailer: %v", err)
	}
	t.Cleanup(func() { _ = mailer.Close() })

	hs := httptest.NewUnstartedServer(nil)
	e.url = "http://" + hs.Listener.Addr().String()
	renderer, err := notifier.NewRenderer(notifier.RenderConfig{From: "jobalert <alerts@example.com>", PublicURL: e.url})
	if err != nil {
		t.Fatalf("renderer: %v", err)
	}
	if e.signer, err = token.NewSigner("a-test-secret-of-enough-bytes"); err != nil {
		t.Fatal(err)
	}
	e.wh = webhook.New(rdb, prefix, webhook.Config{}, nil)

	cfg := api.Config{PublicURL: e.url, AdminToken: adminToken}
	deps := api.Deps{Store: e.st, Tokens: e.signer, Renderer: renderer, Mailer: mailer, Webhooks: e.wh}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	if e.srv, err = api.New(cfg, deps); err != nil {
		t.Fatalf("api.New: %v", err)
	}
	hs.Config.Handler = e.srv.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	e.client = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

func cleanPrefix(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// keys returns every key under the env's prefix.
func (e *env) keys() []string {
	e.t.Helper()
	ctx := context.Background()
	var out []string
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		e.t.Fatalf("scan: %v", err)
	}
	return out
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
	return m
}

// fields returns error.fields of a JSON error.
func (r response) fields(t testing.TB) map[string]string {
	t.Helper()
	var b struct {
		Error struct {
			Code   string            `json:"code"`
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
	return b.Error.Fields
}

func (r response) code(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// do sends a request; header pairs follow the body.
func (e *env) do(method, path, body string, header ...string) response {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.url + path
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *env) postJSON(path string, v any, header ...string) response {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do("POST", path, string(b), append([]string{"Content-Type", "application/json"}, header...)...)
}

func (e *env) postForm(path string, form url.Values, header ...string) response {
	e.t.Helper()
	return e.do("POST", path, form.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html"}, header...)...)
}

func goodBody(email string) map[string]any {
	return map[string]any{
		"email":     email,
		"filter":    map[string]any{"keywords": "backend engineer", "visa_types": []string{"h1b"}, "locations": []string{"Seattle, WA", "remote"}},
		"frequency": "daily", "timezone": "America/Los_Angeles", "send_hour": 8,
	}
}

// subscribe creates a pending subscription through the API and returns its id.
func (e *env) subscribe(email string) string {
	e.t.Helper()
	r := e.postJSON("/v1/subscriptions", goodBody(email))
	if r.status != http.StatusCreated {
		e.t.Fatalf("subscribe: got %d %s, want 201", r.status, r.body)
	}
	id, _ := r.json(e.t)["id"].(string)
	return id
}

// active stores an active subscription directly and returns it.
func (e *env) active(email string, status string) *store.Subscription {
	e.t.Helper()
	sub := &store.Subscription{Email: email, Filter: matcher.Filter{Keywords: "backend", VisaTypes: []string{"H-1B"}},
		Frequency: "daily", Timezone: "UTC", SendHour: 8, Status: status}
	if err := e.st.CreateSubscription(context.Background(), sub, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	return sub
}

func (e *env) status(id string) string {
	e.t.Helper()
	sub, err := e.st.GetSubscription(context.Background(), id)
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return sub.Status
}

// confirmURL waits for the confirmation email to addr and returns its link.
func (e *env) confirmURL(addr string) string {
	e.t.Helper()
	return e.emailLink(addr, "/v1/confirm")
}

// emailLink waits for an email to addr that links to path and returns the
// link of the newest such email.
func (e *env) emailLink(addr, path string) string {
	e.t.Helper()
	re := regexp.MustCompile(`https?://[^\s"<>]+` + regexp.QuoteMeta(path) + `\?token=[A-Za-z0-9_.%-]+`)
	var link string
	var m smtpsink.Message
	testenv.Eventually(e.t, 10*time.Second, func() bool {
		for _, msg := range e.sink.To(addr) {
			if l := re.FindString(msg.Text); l != "" {
				link, m = l, msg
			}
		}
		return link != ""
	}, "no email to %s links to %s", addr, path)
	if !strings.Contains(m.HTML, link) && !strings.Contains(m.HTML, strings.ReplaceAll(link, "&", "&amp;")) {
		e.t.Errorf("the HTML part does not carry the same link %s", link)
	}
	return link
}

// manageLink is the current manage link of subscription id.
func (e *env) manageLink(id string) string {
	e.t.Helper()
	return e.srv.Links().Manage(id, e.tokenVersion(id))
}

// manageToken is a current manage token of subscription id.
func (e *env) manageToken(id string) string {
	e.t.Helper()
	return e.srv.Links().ManageToken(id, e.tokenVersion(id))
}

func (e *env) tokenVersion(id string) int {
	e.t.Helper()
	sub, err := e.st.GetSubscription(context.Background(), id)
	if err != nil {
		return 0
	}
	return sub.TokenVersion
}

// confirmAction follows the newest emailed link to path: opens its page,
// checks the button, and POSTs the form as the browser would.
func (e *env) confirmAction(addr, path, button string) response {
	e.t.Helper()
	link := e.emailLink(addr, path)
	page := e.do("GET", link, "", "Accept", "text/html")
	if page.status != 200 || !strings.Contains(page.body, button) {
		e.t.Fatalf("GET %s: got %d, want 200 with a %q button\n%s", path, page.status, button, page.body)
	}
	u, err := url.Parse(link)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.postForm(path, url.Values{"token": {u.Query().Get("token")}})
}

// failingMailer fails every send.
type failingMailer struct{}

func (failingMailer) Send(context.Context, *mail.Msg) error {
	return &notifier.TemporaryError{Err: io.ErrUnexpectedEOF}
}

var hiddenInput = regexp.MustCompile(`name="(token|csrf)" value="([^"]+)"`)

// formTokens returns the token and csrf hidden inputs of a page.
func formTokens(t testing.TB, page string) (tok, csrf string) {
	t.Helper()
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v := strings.ReplaceAll(m[2], "&#43;", "+")
		if m[1] == "token" {
			tok = v
		} else {
			csrf = v
		}
	}
	if tok == "" || csrf == "" {
		t.Fatalf("no token/csrf inputs in the page:\n%s", page)
	}
	return tok, csrf
}

// The real collaborators satisfy the server's interfaces, and Links is what
// the notifier needs.
var (
	_ api.Store           = (*store.Redis)(nil)
	_ api.Tokens          = (*token.Signer)(nil)
	_ api.ConfirmRenderer = (*notifier.Renderer)(nil)
	_ api.Mailer          = (*notifier.Mailer)(nil)
	_ api.Webhooks        = (*webhook.Service)(nil)
	_ api.DigestRunner    = (*notifier.Digester)(nil)
	_ notifier.Links      = (*api.Links)(nil)
)
