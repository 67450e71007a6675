package connect_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
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

// A slot moved to another primary while a client keeps writing to it, by
// script and by plain command: the client follows ASK during the move and
// MOVED after it, retrying TRYAGAIN on the way, within its bound, and no
// write fails or is lost.
func TestClusterClientRidesASlotMigration(t *testing.T) {
	rc := testenv.StartRedisCluster(t)
	u, err := connect.Redis(load(t, map[string]string{"JOBALERT_REDIS_CLUSTER": strings.Join(rc.Addrs, ",")}))
	if err != nil {
		t.Fatalf("connect.Redis: got %v, want a client", err)
	}
	rdb := u.(*redis.ClusterClient)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()

	const tag = "{mig}"
	slot, err := rdb.ClusterKeySlot(ctx, tag+"n").Result()
	if err != nil {
		t.Fatal(err)
	}
	node, err := rdb.MasterForKey(ctx, tag+"n")
	if err != nil {
		t.Fatal(err)
	}
	from, to := node.Options().Addr, ""
	for _, p := range rc.Primaries {
		if p != from {
			to = p
			break
		}
	}
	// Keys already there, so that the move takes many batches.
	for i := range 300 {
		if err := rdb.Set(ctx, tag+"old:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	step := redis.NewScript(`redis.call('INCR', KEYS[1]); redis.call('RPUSH', KEYS[2], ARGV[1]); return 1`)
	var (
		writes   atomic.Int64
		failures = make(chan error, 100)
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := step.Run(ctx, rdb, []string{tag + "n", tag + "log"}, i).Err()
			if err == nil {
				err = rdb.Set(ctx, tag+"new:"+strconv.Itoa(i), i, 0).Err()
			}
			if err != nil {
				select {
				case failures <- fmt.Errorf("write %d: %w", i, err):
				default:
				}
				return
			}
			writes.Add(1)
		}
	}()
	testenv.Eventually(t, 10*time.Second, func() bool { return writes.Load() >= 50 }, "the writer never got going")
	before := writes.Load()
	moved := rc.MigrateSlot(t, int(slot), from, to, 10)
	during := writes.Load() - before
	testenv.Eventually(t, 10*time.Second, func() bool { return writes.Load() >= before+during+50 }, "writes stopped after the move")
	close(stop)
	<-done
	select {
	case err := <-failures:
		t.Fatalf("a write failed during the move: %v", err)
	default:
	}
	n := writes.Load()
	t.Logf("slot %d moved from %s to %s: %d keys in batches of 10, %d writes during the move, %d in all", slot, from, to, moved, during, n)
	if during == 0 {
		t.Errorf("no write ran during the move: the test did not test the move")
	}
	if got, err := rdb.Get(ctx, tag+"n").Int64(); err != nil || got != n {
		t.Errorf("counter: got %d, %v, want %d (one per write)", got, err, n)
	}
	if got, err := rdb.LLen(ctx, tag+"log").Result(); err != nil || got != n {
		t.Errorf("log: got %d entries, %v, want %d", got, err, n)
	}
	if got, err := rdb.Get(ctx, tag+"old:299").Int(); err != nil || got != 299 {
		t.Errorf("a key from before the move: got %d, %v, want 299", got, err)
	}
	// The reload a MOVED asks for runs in the background.
	testenv.Eventually(t, 5*time.Second, func() bool {
		node, err = rdb.MasterForKey(ctx, tag+"n")
		return err == nil && node.Options().Addr == to
	}, "the slot map names %v (%v) for slot %d, want %s", node, err, slot, to)
}
