package connect_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/testenv"
)

// keysOn returns n keys whose slots the primary at addr serves.
func keysOn(t *testing.T, rdb *redis.ClusterClient, addr string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for i := 0; len(keys) < n && i < 10000; i++ {
		k := "failover:" + strconv.Itoa(i)
		node, err := rdb.MasterForKey(ctx, k)
		if err != nil {
			t.Fatalf("MasterForKey: %v", err)
		}
		if node.Options().Addr == addr {
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		t.Fatalf("found %d keys on %s, want %d", len(keys), addr, n)
	}
	return keys
}

// A primary killed with -9: once its replica has promoted itself, writes
// to its slots go through again within seconds, through the client of
// connect.Redis; what was written and replicated before (WAIT) is still
// there. go-redis's defaults would keep the dead primary in the slot map
// until its 60 s reload (logged for comparison, not asserted).
func TestClusterClientFollowsAFailoverWithinSeconds(t *testing.T) {
	rc := testenv.StartRedisCluster(t)
	cfg := load(t, map[string]string{"JOBALERT_REDIS_CLUSTER": strings.Join(rc.Addrs, ",")})
	if got, want := connect.RedisTarget(cfg), "redis Cluster at "+strings.Join(rc.Addrs, ","); got != want {
		t.Errorf("RedisTarget: got %q, want %q", got, want)
	}
	u, err := connect.Redis(cfg)
	if err != nil {
		t.Fatalf("connect.Redis: got %v, want a client", err)
	}
	rdb, ok := u.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("connect.Redis with JOBALERT_REDIS_CLUSTER: got a %T, want a *redis.ClusterClient", u)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	plain := testenv.ClusterClient(t, rc.Addrs) // go-redis's defaults

	ctx := context.Background()
	primary, replica := rc.Primaries[0], rc.Replicas[0]
	keys := keysOn(t, rdb, primary, 20)
	for _, k := range keys {
		if err := rdb.Set(ctx, k, "before", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	if err := plain.Get(ctx, keys[0]).Err(); err != nil {
		t.Fatalf("GET %s with the default client: %v", keys[0], err)
	}
	node, err := rdb.MasterForKey(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if n, err := node.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: got %d, %v, want 1 replica", n, err)
	}

	rc.Kill(t, primary)
	rc.WaitPromoted(t, replica, 30*time.Second, primary)
	promoted := time.Now()

	// A bounded poll: the first write that goes through, then every key.
	var tries int
	testenv.Eventually(t, 15*time.Second, func() bool {
		tries++
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return rdb.Set(ctx, keys[0], "after", 0).Err() == nil
	}, "no write to the dead primary's slots went through after its replica %s was promoted", replica)
	t.Logf("first write after the promotion went through %s after it (%d tries)", time.Since(promoted).Round(time.Millisecond), tries)
	for _, k := range keys[1:] {
		if got, err := rdb.Get(ctx, k).Result(); err != nil || got != "before" {
			t.Errorf("GET %s after the failover: got %q, %v, want %q (written and replicated before)", k, got, err, "before")
		}
		if err := rdb.Set(ctx, k, "after", 0).Err(); err != nil {
			t.Errorf("SET %s after the failover: got %v, want nil", k, err)
		}
	}
	node, err = rdb.MasterForKey(ctx, keys[0])
	if err != nil || node.Options().Addr != replica {
		t.Errorf("the slot map names %v (%v) for %s, want the promoted replica %s", node, err, keys[0], replica)
	}

	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	t.Logf("for comparison, go-redis's defaults %s after the promotion: SET %s: %v",
		time.Since(promoted).Round(time.Millisecond), keys[0], plain.Set(cctx, keys[0], "plain", 0).Err())
}
