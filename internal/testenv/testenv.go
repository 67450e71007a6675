// Package testenv starts the real servers the tests run against: an embedded
// NATS JetStream server and a redis-server (the one `make test` started, or a
// child process of the test). Every helper registers its own cleanup.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// RedisURLEnv names the variable through which `make test` hands the tests
// its throw-away redis-server.
const RedisURLEnv = "JOBALERT_TEST_REDIS_URL"

// RedisURL returns the URL of a Redis server for tests: the one in
// JOBALERT_TEST_REDIS_URL, or else a redis-server child started for this
// test. The test is skipped, saying what to install, when neither exists.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv(RedisURLEnv); u != "" {
		return u
	}
	port := FreePort(tb)
	startRedis(tb, tb.TempDir(), "--port", strconv.Itoa(port))
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	WaitRedis(tb, url)
	return url
}

// WaitRedis polls url until Redis answers PING, failing after 10 s.
func WaitRedis(tb testing.TB, url string) {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse redis url: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	waitPing(tb, c, "redis at "+url)
}

// Redis returns a client for the test Redis and a key prefix unique to this
// test, so tests sharing one server never see each other's keys. Under
// scripts/with-redis-cluster.sh (JOBALERT_TEST_REDIS_CLUSTER) it is a
// cluster client of that cluster, so the same tests run in both modes.
func Redis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	if addrs := RedisClusterAddrs(); addrs != nil {
		c := ClusterClient(tb, addrs)
		waitPing(tb, c, "redis cluster at "+strings.Join(addrs, ","))
		return c, "t" + RandomHex(6) + ":"
	}
	opt, err := redis.ParseURL(RedisURL(tb))
	if err != nil {
		tb.Fatalf("parse redis url: %v", err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c, "t" + RandomHex(6) + ":"
}

// NATS starts an embedded NATS server with JetStream, storing under a
// temporary directory, and returns it; it is shut down at cleanup.
func NATS(tb testing.TB) *server.Server {
	tb.Helper()
	return NATSAt(tb, filepath.Join(tb.TempDir(), "js"), -1)
}

// NATSAt starts an embedded JetStream server on port (-1 picks a free one)
// with its store in dir, so a test can stop it and start another on the
// same directory.
func NATSAt(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	return NATSWith(tb, &server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
}

// NATSWith starts an embedded NATS server with opts (authentication, TLS,
// operator mode) and shuts it down at cleanup.
func NATSWith(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("new nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready in 10s")
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// NATSConn connects to s, with opts, and closes the connection at cleanup.
func NATSConn(tb testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		tb.Fatalf("connect nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// FreePort returns a TCP port on loopback that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Logger returns a logger that writes warnings and errors to the test's
// log, so they show with the test that caused them.
func Logger(tb testing.TB) *slog.Logger {
	tb.Helper()
	return slog.New(slog.NewTextHandler(logWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Eventually polls cond every 10 ms until it returns true, failing the test
// with msg after timeout. It is the bounded wait tests use instead of sleeps.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// KeysNaming scans every key under prefix and returns a description of each
// whose name, or any field, member or value, contains one of needles.
func KeysNaming(t testing.TB, rdb redis.UniversalClient, prefix string, needles ...string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	var mu sync.Mutex // ForEachMaster scans the primaries at once
	check := func(key, where, text string) {
		for _, n := range needles {
			if strings.Contains(text, n) {
				found = append(found, fmt.Sprintf("%s (%s names %q)", key, where, n))
			}
		}
	}
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("KeysNaming: cannot scan a %T", rdb)
	}
	if err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	for _, k := range keys {
		check(k, "key name", k)
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var vals []string
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Result()
			vals = []string{v}
		case "hash":
			m, _ := rdb.HGetAll(ctx, k).Result()
			for f, v := range m {
				vals = append(vals, f, v)
			}
		case "zset":
			vals, _ = rdb.ZRange(ctx, k, 0, -1).Result()
		case "set":
			vals, _ = rdb.SMembers(ctx, k).Result()
		case "list":
			vals, _ = rdb.LRange(ctx, k, 0, -1).Result()
		case "none": // expired meanwhile
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		for _, v := range vals {
			check(k, typ+" content", v)
		}
	}
	return found
}

// SyncBuffer collects what a logger writes while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// DialFrom opens a TCP connection to addr from the loopback address from
// (127.0.0.x), closed when the test ends: a client of its own address for
// the per-address connection bounds.
func DialFrom(tb testing.TB, addr, from string) net.Conn {
	tb.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// HashTag returns the Redis Cluster hash tag of key (what is between its
// first '{' and the next '}'), or "" when it has none: tests check that
// the keys a script touches share one slot.
func HashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return ""
	}
	return key[i+1 : i+1+j]
}
