package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
)

// With Redis behind Sentinel, the primary killed with SIGKILL: the
// Sentinels promote the replica, the service follows it, and a job
// published right after the kill still arrives as an email.
func TestAlertsKeepArrivingAfterASentinelFailover(t *testing.T) {
	set := testenv.Sentinel(t, nil)
	s := startStack(t, stackOpts{env: map[string]string{
		// The host is not used with Sentinel; the password is the servers'.
		"JOBALERT_REDIS_URL":               "redis://:" + set.Password + "@" + set.Master + "/0",
		"JOBALERT_REDIS_SENTINEL_MASTER":   set.Master,
		"JOBALERT_REDIS_SENTINELS":         strings.Join(set.Sentinels, ","),
		"JOBALERT_REDIS_SENTINEL_PASSWORD": set.Password,
	}})
	ctx := context.Background()
	if got, want := serverPort(t, s), set.Primary; !strings.HasSuffix(want, ":"+got) {
		t.Fatalf("service's Redis: got the server on port %s, want the primary %s", got, want)
	}
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.publishJob("jobs.created", job("before-failover", "Backend Engineer"))
	s.waitMail("ada@example.com", 1)
	set.WaitReplicated(t)

	start := time.Now()
	set.KillPrimary(t)
	s.publishJob("jobs.created", job("after-failover", "Backend Developer"))
	set.WaitFailover(t, 30*time.Second)
	t.Logf("Sentinels failed over %v after the kill", time.Since(start).Round(100*time.Millisecond))
	testenv.Eventually(t, 30*time.Second, func() bool { return s.mailsWith("ada@example.com", "after-failover") == 1 },
		"the job published after the kill not delivered")
	t.Logf("the job arrived %v after the kill", time.Since(start).Round(100*time.Millisecond))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.app.ready(ctx) == nil }, "service not ready after the failover")
	if got, want := serverPort(t, s), set.Replica; !strings.HasSuffix(want, ":"+got) {
		t.Errorf("service's Redis after the failover: got the server on port %s, want the promoted replica %s", got, want)
	}
}

// serverPort is the port of the Redis server the service's client reaches.
func serverPort(t *testing.T, s *stack) string {
	t.Helper()
	info, err := s.app.rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "tcp_port:"); ok {
			return v
		}
	}
	t.Fatalf("INFO server: no tcp_port in\n%s", info)
	return ""
}
