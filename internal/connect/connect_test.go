package connect_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/testenv"
)

// load reads a configuration from vars, as the service does.
func load(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return vars[k] }, false)
	if err != nil {
		t.Fatalf("config.Load: got %v, want nil", err)
	}
	return cfg
}

// natsConnect connects as the service would with cfg, without retries, and
// checks a message goes round.
func natsConnect(t *testing.T, cfg *config.Config) (*nats.Conn, error) {
	t.Helper()
	opts, err := connect.NATSOptions(cfg)
	if err != nil {
		t.Fatalf("NATSOptions: got %v, want nil", err)
	}
	nc, err := nats.Connect(cfg.NATSURL, append(opts, nats.Timeout(5*time.Second))...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("probe")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("probe", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hello" {
		t.Fatalf("round trip: got %v, %v; want hello", m, err)
	}
	return nc, nil
}

// A NATS server that takes only TLS from its own CA, a client certificate
// and an nkey login lets the service in with the three settings, and
// keeps it out, saying why, when one of them is missing.
func TestNATSWithTLSClientCertificateAndNkey(t *testing.T) {
	certs := testenv.NewCerts(t)
	seed, pub := testenv.NkeyUser(t)
	ns := testenv.SecureNATS(t, certs, pub)
	full := map[string]string{
		"JOBALERT_NATS_URL": ns.ClientURL(), "JOBALERT_NATS_NKEY": seed, "JOBALERT_NATS_TLS_CA": certs.CA,
		"JOBALERT_NATS_TLS_CERT": certs.ClientCert, "JOBALERT_NATS_TLS_KEY": certs.ClientKey,
	}
	nc, err := natsConnect(t, load(t, full))
	if err != nil {
		t.Fatalf("connect with CA, client certificate and nkey: got %v, want connected", err)
	}
	st, err := nc.TLSConnectionState()
	if err != nil || !st.HandshakeComplete || st.PeerCertificates[0].Subject.CommonName != "server" {
		t.Errorf("TLS state: got %+v, %v; want a complete handshake with the test server's certificate", st, err)
	}
	// The same with a nats:// URL: the CA turns TLS on.
	plainURL := strings.Replace(ns.ClientURL(), "tls://", "nats://", 1)
	if _, err := natsConnect(t, load(t, with(full, "JOBALERT_NATS_URL", plainURL))); err != nil {
		t.Errorf("connect to nats:// with the TLS settings: got %v, want connected", err)
	}

	other := testenv.NewCerts(t)
	for _, c := range []struct {
		name string
		vars map[string]string
		want []string // any of
	}{
		{"no nkey", with(full, "JOBALERT_NATS_NKEY", ""), []string{"Authorization Violation"}},
		{"system roots only", with(full, "JOBALERT_NATS_TLS_CA", ""), []string{"certificate signed by unknown authority"}},
		{"another CA", with(full, "JOBALERT_NATS_TLS_CA", other.CA), []string{"certificate signed by unknown authority"}},
		{"no client certificate", with(with(full, "JOBALERT_NATS_TLS_CERT", ""), "JOBALERT_NATS_TLS_KEY", ""),
			// The server's alert, or nats.go's word for a connection the
			// server closed before the client read the alert.
			[]string{"tls: certificate required", "connection closed by remote after TLS handshake"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := natsConnect(t, load(t, c.vars))
			if err == nil || !containsAny(err.Error(), c.want) {
				t.Errorf("connect: got %v, want an error with one of %q", err, c.want)
			}
		})
	}
}

// A .creds file (user JWT and seed, operator mode) logs in; a user of an
// account the server does not know is refused.
func TestNATSCredsFile(t *testing.T) {
	op, opClaims := operator(t)
	acc, accJWT := account(t, op)
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(pubKey(t, acc), accJWT); err != nil {
		t.Fatal(err)
	}
	ns := testenv.NATSWith(t, &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver})

	creds := credsFile(t, acc)
	if _, err := natsConnect(t, load(t, map[string]string{"JOBALERT_NATS_URL": ns.ClientURL(), "JOBALERT_NATS_CREDS": creds})); err != nil {
		t.Fatalf("connect with the creds file: got %v, want connected", err)
	}
	stranger, _ := account(t, op) // signed by the operator, unknown to the resolver
	_, err := natsConnect(t, load(t, map[string]string{"JOBALERT_NATS_URL": ns.ClientURL(), "JOBALERT_NATS_CREDS": credsFile(t, stranger)}))
	if err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("connect as a user of an unknown account: got %v, want Authorization Violation", err)
	}
}

func operator(t *testing.T) (nkeys.KeyPair, *jwt.OperatorClaims) {
	t.Helper()
	kp, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.NewOperatorClaims(pubKey(t, kp))
	tok, err := claims.Encode(kp)
	if err != nil {
		t.Fatal(err)
	}
	if claims, err = jwt.DecodeOperatorClaims(tok); err != nil {
		t.Fatal(err)
	}
	return kp, claims
}

func account(t *testing.T, op nkeys.KeyPair) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewAccountClaims(pubKey(t, kp)).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	return kp, tok
}

// credsFile writes the .creds file of a new user of account acc.
func credsFile(t *testing.T, acc nkeys.KeyPair) string {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewUserClaims(pubKey(t, user)).Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pubKey(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	p, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A Redis that takes only TLS from its own CA with a client certificate
// and an ACL user lets the client in as that user with the settings, and
// keeps it out, saying why, without one of them.
func TestRedisWithTLSClientCertificateAndACLUser(t *testing.T) {
	certs := testenv.NewCerts(t)
	url := testenv.RedisTLS(t, certs, "jobalert", "s3cret-pw")
	full := map[string]string{
		"JOBALERT_REDIS_URL": url, "JOBALERT_REDIS_TLS_CA": certs.CA,
		"JOBALERT_REDIS_TLS_CERT": certs.ClientCert, "JOBALERT_REDIS_TLS_KEY": certs.ClientKey,
	}
	ctx := context.Background()
	rdb, err := connect.Redis(load(t, full))
	if err != nil {
		t.Fatalf("connect.Redis: got %v, want a client", err)
	}
	defer rdb.Close()
	if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "jobalert" {
		t.Fatalf("ACL WHOAMI: got %q, %v; want jobalert", who, err)
	}

	other := testenv.NewCerts(t)
	for _, c := range []struct {
		name string
		vars map[string]string
		want []string // any of
	}{
		{"wrong password", with(full, "JOBALERT_REDIS_URL", strings.Replace(url, "s3cret-pw", "guess", 1)), []string{"WRONGPASS"}},
		{"system roots only", with(full, "JOBALERT_REDIS_TLS_CA", ""), []string{"certificate signed by unknown authority"}},
		{"another CA", with(full, "JOBALERT_REDIS_TLS_CA", other.CA), []string{"certificate signed by unknown authority"}},
		{"no client certificate", with(with(full, "JOBALERT_REDIS_TLS_CERT", ""), "JOBALERT_REDIS_TLS_KEY", ""),
			// The server's alert, or the connection it closed before the
			// client read the alert.
			[]string{"tls: certificate required", "EOF", "connection reset by peer", "broken pipe"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdb, err := connect.Redis(load(t, c.vars))
			if err != nil {
				t.Fatalf("connect.Redis: got %v, want a client", err)
			}
			defer rdb.Close()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := rdb.Ping(ctx).Err(); err == nil || !containsAny(err.Error(), c.want) {
				t.Errorf("PING: got %v, want an error with one of %q", err, c.want)
			}
		})
	}
}

// With Sentinel and rediss://, the client reaches the Sentinels and the
// primary they name over TLS, each verified under its own address (the
// URL's host is not used), with the client certificate and the servers'
// password.
func TestRedisSentinelOverTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	set := testenv.Sentinel(t, certs)
	cfg := load(t, map[string]string{
		"JOBALERT_REDIS_URL":             "rediss://:" + set.Password + "@" + set.Master + "/0",
		"JOBALERT_REDIS_TLS_CA":          certs.CA,
		"JOBALERT_REDIS_TLS_CERT":        certs.ClientCert,
		"JOBALERT_REDIS_TLS_KEY":         certs.ClientKey,
		"JOBALERT_REDIS_SENTINEL_MASTER": set.Master, "JOBALERT_REDIS_SENTINELS": strings.Join(set.Sentinels, ","),
		"JOBALERT_REDIS_SENTINEL_PASSWORD": set.Password,
	})
	rdb, err := connect.Redis(cfg)
	if err != nil {
		t.Fatalf("connect.Redis: got %v, want a client", err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := rdb.ConfigGet(ctx, "tls-port").Result()
	if err != nil || !strings.HasSuffix(set.Primary, ":"+port["tls-port"]) {
		t.Fatalf("CONFIG GET tls-port: got %v, %v; want the primary %s", port, err, set.Primary)
	}
	if got, want := connect.RedisTarget(cfg), `redis Sentinel master "jobalert" at `+strings.Join(set.Sentinels, ","); got != want {
		t.Errorf("RedisTarget: got %q, want %q", got, want)
	}
}

// A file a variable names that is missing or holds the wrong thing is
// reported before anything connects, in one line that starts with the
// variable.
func TestBadFilesAreNamedByTheirVariable(t *testing.T) {
	certs := testenv.NewCerts(t)
	seed, _ := testenv.NkeyUser(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key or a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsRedis := "rediss://127.0.0.1:6380/0"
	for _, c := range []struct {
		vars map[string]string
		want string // prefix of the error
		also string // in the error
	}{
		{map[string]string{"JOBALERT_NATS_CREDS": missing}, "JOBALERT_NATS_CREDS: open " + missing, "no such file"},
		{map[string]string{"JOBALERT_NATS_CREDS": seed}, "JOBALERT_NATS_CREDS: " + seed + ": no user JWT", ""},
		{map[string]string{"JOBALERT_NATS_NKEY": missing}, "JOBALERT_NATS_NKEY: ", "no such file"},
		{map[string]string{"JOBALERT_NATS_NKEY": garbage}, "JOBALERT_NATS_NKEY: " + garbage + ": ", "seed"},
		{map[string]string{"JOBALERT_NATS_TLS_CA": missing}, "JOBALERT_NATS_TLS_CA: open " + missing, "no such file"},
		{map[string]string{"JOBALERT_NATS_TLS_CA": garbage}, "JOBALERT_NATS_TLS_CA: " + garbage + ": no PEM certificate", ""},
		{map[string]string{"JOBALERT_NATS_TLS_CERT": certs.ClientCert, "JOBALERT_NATS_TLS_KEY": garbage},
			"JOBALERT_NATS_TLS_CERT, JOBALERT_NATS_TLS_KEY: ", "PEM"},
		{map[string]string{"JOBALERT_REDIS_URL": tlsRedis, "JOBALERT_REDIS_TLS_CA": missing}, "JOBALERT_REDIS_TLS_CA: open " + missing, "no such file"},
		{map[string]string{"JOBALERT_REDIS_URL": tlsRedis, "JOBALERT_REDIS_TLS_CERT": missing, "JOBALERT_REDIS_TLS_KEY": certs.ClientKey},
			"JOBALERT_REDIS_TLS_CERT, JOBALERT_REDIS_TLS_KEY: open " + missing, ""},
	} {
		cfg := load(t, c.vars)
		_, nerr := connect.NATSOptions(cfg)
		_, rerr := connect.Redis(cfg)
		err := nerr
		if err == nil {
			err = rerr
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || !strings.Contains(err.Error(), c.also) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %v, want one line %q...%q", c.vars, err, c.want, c.also)
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
