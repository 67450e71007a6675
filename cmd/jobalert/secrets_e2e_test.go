package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
)

// credentials are the passwords of a stack run as production runs:
// NATS with a user and password, Redis with an ACL user, SMTP with AUTH.
// A nil *credentials is a stack without any.
type credentials struct {
	natsUser, natsPass   string
	redisUser, redisPass string
	smtpUser, smtpPass   string
}

func newCredentials(t *testing.T) *credentials {
	r := testenv.RandomHex(4)
	return &credentials{
		natsUser: "jobalert", natsPass: "nats-pw-" + r,
		redisUser: "jobalert-" + r, redisPass: "redis-pw-" + r,
		smtpUser: "relay-user", smtpPass: "smtp-pw-" + r,
	}
}

func (c *credentials) natsServer(t *testing.T) *server.Server {
	t.Helper()
	if c == nil {
		return testenv.NATS(t)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(t.TempDir(), "js"), NoLog: true, NoSigs: true, Username: c.natsUser, Password: c.natsPass})
	if err != nil {
		t.Fatalf("new nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready in 10s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func (c *credentials) natsConn(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	if c == nil {
		return testenv.NATSConn(t, s)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(c.natsUser, c.natsPass))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (c *credentials) sinkOptions() smtpsink.Options {
	if c == nil {
		return smtpsink.Options{}
	}
	return smtpsink.Options{Username: c.smtpUser, Password: c.smtpPass}
}

// apply puts the credentials into the service's environment (an ACL user
// is created on the test Redis for the run) and returns every secret the
// environment then holds.
func (c *credentials) apply(t *testing.T, env map[string]string) []string {
	t.Helper()
	if c == nil {
		return nil
	}
	opt, err := redis.ParseURL(env["JOBALERT_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opt)
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", c.redisUser, "on", ">"+c.redisPass, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("redis ACL user: %v", err)
	}
	t.Cleanup(func() {
		a := redis.NewClient(opt)
		_ = a.Do(context.Background(), "ACL", "DELUSER", c.redisUser).Err()
		_ = a.Close()
	})
	u, err := url.Parse(env["JOBALERT_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(c.redisUser, c.redisPass)
	env["JOBALERT_REDIS_URL"] = u.String()
	n, err := url.Parse(env["JOBALERT_NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	n.User = url.UserPassword(c.natsUser, c.natsPass)
	env["JOBALERT_NATS_URL"] = n.String()
	env["JOBALERT_SMTP_USERNAME"], env["JOBALERT_SMTP_PASSWORD"] = c.smtpUser, c.smtpPass
	env["JOBALERT_SECRET_PREVIOUS"] = "the-previous-secret-" + testenv.RandomHex(4)
	return []string{c.natsPass, c.redisPass, c.smtpPass, env["JOBALERT_SECRET"], env["JOBALERT_SECRET_PREVIOUS"], env["JOBALERT_ADMIN_TOKEN"]}
}

// anEmail is an email address in full; a redacted one ("j***@example.com")
// does not match.
var anEmail = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

// The whole pipeline runs with every credential set: a sign-up with a
// webhook whose URL holds tokens, its confirmation, an alert by email and
// by webhook (which fails, its answer quoting the address), a webhook
// endpoint that refuses connections, a hard bounce whose SMTP reply quotes
// the address, a sign-up for the suppressed address, links and
// suppressions of the previous secret, admin calls naming addresses,
// /readyz. Then
// everything the process logged (from Debug up) and everything `jobalert
// config` prints is scanned: no password, token, secret, link token,
// webhook path or email address appears.
func TestNothingSecretIsShown(t *testing.T) {
	var logs testenv.SyncBuffer
	s := startStack(t, stackOpts{log: &logs, debugLog: true, credentials: true})
	base := s.env["JOBALERT_PUBLIC_URL"]
	const (
		eve     = "eve.private@example.com"
		bounced = "bounce.private@example.org"
		fay     = "fay.private@example.net"
	)

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "cannot store the jobs of %s", eve)
	}))
	defer hook.Close()
	hookURL := hook.URL + "/hooks/HOOKPATHTOKEN?key=HOOKQUERYTOKEN"

	// Sign-up with a webhook, confirmed from the email.
	resp := post(t, base+"/v1/subscriptions", "application/json",
		`{"email":"`+eve+`","filter":{"keywords":"backend"},"frequency":"instant","webhook_url":"`+hookURL+`"}`)
	var created struct {
		ID            string `json:"id"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if err := json.Unmarshal([]byte(resp.body), &created); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("subscribe: got %d %s, want 201", resp.StatusCode, resp.body)
	}
	tokenRE := regexp.MustCompile(`token=([A-Za-z0-9_\-.%]+)`)
	confirm := tokenRE.FindStringSubmatch(s.waitMail(eve, 1)[0].Text)
	if confirm == nil {
		t.Fatal("no token in the confirmation email")
	}
	tok, _ := url.QueryUnescape(confirm[1])
	if r := post(t, base+"/v1/confirm", "application/x-www-form-urlencoded", "token="+url.QueryEscape(tok)); r.StatusCode != http.StatusOK {
		t.Fatalf("POST confirm: got %d %s, want 200", r.StatusCode, r.body)
	}

	// An address the SMTP server refuses, quoting it; a webhook endpoint
	// that refuses connections (the HTTP client's error quotes its URL).
	s.sink.Inject(smtpsink.Fault{Stage: smtpsink.StageRcpt, Action: smtpsink.ActionReply, Code: 550,
		Recipients: []string{bounced}, Message: "5.1.1 <" + bounced + ">: Recipient address rejected"})
	s.subscribe(bounced, matcher.Filter{Keywords: "backend"})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/hooks/CLOSEDPATHTOKEN?sig=CLOSEDQUERYTOKEN"
	closed.Close()
	faySub := &store.Subscription{Email: fay, Filter: matcher.Filter{Keywords: "backend"}, Frequency: "instant", Timezone: "UTC",
		Status: store.StatusActive, WebhookURL: closedURL, Channels: []string{store.ChannelEmail, store.ChannelWebhook}}
	if err := s.app.store.CreateSubscription(t.Context(), faySub, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.app.hooks.SetEndpoint(t.Context(), faySub.ID, closedURL, created.WebhookSecret); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		ids := s.app.index.MatchIDs(probeJob(matcher.Filter{Keywords: "backend"}))
		return containsID(ids, created.ID) && containsID(ids, faySub.ID)
	}, "subscriptions not indexed")

	s.publishJob("jobs.created", job("sec-1", "Backend Engineer"))
	alert := s.waitMail(eve, 2)[1]
	testenv.Eventually(t, 10*time.Second, func() bool {
		sup, err := s.app.store.IsSuppressed(t.Context(), bounced)
		return err == nil && sup && strings.Count(logs.String(), "webhook attempt failed") >= 2
	}, "want the bounce recorded and two failed webhook attempts logged")
	// A sign-up for the suppressed address is answered and logged at debug.
	if r := post(t, base+"/v1/subscriptions", "application/json", `{"email":"`+bounced+`","filter":{"keywords":"x"}}`); r.StatusCode != http.StatusCreated {
		t.Fatalf("sign-up of a suppressed address: got %d %s, want 201", r.StatusCode, r.body)
	}
	// The secret was rotated (JOBALERT_SECRET_PREVIOUS is set): a link
	// signed with the previous secret works, and an address suppressed
	// under the previous secret's address key stays suppressed (the
	// sign-up answers as usual; the email, sent synchronously, is not).
	prev, err := token.NewSigner(s.env["JOBALERT_SECRET_PREVIOUS"])
	if err != nil {
		t.Fatal(err)
	}
	oldUnsub := prev.Issue(token.Unsubscribe, faySub.ID, time.Time{})
	if r := post(t, base+"/v1/unsubscribe?token="+url.QueryEscape(oldUnsub), "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); r.StatusCode != http.StatusOK {
		t.Errorf("unsubscribe link of the previous secret: got %d %s, want 200", r.StatusCode, r.body)
	}
	const gone = "gone.private@example.com"
	before := store.New(s.app.rdb, store.Config{Prefix: s.env["JOBALERT_REDIS_PREFIX"], AddressKey: token.DeriveKey(s.env["JOBALERT_SECRET_PREVIOUS"], "address")})
	if _, err := before.DeleteAllForEmail(t.Context(), gone, true); err != nil {
		t.Fatal(err)
	}
	if r := post(t, base+"/v1/subscriptions", "application/json", `{"email":"`+gone+`","filter":{"keywords":"x"}}`); r.StatusCode != http.StatusCreated || len(s.sink.To(gone)) != 0 {
		t.Errorf("sign-up of an address suppressed under the previous secret: got %d and %d emails, want 201 and none", r.StatusCode, len(s.sink.To(gone)))
	}
	// The admin API, with addresses in bodies: find one, lift another.
	if out := s.admin("find", eve); !strings.Contains(out, created.ID) {
		t.Errorf("admin find: got %s, want eve's subscription", out)
	}
	if out := s.admin("suppressions", "lift", bounced); !strings.Contains(out, `"lifted": true`) {
		t.Errorf("admin suppressions lift: got %s, want lifted", out)
	}
	if r := get(t, base+"/readyz"); r.StatusCode != http.StatusOK {
		t.Fatalf("readyz: got %d %s, want 200", r.StatusCode, r.body)
	}
	if err := s.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	var cfgOut bytes.Buffer
	if err := run(context.Background(), []string{"config"}, func(k string) string { return s.env[k] }, nil, &cfgOut, &bytes.Buffer{}); err != nil {
		t.Fatalf("jobalert config: %v", err)
	}

	secrets := append(s.secrets, created.WebhookSecret, strings.TrimPrefix(created.WebhookSecret, "whsec_"),
		"HOOKPATHTOKEN", "HOOKQUERYTOKEN", "CLOSEDPATHTOKEN", "CLOSEDQUERYTOKEN", tok, oldUnsub, eve, bounced, fay, gone)
	for _, m := range tokenRE.FindAllStringSubmatch(alert.Text, -1) {
		v, _ := url.QueryUnescape(m[1])
		secrets = append(secrets, v)
	}
	log := logs.String()
	for name, out := range map[string]string{"the log": log, "jobalert config": cfgOut.String()} {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(out, sec) {
				t.Errorf("%s shows %q", name, sec)
			}
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if a := anEmail.FindString(line); a != "" {
			t.Errorf("the log shows the address %q in: %s", a, line)
		}
	}
	for _, line := range strings.Split(cfgOut.String(), "\n") {
		if a := anEmail.FindString(line); a != "" && !strings.HasPrefix(line, "JOBALERT_MAIL_FROM=") {
			t.Errorf("jobalert config shows the address %q in: %s", a, line)
		}
	}
	// The lines that would have shown them are there, redacted.
	for _, want := range []string{"email=e***@example.com", `msg="hard bounce"`, "b***@example.org", "webhook attempt failed",
		`msg="suppression lifted" component=api email=b***@example.org`,
		`err="Post \"` + closed.URL + `\": dial tcp`, "JOBALERT_NATS_URL=nats://jobalert:****@"} {
		if !strings.Contains(log+cfgOut.String(), want) {
			t.Errorf("want %q in the log or the config output; log:\n%s", want, log)
		}
	}
}
