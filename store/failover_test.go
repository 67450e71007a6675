package store_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/store"
)

// A primary killed with -9 in the middle of a backlog, its replica
// promoted: with WaitReplicas auto (the default: 1 on a primary with a
// replica, 0 on the promoted one left alone) every Record call that
// returned is on the replica, the calls that failed are simply made again (as the consumer's
// redeliveries do), and in the end every subscription has every job once.
func TestAPrimaryKilledMidBacklogLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	if testenv.RedisClusterAddrs() != nil {
		t.Skip("runs in the single-server pass: it starts a cluster of its own to kill a node of")
	}
	ctx := context.Background()
	rc := testenv.StartRedisCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs, DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: 1})
	t.Cleanup(func() { _ = cc.Close() })
	prefix := "fo" + testenv.RandomHex(4) + ":"
	s := store.New(cc, store.Config{Prefix: prefix, Shards: 8, PendingLimit: 1000, WaitReplicas: -1, WaitTimeout: time.Second})

	var subs []string
	for range 12 {
		subs = append(subs, mustSub(t, s, "instant").ID)
	}
	victim, err := cc.MasterForKey(ctx, store.KeysOf(prefix, 8, subs[0]).Sub)
	if err != nil {
		t.Fatal(err)
	}
	addr := victim.Options().Addr
	replica := rc.Replicas[slices.Index(rc.Primaries, addr)]

	const jobs = 30
	failed := 0
	for i := range jobs {
		if i == jobs/2 {
			rc.Kill(t, addr)
		}
		ev := ev(jobevent.Created, fmt.Sprintf("j%d", i), subs...)
		ev.Event.StreamSeq = uint64(i + 1)
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := s.RecordResults(ctx, []jobevent.Matched{ev}, t0)
			if err == nil {
				break
			}
			failed++
			if time.Now().After(deadline) {
				t.Fatalf("job %d not recorded 30 s after the kill: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond) // the redelivery's delay
		}
	}
	rc.WaitPromoted(t, replica, 30*time.Second, addr)
	if failed == 0 {
		t.Fatalf("no Record call failed: the kill of %s did not happen mid-backlog", addr)
	}
	for _, sub := range subs {
		items, err := cc.LRange(ctx, store.KeysOf(prefix, 8, sub).Pending, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		seqs := make([]int64, len(items))
		for i, v := range items {
			if seqs[i], err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatalf("%s: pending item %q: %v", sub, v, err)
			}
		}
		recs, err := s.Jobs(ctx, sub, seqs)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, r := range recs {
			var id string
			if _, err := fmt.Sscanf(string(r.Data), `{"id":%q`, &id); err != nil {
				t.Fatalf("%s: job data %q: %v", sub, r.Data, err)
			}
			seen[id]++
		}
		for i := range jobs {
			if n := seen[fmt.Sprintf("j%d", i)]; n != 1 {
				t.Errorf("%s has job j%d %d times, want once (pending %v)", sub, i, n, items)
			}
		}
	}
}
