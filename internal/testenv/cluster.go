package testenv

import (
	"context"
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

// RedisClusterEnv names the variable through which
// scripts/with-redis-cluster.sh hands the tests its Redis Cluster: the seed
// addresses, host:port, comma-separated. When it is set, Redis and RedisEnv
// put every test on that cluster instead of a single server.
const RedisClusterEnv = "JOBALERT_TEST_REDIS_CLUSTER"

// RedisClusterAddrs returns the seed addresses of the test Redis Cluster,
// or nil when the tests run on a single server.
func RedisClusterAddrs() []string {
	v := os.Getenv(RedisClusterEnv)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// RedisEnv returns the variables that point a jobalert process at the test
// Redis: JOBALERT_REDIS_CLUSTER on the cluster of with-redis-cluster.sh,
// else JOBALERT_REDIS_URL.
func RedisEnv(tb testing.TB) map[string]string {
	tb.Helper()
	if addrs := RedisClusterAddrs(); addrs != nil {
		return map[string]string{"JOBALERT_REDIS_CLUSTER": strings.Join(addrs, ",")}
	}
	return map[string]string{"JOBALERT_REDIS_URL": RedisURL(tb)}
}

// ClusterClient returns a cluster client of addrs for tests, closed at
// cleanup. It reloads its slot map as the service's client does (see
// internal/connect) only in so far as go-redis does by itself: tests that
// kill nodes use connect's client.
func ClusterClient(tb testing.TB, addrs []string) *redis.ClusterClient {
	tb.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisCluster is a Redis Cluster of three primaries and three replicas,
// child processes of the test on free loopback ports, killed at cleanup:
// for tests that kill or move nodes, which must not disturb the tests of
// other packages sharing the cluster of with-redis-cluster.sh.
type RedisCluster struct {
	// Addrs are every node's address, the seeds.
	Addrs []string
	// Primaries and Replicas are the nodes' roles at the start;
	// Replicas[i] replicates Primaries[i].
	Primaries, Replicas []string

	procs map[string]*exec.Cmd
}

// StartRedisCluster starts a RedisCluster with cluster-node-timeout
// 2000 ms (a replica promotes itself about 2 to 4 s after its primary
// dies) and waits until every node reports cluster_state:ok and every
// replica is in sync. It skips the test when redis-server or redis-cli is
// not installed.
func StartRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Skip("redis-cli not found: run `make test` (it installs it) or `apt-get install redis-server`")
	}
	dir := tb.TempDir()
	tb.Cleanup(func() {
		if tb.Failed() {
			logTails(tb, dir)
		}
	})
	rc := &RedisCluster{procs: map[string]*exec.Cmd{}}
	for i := 0; i < 6; i++ {
		// A port FreePort found free may be taken before redis-server
		// binds it (by another test's server or an outgoing connection,
		// with several clusters starting at once): the node then exits
		// at once, and is started again on other ports.
		for try := 1; ; try++ {
			port, bus := FreePort(tb), FreePort(tb)
			d := filepath.Join(dir, fmt.Sprintf("node-%d-%d", i, try))
			if err := os.Mkdir(d, 0o755); err != nil {
				tb.Fatal(err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			cmd := startRedis(tb, d, "--port", strconv.Itoa(port), "--cluster-enabled", "yes",
				"--cluster-port", strconv.Itoa(bus), "--cluster-config-file", filepath.Join(d, "nodes.conf"),
				"--cluster-node-timeout", "2000", "--appendonly", "yes", "--repl-diskless-sync-delay", "0")
			if try < 5 && bindFailed(filepath.Join(d, "redis.log"), addr) {
				continue
			}
			rc.procs[addr] = cmd
			rc.Addrs = append(rc.Addrs, addr)
			break
		}
	}
	for _, a := range rc.Addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		waitPing(tb, c, "cluster node "+a)
		_ = c.Close()
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, rc.Addrs...),
		"--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(tb, 30*time.Second, "every node reporting cluster_state:ok and its replica in sync", func(ctx context.Context) error {
		rc.Primaries, rc.Replicas = nil, nil
		primaryOf := map[string]string{} // replica -> primary
		for _, a := range rc.Addrs {
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
			info, err := c.ClusterInfo(ctx).Result()
			repl, err2 := c.Info(ctx, "replication").Result()
			_ = c.Close()
			if err = firstErr(err, err2); err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_known_nodes:6"} {
				if !strings.Contains(info, want+"\r\n") {
					return fmt.Errorf("%s: no %s in CLUSTER INFO", a, want)
				}
			}
			if strings.Contains(repl, "role:master\r\n") {
				rc.Primaries = append(rc.Primaries, a)
				continue
			}
			if !strings.Contains(repl, "master_link_status:up\r\n") {
				return fmt.Errorf("%s: replica not in sync", a)
			}
			primaryOf[a] = infoField(repl, "master_host") + ":" + infoField(repl, "master_port")
		}
		if len(rc.Primaries) != 3 {
			return fmt.Errorf("%d primaries, want 3", len(rc.Primaries))
		}
		for _, p := range rc.Primaries {
			for r, of := range primaryOf {
				if of == p {
					rc.Replicas = append(rc.Replicas, r)
				}
			}
		}
		if len(rc.Replicas) != 3 {
			return fmt.Errorf("replicas %v of primaries %v, want one each", primaryOf, rc.Primaries)
		}
		return nil
	})
	return rc
}

// bindFailed waits until the node at addr answers PING or its log says
// it could not listen (a port taken meanwhile), for up to 10 s, and
// reports the latter.
func bindFailed(logFile, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(logFile); strings.Contains(string(b), "Address already in use") {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return false
		}
	}
	return false
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return v
		}
	}
	return ""
}

// Kill kills the node at addr with SIGKILL.
func (rc *RedisCluster) Kill(tb testing.TB, addr string) {
	tb.Helper()
	p := rc.procs[addr]
	if p == nil {
		tb.Fatalf("no cluster node at %s", addr)
	}
	if err := p.Process.Kill(); err != nil {
		tb.Fatalf("kill %s: %v", addr, err)
	}
}

// WaitPromoted waits until the node at replica calls itself a primary
// and every surviving node reports cluster_state:ok, for at most timeout.
func (rc *RedisCluster) WaitPromoted(tb testing.TB, replica string, timeout time.Duration, dead ...string) {
	tb.Helper()
	waitFor(tb, timeout, replica+" promoted and the cluster ok", func(ctx context.Context) error {
		for _, a := range rc.Addrs {
			if contains(dead, a) {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
			info, err := c.ClusterInfo(ctx).Result()
			var repl string
			if err == nil && a == replica {
				repl, err = c.Info(ctx, "replication").Result()
			}
			_ = c.Close()
			switch {
			case err != nil:
				return fmt.Errorf("%s: %w", a, err)
			case !strings.Contains(info, "cluster_state:ok\r\n"):
				return fmt.Errorf("%s: cluster not ok", a)
			case a == replica && !strings.Contains(repl, "role:master\r\n"):
				return fmt.Errorf("%s: not promoted yet", a)
			}
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// MigrateSlot moves slot from the primary at from to the primary at to
// while clients keep using it, as `redis-cli --cluster reshard` does:
// IMPORTING on to, MIGRATING on from, the keys moved batch by batch
// (batch keys a MIGRATE, so that clients meet ASK and TRYAGAIN on the
// way), then SETSLOT NODE on every node. It returns how many keys moved.
func (rc *RedisCluster) MigrateSlot(tb testing.TB, slot int, from, to string, batch int) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		tb.Cleanup(func() { _ = c.Close() })
		return c
	}
	src, dst := node(from), node(to)
	srcID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		tb.Fatalf("CLUSTER MYID %s: %v", from, err)
	}
	dstID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		tb.Fatalf("CLUSTER MYID %s: %v", to, err)
	}
	must := func(what string, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("migrate slot %d from %s to %s: %s: %v", slot, from, to, what, err)
		}
	}
	must("SETSLOT IMPORTING", dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	must("SETSLOT MIGRATING", src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	host, port, _ := net.SplitHostPort(to)
	moved := 0
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, batch).Result()
		must("GETKEYSINSLOT", err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must("MIGRATE", src.Do(ctx, args...).Err())
		moved += len(keys)
	}
	// The new owner first, then the old one, then the others, as
	// redis-cli does.
	must("SETSLOT NODE on the target", dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	must("SETSLOT NODE on the source", src.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	for _, a := range rc.Primaries {
		if a != from && a != to {
			must("SETSLOT NODE on "+a, node(a).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
		}
	}
	return moved
}
