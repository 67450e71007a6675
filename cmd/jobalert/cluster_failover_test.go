package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/webhook"
)

// The webhook queue on Redis Cluster survives its primary's kill -9: every
// delivery Enqueue returned for (each WAITed for a replica: the automatic
// JOBALERT_REDIS_WAIT_REPLICAS) is on the promoted replica and is
// delivered, once, through the client of connect.Redis; the promoted
// replica has no replica of its own, which the automatic setting notices.
func TestWebhookQueueSurvivesAPrimaryKill(t *testing.T) {
	rc := testenv.StartRedisCluster(t)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"JOBALERT_REDIS_CLUSTER": strings.Join(rc.Addrs, ",")}[k]
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := connect.Redis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rdb := u.(*redis.ClusterClient)
	t.Cleanup(func() { _ = rdb.Close() })

	var mu sync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	ctx := context.Background()
	prefix := "fo" + testenv.RandomHex(4) + ":"
	svc := webhook.New(rdb, prefix, webhook.Config{AllowPrivate: true, WaitReplicas: -1, PollInterval: 50 * time.Millisecond,
		PerEndpoint: 16, PerHost: 16, PerSubscription: 16}, testenv.Logger(t))
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetEndpoint(ctx, "sub1", hook.URL, secret); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		// Each is on a replica when Enqueue returns; so is the endpoint,
		// written before on the same primary.
		if err := svc.Enqueue(ctx, webhook.Delivery{ID: fmt.Sprintf("fo-%03d", i), SubscriptionID: "sub1"}); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	node, err := rdb.MasterForKey(ctx, prefix+"{wh}q")
	if err != nil {
		t.Fatal(err)
	}
	primary := node.Options().Addr
	i := slices.Index(rc.Primaries, primary)
	if i < 0 {
		t.Fatalf("the webhook keys are on %s, none of the primaries %v", primary, rc.Primaries)
	}
	rc.Kill(t, primary)
	rc.WaitPromoted(t, rc.Replicas[i], 30*time.Second, primary)

	// Nothing lost: every delivery is on the promoted replica.
	if bl, err := svc.Backlog(ctx); err != nil || bl.Queued != n {
		t.Fatalf("after the failover: got %+v, %v, want all %d deliveries queued", bl, err, n)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	testenv.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	}, "deliveries after the failover: want all %d", n)
	mu.Lock()
	defer mu.Unlock()
	for id, c := range got {
		if c != 1 {
			t.Errorf("%s: delivered %d times, want 1", id, c)
		}
	}
}
