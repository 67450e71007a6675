package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelSet is a Redis primary, its replica and three Sentinels watching
// them, each a child process on a free loopback port, all killed at
// cleanup. The Sentinels mark the primary down after 2 s (down-after-
// milliseconds; 1 s made them fail over on their own when the machine was
// busy) and fail over.
type SentinelSet struct {
	Master    string   // the master name the Sentinels monitor
	Sentinels []string // their addresses
	// Password is the password of the Sentinels and of the Redis servers.
	Password string
	// Primary and Replica are the servers' addresses at the start.
	Primary, Replica string

	primary *exec.Cmd
	servers map[string]*exec.Cmd // by address
	clients map[string]*redis.SentinelClient
	tls     *tls.Config // of the test's own clients; nil without TLS
}

// Sentinel starts a SentinelSet and waits until the replica is in sync
// and every Sentinel knows the replica and the two other Sentinels, so
// that a failover can be voted. With certs, every server and Sentinel
// listens only with TLS (the server certificate of certs; clients, and
// the servers and Sentinels among themselves, show certificates from
// certs' CA). It skips the test when redis-server is not installed.
func Sentinel(tb testing.TB, certs *Certs) *SentinelSet {
	tb.Helper()
	dir := tb.TempDir()
	// Registered first, so it runs last, after the processes are killed.
	tb.Cleanup(func() {
		if tb.Failed() {
			logTails(tb, dir)
		}
	})
	s := &SentinelSet{Master: "jobalert", Password: "pw-" + RandomHex(6), clients: map[string]*redis.SentinelClient{}}
	pport, rport := FreePort(tb), FreePort(tb)
	s.Primary, s.Replica = "127.0.0.1:"+strconv.Itoa(pport), "127.0.0.1:"+strconv.Itoa(rport)
	// listen is how a server or Sentinel listens on port.
	listen := func(port int) []string { return []string{"--port", strconv.Itoa(port)} }
	if certs != nil {
		s.tls = certs.ClientTLS(tb)
		listen = func(port int) []string {
			return []string{"--port", "0", "--tls-port", strconv.Itoa(port),
				"--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey,
				"--tls-ca-cert-file", certs.CA, "--tls-auth-clients", "yes", "--tls-replication", "yes"}
		}
	}
	// No delay before the full sync a replica starts with (5 s by default).
	common := []string{"--requirepass", s.Password, "--masterauth", s.Password, "--repl-diskless-sync-delay", "0"}
	for _, d := range []string{"primary", "replica"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	s.servers = map[string]*exec.Cmd{
		s.Primary: startRedis(tb, filepath.Join(dir, "primary"), append(listen(pport), common...)...),
		s.Replica: startRedis(tb, filepath.Join(dir, "replica"), append(append(listen(rport),
			"--replicaof", "127.0.0.1", strconv.Itoa(pport)), common...)...),
	}
	// The Sentinels start once the replica is in sync: a Sentinel that
	// gets no answer within down-after-milliseconds of its start fails
	// over.
	waitFor(tb, 20*time.Second, "the replica in sync", func(ctx context.Context) error {
		return s.replicaOf(ctx, s.Replica, s.Primary)
	})

	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not found: run `make test` (it installs it) or `apt-get install redis-server`")
	}
	// Each Sentinel is told of the replica and of the two others (by the
	// ids they are given) instead of finding them through the primary's
	// hello messages, which takes about 10 s.
	ports, ids := make([]int, 3), make([]string, 3)
	for i := range ports {
		ports[i], ids[i] = FreePort(tb), RandomHex(20)
	}
	for i, port := range ports {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		// Sentinel rewrites its configuration file, so it must be its own.
		body := fmt.Sprintf(`bind 127.0.0.1
dir %s
logfile %s
sentinel myid %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[4]s 2000
sentinel failover-timeout %[4]s 5000
sentinel auth-pass %[4]s %[6]s
requirepass %[6]s
sentinel sentinel-pass %[6]s
sentinel known-replica %[4]s 127.0.0.1 %[7]d
`, dir, filepath.Join(dir, fmt.Sprintf("sentinel-%d.log", i)), ids[i], s.Master, pport, s.Password, rport)
		for j, other := range ports {
			if j != i {
				body += fmt.Sprintf("sentinel known-sentinel %s 127.0.0.1 %d %s\n", s.Master, other, ids[j])
			}
		}
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{conf, "--sentinel"}, listen(port)...)...)
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start redis-server --sentinel: %v", err)
		}
		tb.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.Sentinels = append(s.Sentinels, addr)
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: s.Password, MaxRetries: -1, TLSConfig: s.tls})
		tb.Cleanup(func() { _ = c.Close() })
		s.clients[addr] = c
	}

	// Should the Sentinels fail over anyway before the test starts, the
	// set is taken as they leave it: the primary is the one they agree on.
	waitFor(tb, 20*time.Second, "the Sentinels agreeing on a primary that has the other server in sync as its replica", func(ctx context.Context) error {
		var primary string
		for _, addr := range s.Sentinels {
			m, err := s.clients[addr].Master(ctx, s.Master).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", addr, err)
			}
			at := net.JoinHostPort(m["ip"], m["port"])
			switch {
			case m["flags"] != "master":
				return fmt.Errorf("sentinel %s: master %s has flags %s", addr, at, m["flags"])
			case m["num-slaves"] != "1" || m["num-other-sentinels"] != "2":
				return fmt.Errorf("sentinel %s knows %s replicas and %s other sentinels", addr, m["num-slaves"], m["num-other-sentinels"])
			case primary != "" && at != primary:
				return fmt.Errorf("sentinels name %s and %s", primary, at)
			}
			primary = at
		}
		if primary != s.Primary {
			s.Primary, s.Replica = s.Replica, s.Primary
		}
		if s.servers[s.Primary] == nil {
			return fmt.Errorf("sentinels name %s, neither server", primary)
		}
		return s.replicaOf(ctx, s.Replica, s.Primary)
	})
	s.primary = s.servers[s.Primary]
	return s
}

// replicaOf says why replica is not a replica of primary in sync, or nil.
func (s *SentinelSet) replicaOf(ctx context.Context, replica, primary string) error {
	c := redis.NewClient(&redis.Options{Addr: replica, Password: s.Password, TLSConfig: s.tls, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("%s: %w", replica, err)
	}
	_, port, _ := net.SplitHostPort(primary)
	for _, want := range []string{"role:slave", "master_port:" + port, "master_link_status:up"} {
		if !strings.Contains(info, want+"\r\n") {
			return fmt.Errorf("%s: no %s in INFO replication", replica, want)
		}
	}
	return nil
}

// WaitReplicated returns once the replica holds every write the primary
// took so far (a write of its own, then WAIT), failing after 10 s.
func (s *SentinelSet) WaitReplicated(tb testing.TB) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Primary, Password: s.Password, TLSConfig: s.tls})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "testenv:replicated", RandomHex(4), 0).Err(); err != nil {
		tb.Fatalf("write to the primary: %v", err)
	}
	if n, err := c.Do(ctx, "WAIT", 1, 9000).Int(); err != nil || n != 1 {
		tb.Fatalf("WAIT for the replica: got %d, %v; want 1", n, err)
	}
}

// KillPrimary kills the primary with SIGKILL.
func (s *SentinelSet) KillPrimary(tb testing.TB) {
	tb.Helper()
	if err := s.primary.Process.Kill(); err != nil {
		tb.Fatalf("kill the primary: %v", err)
	}
}

// WaitFailover waits until every Sentinel names the replica as the
// primary, for at most timeout.
func (s *SentinelSet) WaitFailover(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	waitFor(tb, timeout, "every Sentinel naming the replica "+s.Replica+" as the primary", func(ctx context.Context) error {
		for _, addr := range s.Sentinels {
			a, err := s.clients[addr].GetMasterAddrByName(ctx, s.Master).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", addr, err)
			}
			if got := net.JoinHostPort(a[0], a[1]); got != s.Replica {
				return fmt.Errorf("sentinel %s names %s", addr, got)
			}
		}
		return nil
	})
}

// waitFor polls check every 50 ms until it returns nil, failing the test
// with its last error after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, check func(context.Context) error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTails logs the last lines of every log file under dir, for a test
// that failed.
func logTails(tb testing.TB, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "*.log"))
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		tb.Logf("%s (last %d lines):\n%s", filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f),
			min(len(lines), 40), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}
