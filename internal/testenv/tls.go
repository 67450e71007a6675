package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"
)

// Certs are PEM files of a certificate authority made for one test, and of
// a server certificate (for 127.0.0.1 and localhost, good for client
// authentication too) and a client certificate it signed.
type Certs struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// NewCerts makes a CA and the two certificates it signs, valid for an
// hour, in a temporary directory.
func NewCerts(tb testing.TB) *Certs {
	tb.Helper()
	dir := tb.TempDir()
	c := &Certs{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	caKey := newKey(tb)
	ca := &x509.Certificate{
		SerialNumber: serial(tb), Subject: pkix.Name{CommonName: "jobalert test CA " + RandomHex(4)},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatalf("CA certificate: %v", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		tb.Fatalf("CA certificate: %v", err)
	}
	writePEM(tb, c.CA, "CERTIFICATE", caDER)
	leaf := func(certFile, keyFile, cn string, usage ...x509.ExtKeyUsage) {
		key := newKey(tb)
		tmpl := &x509.Certificate{
			SerialNumber: serial(tb), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			tb.Fatalf("%s certificate: %v", cn, err)
		}
		writePEM(tb, certFile, "CERTIFICATE", der)
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			tb.Fatalf("%s key: %v", cn, err)
		}
		writePEM(tb, keyFile, "PRIVATE KEY", kb)
	}
	// Redis servers and Sentinels also show theirs as clients, to each other.
	leaf(c.ServerCert, c.ServerKey, "server", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	leaf(c.ClientCert, c.ClientKey, "jobalert", x509.ExtKeyUsageClientAuth)
	return c
}

// ClientTLS is the TLS configuration of a client that trusts c's CA and
// shows c's client certificate.
func (c *Certs) ClientTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	b, err := os.ReadFile(c.CA)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// NkeyUser makes a user nkey and writes its seed to a file; it returns
// the file and the public key a server lets in.
func NkeyUser(tb testing.TB) (seedFile, public string) {
	tb.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		tb.Fatalf("nkey: %v", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		tb.Fatal(err)
	}
	if public, err = kp.PublicKey(); err != nil {
		tb.Fatal(err)
	}
	seedFile = filepath.Join(tb.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		tb.Fatal(err)
	}
	return seedFile, public
}

// SecureNATS starts an embedded JetStream server that takes only TLS
// connections, with the server certificate of certs, from clients that
// show a certificate signed by certs' CA and log in as the nkey user
// nkeyPublic. Its ClientURL is tls://.
func SecureNATS(tb testing.TB, certs *Certs, nkeyPublic string) *server.Server {
	tb.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CaFile: certs.CA, Verify: true,
	})
	if err != nil {
		tb.Fatalf("nats TLS config: %v", err)
	}
	return NATSWith(tb, &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(tb.TempDir(), "js"), NoLog: true, NoSigs: true,
		TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 2,
		Nkeys: []*server.NkeyUser{{Nkey: nkeyPublic}},
	})
}

// RedisTLS starts a redis-server child that listens only with TLS (the
// server certificate of certs, clients must show one signed by certs' CA)
// and lets in only the ACL user user with password (the default user is
// off). It returns the rediss:// URL with that user. The test is skipped
// when redis-server is not installed.
func RedisTLS(tb testing.TB, certs *Certs, user, password string) string {
	tb.Helper()
	port := FreePort(tb)
	startRedis(tb, tb.TempDir(), "--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey,
		"--tls-ca-cert-file", certs.CA, "--tls-auth-clients", "yes",
		"--user", "default", "off",
		"--user", user, "on", ">"+password, "~*", "&*", "+@all")
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Username: user, Password: password,
		TLSConfig: certs.ClientTLS(tb)})
	defer c.Close()
	waitPing(tb, c, "redis-server (TLS) on port "+strconv.Itoa(port))
	return fmt.Sprintf("rediss://%s:%s@127.0.0.1:%d/0", user, password, port)
}

// startRedis starts redis-server with args (and no persistence, bound to
// loopback, in dir, logging to dir/redis.log) and kills it at cleanup. It
// skips the test when redis-server is not installed.
func startRedis(tb testing.TB, dir string, args ...string) *exec.Cmd {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not found: run `make test` (it installs it) or `apt-get install redis-server`")
	}
	args = append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log")}, args...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitPing polls c until it answers PING, failing after 10 s with the
// last error.
func waitPing(tb testing.TB, c redis.UniversalClient, what string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not answering PING after 10s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
