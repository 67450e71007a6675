package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
)

// secured is a NATS server and a Redis that both take only TLS from a CA
// of the test's own, with a client certificate, and log-ins: an nkey for
// NATS, an ACL user for Redis. env holds the service's settings for them.
type secured struct {
	certs      *testenv.Certs
	env        map[string]string
	natsClient []nats.Option
	opts       stackOpts
}

func newSecured(t *testing.T) *secured {
	t.Helper()
	certs := testenv.NewCerts(t)
	seed, pub := testenv.NkeyUser(t)
	ns := testenv.SecureNATS(t, certs, pub)
	redisURL := testenv.RedisTLS(t, certs, "jobalert", "pw-"+testenv.RandomHex(6))
	env := map[string]string{
		"JOBALERT_NATS_URL": ns.ClientURL(), "JOBALERT_NATS_NKEY": seed, "JOBALERT_NATS_TLS_CA": certs.CA,
		"JOBALERT_NATS_TLS_CERT": certs.ClientCert, "JOBALERT_NATS_TLS_KEY": certs.ClientKey,
		"JOBALERT_REDIS_URL": redisURL, "JOBALERT_REDIS_TLS_CA": certs.CA,
		"JOBALERT_REDIS_TLS_CERT": certs.ClientCert, "JOBALERT_REDIS_TLS_KEY": certs.ClientKey,
	}
	nkey, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	client := []nats.Option{nats.RootCAs(certs.CA), nats.ClientCert(certs.ClientCert, certs.ClientKey), nkey}
	return &secured{certs: certs, env: env, natsClient: client, opts: stackOpts{nats: ns, natsClient: client, env: env}}
}

// The whole pipeline over secured connections: `jobalert publish` sends a
// job to a NATS server that requires TLS from its own CA, a client
// certificate and an nkey; the service matches it, records it in a Redis
// that takes only TLS and the ACL user, and the email arrives.
func TestPipelineOverTLSWithNkeyAndRedisACLUser(t *testing.T) {
	sec := newSecured(t)
	s := startStack(t, sec.opts)
	ctx := context.Background()

	if st, err := s.app.nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
		t.Fatalf("service's NATS connection: got TLS state %+v, %v; want a complete handshake", st, err)
	}
	if who, err := s.app.rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "jobalert" {
		t.Fatalf("service's Redis user: got %q, %v; want jobalert", who, err)
	}

	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}})
	b, err := json.Marshal(job("tls-1", "Backend Engineer", "H-1B"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jobs.jsonl")
	if err := os.WriteFile(file, append(b, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"publish", "--quiet", file}, func(k string) string { return s.env[k] }, nil, &out, &errOut); err != nil {
		t.Fatalf("jobalert publish: got %v (stderr %q), want nil", err, errOut.String())
	}
	if got, want := strings.TrimSpace(out.String()), "published 1 events to jobs.created"; got != want {
		t.Errorf("jobalert publish: got %q, want %q", got, want)
	}
	m := s.waitMail("ada@example.com", 1)
	if !strings.Contains(m[0].Text, "https://jobs.example.com/tls-1") {
		t.Errorf("email: got\n%s\nwant the job's URL", m[0].Text)
	}
}

// A TLS handshake that fails at start-up (the server's certificate is not
// from the CA the service trusts, or the client has no certificate) stops
// the start in one line that names the part and the cause.
func TestStartupFailsInOneLineWhenTheTLSHandshakeFails(t *testing.T) {
	sec := newSecured(t)
	other := testenv.NewCerts(t)
	for _, c := range []struct {
		name, key, value string
		want             []string // all in the one line
	}{
		{"NATS server from another CA", "JOBALERT_NATS_TLS_CA", other.CA,
			[]string{"start-up: NATS at tls://127.0.0.1:", ": not connected within 1s: ", "x509: certificate signed by unknown authority"}},
		{"no nkey", "JOBALERT_NATS_NKEY", "",
			[]string{"start-up: NATS at tls://127.0.0.1:", ": not connected within 1s: ", "Authorization Violation"}},
		{"Redis from another CA", "JOBALERT_REDIS_TLS_CA", other.CA,
			[]string{"start-up: redis at rediss://jobalert:****@127.0.0.1:", "x509: certificate signed by unknown authority"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := startupEnv(t, sec.env)
			env[c.key] = c.value
			cfg, err := config.Load(func(k string) string { return env[k] }, true)
			if err != nil {
				t.Fatal(err)
			}
			a, err := newApp(context.Background(), cfg, roles{consumer: true, notifier: true, api: true}, testenv.Logger(t),
				appDeps{startupTimeout: time.Second})
			if a != nil || err == nil {
				t.Fatalf("newApp: got %v, %v; want an error", a, err)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error: got %q, want it to contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, sec.env["JOBALERT_REDIS_URL"]) {
				t.Errorf("error: got %q, want one line without the Redis password", msg)
			}
		})
	}
}

// The program itself (main, in a child process) ends a failed handshake
// at start-up with exit status 1 and the one line on stderr.
func TestStartupTLSFailureExitsWithStatus1(t *testing.T) {
	if os.Getenv("JOBALERT_TEST_RUN_MAIN") == "1" {
		os.Args = []string{"jobalert", "serve"}
		main()
		return
	}
	sec := newSecured(t)
	env := startupEnv(t, sec.env)
	env["JOBALERT_REDIS_TLS_CA"] = testenv.NewCerts(t).CA
	last := runMainFailing(t, "TestStartupTLSFailureExitsWithStatus1", env)
	u, err := url.Parse(sec.env["JOBALERT_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	want := "jobalert: start-up: redis at " + strings.Replace(u.String(), ":"+pw+"@", ":****@", 1) +
		": tls: failed to verify certificate: x509: certificate signed by unknown authority"
	if last != want {
		t.Errorf("last line: got %q, want %q", last, want)
	}
}
