package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/store"
)

// With WaitReplicas, each record step and claim waits for a replica: on a
// server without one the step fails (nothing acked); on the test cluster
// (a replica per primary) it goes through, and auto finds 1.
func TestRecordAndClaimWaitForReplicas(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	auto := store.New(rdb, store.Config{Prefix: prefix, WaitReplicas: -1})
	n, err := auto.ResolveWaitReplicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cluster := testenv.RedisClusterAddrs() != nil
	if want := map[bool]int{false: 0, true: 1}[cluster]; n != want {
		t.Fatalf("auto: got %d replicas to wait for, want %d (cluster %v)", n, want, cluster)
	}

	s := store.New(rdb, store.Config{Prefix: prefix, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	sub := mustSub(t, s, "instant")
	_, err = s.RecordResults(ctx, []jobevent.Matched{ev(jobevent.Created, "j1", sub.ID)}, t0)
	if !cluster {
		if err == nil || !strings.Contains(err.Error(), "WAIT: 0 of 1 replicas") {
			t.Fatalf("record without a replica: got %v, want a WAIT shortfall", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("record on the cluster: %v", err)
	}
	due, err := s.DueAt(ctx, t0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: got %v %v, want one", due, err)
	}
	res, err := s.ClaimDue(ctx, []store.Claim{{Due: due[0], DigestID: store.DigestID(sub.ID, due[0].At), LeaseUntil: t0.Add(2 * time.Hour)}}, t0.Add(time.Hour))
	if err != nil || res[0] != store.Claimed {
		t.Fatalf("claim on the cluster: got %v %v, want Claimed", res, err)
	}
}
