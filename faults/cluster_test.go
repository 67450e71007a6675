//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// Scenarios 8 to 10 run on a Redis Cluster of three primaries and three
// replicas (testenv.StartRedisCluster, cluster-node-timeout 2 s), every
// service in cluster mode (JOBALERT_REDIS_CLUSTER) with WAIT for one
// replica (JOBALERT_REDIS_WAIT_REPLICAS auto).

// Scenario 8: a primary is killed -9 mid-stream and its replica promotes
// itself: nothing acknowledged is lost (every record step and claim waited
// for the replica), and no digest goes out twice.
func TestScenario8ClusterPrimaryKilled(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 8)
	jobs := r.workload(500, 3000)
	r.startService("serve-8", nil)

	p := r.publishInBackground(jobEvents(jobs), 300)
	r.waitPublished(p, len(jobs)*2/5)
	victim, heir := r.cluster.Primaries[0], r.cluster.Replicas[0]
	held := r.shardsOn(victim)
	r.cluster.Kill(t, victim)
	killed := time.Now()
	r.logf("killed -9 primary %s (it held %d of %d shards) after %d events published (ack floor %d)",
		victim, len(held), store.DefaultShards, p.n.Load(), r.acked())
	if len(held) == 0 {
		t.Fatalf("primary %s held no shard: the kill tests nothing", victim)
	}
	r.cluster.WaitPromoted(t, heir, 30*time.Second, victim)
	r.logf("replica %s promoted %.1fs after the kill", heir, time.Since(killed).Seconds())
	<-p.done
	r.logf("%d events published", len(jobs))
	res, _ := r.waitRecovered(killed, 4*time.Minute, 2*time.Second)
	// No SMTP fault here: the after-DATA window cannot open, and a
	// failed Redis write after the 250 is retried (no window 2).
	r.check(res, allow{afterData: true})
}

// Scenario 9: slots holding some shards' keys are moved to another
// primary with `redis-cli --cluster reshard` mid-stream: the services
// follow MOVED and ASK, nothing is lost or doubled.
func TestScenario9ClusterReshard(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 9)
	jobs := r.workload(500, 3000)
	svc := r.startService("serve-9", nil)

	from, to := r.cluster.Primaries[0], r.cluster.Primaries[1]
	// redis-cli moves the source's lowest slots first: enough of them to
	// take the first 6 shards' slots on it.
	slots := r.shardSlots(from)
	if len(slots) < 6 {
		t.Fatalf("primary %s holds %d shards' slots, want at least 6", from, len(slots))
	}
	first := r.firstSlot(from)
	n := slots[5] - first + 1
	moved := r.shardsIn(first, slots[5])

	p := r.publishInBackground(jobEvents(jobs), 300)
	r.waitPublished(p, len(jobs)*3/10)
	r.logf("resharding %d slots (%d..%d, shards %v) from %s to %s after %d events published",
		n, first, slots[5], moved, from, to, p.n.Load())
	began := time.Now()
	out, err := exec.Command("redis-cli", "--cluster", "reshard", from,
		"--cluster-from", r.nodeID(from), "--cluster-to", r.nodeID(to),
		"--cluster-slots", strconv.Itoa(n), "--cluster-yes").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, lastLines(string(out), 20))
	}
	took := time.Since(began)
	r.logf("reshard done in %.1fs, %d events published by then", took.Seconds(), p.n.Load())
	for _, k := range moved {
		if got := r.shardsOn(to); !slices.Contains(got, k) {
			t.Errorf("shard %d not on %s after the reshard: got shards %v there", k, to, got)
		}
	}
	<-p.done
	r.logf("%d events published", len(jobs))
	res := r.waitDelivered(4*time.Minute, 2*time.Second)
	// MOVED and ASK are followed by the client; a record call that still
	// failed (TRYAGAIN past its retries) is redelivered, which is allowed.
	line := fmt.Sprintf("scenario=9 reshard=%.1fs slots=%d shards_moved=%d record_failures=%d",
		took.Seconds(), n, len(moved), len(svc.logLines(`msg="record failed`)))
	fmt.Println(line)
	r.logf("%s", line)
	r.check(res, allow{})
}

// Scenario 10: two filter partitions (JOBALERT_PARTITION=0/2 and 1/2), each
// on its own durable consumer, each killed -9 once (part-1 mid-backlog,
// then part-0 holding claimed digests) and restarted under its instance
// name: the dead processes' claims are taken within 15 s, and every pair
// is delivered once (less window 2 of each kill), within 30 s of the last
// kill.
func TestScenario10ClusterPartitionsKilled(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 10)
	r.durables = []string{"jobalert-p0", "jobalert-p1"}
	jobs := r.workload(400, 2000) // sized as scenario 1's
	r.publish(jobEvents(jobs), 0)
	r.logf("backlog of %d events published", len(jobs))

	part := func(k int) map[string]string {
		return map[string]string{"JOBALERT_PARTITION": fmt.Sprintf("%d/2", k), "JOBALERT_INSTANCE": fmt.Sprintf("part-%d", k)}
	}
	svcs := []*service{r.spawn("part-0", part(0)), r.spawn("part-1", part(1))}
	for _, s := range svcs {
		s.waitReady()
	}
	// Each partition reads the whole stream on its own durable, at its
	// own pace. part-1 is killed once its ack floor passes a quarter of
	// the backlog (mid-backlog: events in flight, record marks), part-0
	// then once it also holds claimed digests (the notifier's side); both
	// are restarted.
	var killed time.Time
	dead := make([][]string, len(svcs))
	at := len(jobs) / 4
	for _, k := range []int{1, 0} {
		d, name := r.durables[k], fmt.Sprintf("part-%d", k)
		ready := func() bool { return r.ackedBy(d) >= at }
		if k == 1 {
			testenv.Eventually(t, 2*time.Minute, ready, "%s: ack floor did not reach %d (at %d)", d, at, r.ackedBy(d))
		} else {
			r.waitHolding(name, ready, fmt.Sprintf("%s at ack floor %d", d, at))
		}
		svcs[k].kill9()
		killed = time.Now()
		dead[k] = r.killedOwners(name)
		floor := r.ackedBy(d)
		r.logf("killed -9 %s at its ack floor %d of %d; %d emails so far", name, floor, len(jobs), r.sink.Stats().Messages)
		if k == 1 && floor >= len(jobs) {
			t.Errorf("part-1 killed at ack floor %d: got the end of its backlog, want mid-backlog", floor)
		}
	}
	for k := range svcs {
		svcs[k] = r.startService(fmt.Sprintf("part-%d-restarted", k), part(k))
	}
	for k := range svcs {
		r.waitTakenOver(fmt.Sprintf("part-%d", k), dead[k], killed)
	}
	res, _ := r.waitRecovered(killed, 4*time.Minute, 2*time.Second)
	r.check(res, allow{resentDigests: 8})
}

// ---------------------------------------------------------------------------
// where the shards are

// shardSlots returns the sorted hash slots of the shards whose slot node
// addr serves.
func (r *rig) shardSlots(addr string) []int {
	r.t.Helper()
	var out []int
	for _, k := range r.shardsOn(addr) {
		out = append(out, r.slotOf(k))
	}
	slices.Sort(out)
	return out
}

// shardsIn returns the shards whose slot is in [lo, hi].
func (r *rig) shardsIn(lo, hi int) []int {
	r.t.Helper()
	var out []int
	for k := range store.DefaultShards {
		if s := r.slotOf(k); s >= lo && s <= hi {
			out = append(out, k)
		}
	}
	return out
}

func (r *rig) slotOf(shard int) int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := r.rdb.ClusterKeySlot(ctx, store.ShardKeysOf(r.prefix, store.DefaultShards, shard).Due).Result()
	if err != nil {
		r.t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	return int(s)
}

// shardsOn returns the shards whose slot node addr serves, by its own
// CLUSTER SHARDS.
func (r *rig) shardsOn(addr string) []int {
	r.t.Helper()
	ranges := r.slotRanges(addr)
	var out []int
	for k := range store.DefaultShards {
		s := r.slotOf(k)
		for _, rg := range ranges {
			if s >= rg[0] && s <= rg[1] {
				out = append(out, k)
			}
		}
	}
	return out
}

// firstSlot returns the lowest slot node addr serves.
func (r *rig) firstSlot(addr string) int {
	r.t.Helper()
	first := -1
	for _, rg := range r.slotRanges(addr) {
		if first < 0 || rg[0] < first {
			first = rg[0]
		}
	}
	return first
}

// slotRanges returns the slot ranges primary addr serves.
func (r *rig) slotRanges(addr string) [][2]int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		r.t.Fatalf("CLUSTER SHARDS on %s: %v", addr, err)
	}
	var out [][2]int
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role == "master" && net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10)) == addr {
				for _, rg := range sh.Slots {
					out = append(out, [2]int{int(rg.Start), int(rg.End)})
				}
			}
		}
	}
	return out
}

// nodeID returns the cluster node id of the node at addr.
func (r *rig) nodeID(addr string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		r.t.Fatalf("CLUSTER MYID on %s: %v", addr, err)
	}
	return id
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
