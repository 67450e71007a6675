package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// Two filter partitions on one stream (JOBALERT_PARTITION=0/2 and 1/2):
// each replica holds only its shards' filters, follows the stream on its
// own durable, and every (subscription, job) pair is mailed exactly once.
func TestTwoPartitionsDeliverEveryPairOnce(t *testing.T) {
	s := startStack(t, stackOpts{env: map[string]string{"JOBALERT_PARTITION": "0/2"}})
	env := map[string]string{}
	for k, v := range s.env {
		env[k] = v
	}
	env["JOBALERT_PARTITION"] = "1/2"
	env["JOBALERT_HTTP_ADDR"] = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cfg, err := config.Load(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	other, err := newApp(ctx, cfg, roles{consumer: true}, testenv.Logger(t), appDeps{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("partition 1: Run: %v", err)
		}
	})

	f := matcher.Filter{Keywords: "backend engineer"}
	var subs []*store.Subscription
	for i := range 20 {
		sub := &store.Subscription{Email: fmt.Sprintf("p%d@example.com", i), Filter: f, Frequency: "instant", Timezone: "UTC", Status: store.StatusActive}
		if err := s.app.store.CreateSubscription(ctx, sub, time.Now()); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	inIndex := func(a *app, id string) bool { return containsID(a.index.MatchIDs(probeJob(f)), id) }
	testenv.Eventually(t, 10*time.Second, func() bool {
		return other.ready(ctx) == nil && len(s.app.index.MatchIDs(probeJob(f)))+len(other.index.MatchIDs(probeJob(f))) == len(subs)
	}, "the partitions' indexes do not hold the 20 filters between them")
	for _, sub := range subs {
		mine, theirs := s.app, other
		if store.ShardOf(sub.ID, 0)%2 == 1 {
			mine, theirs = other, s.app
		}
		if !inIndex(mine, sub.ID) || inIndex(theirs, sub.ID) {
			t.Fatalf("%s (shard %d): in its partition's index %v, in the other's %v; want only its own", sub.ID, store.ShardOf(sub.ID, 0), inIndex(mine, sub.ID), inIndex(theirs, sub.ID))
		}
	}

	jobs := []matcher.Job{job("part-1", "Backend Engineer"), job("part-2", "Senior Backend Engineer"), job("part-3", "Backend Engineer II")}
	for _, j := range jobs {
		s.publishJob("jobs.created", j)
	}
	for _, sub := range subs {
		testenv.Eventually(t, 15*time.Second, func() bool {
			for _, j := range jobs {
				if s.mailsWith(sub.Email, j.URL) == 0 {
					return false
				}
			}
			return true
		}, "%s did not get every job", sub.Email)
	}
	// Every event acked on both durables, and no pair twice.
	for _, durable := range []string{"jobalert-p0", "jobalert-p1"} {
		testenv.Eventually(t, 10*time.Second, func() bool {
			c, err := s.js.Consumer(ctx, "JOBS", durable)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(len(jobs))
		}, "durable %s did not ack every event", durable)
	}
	for _, sub := range subs {
		for _, j := range jobs {
			if n := s.mailsWith(sub.Email, j.URL); n != 1 {
				t.Errorf("%s got %s %d times, want once", sub.Email, j.ID, n)
			}
		}
	}
}
