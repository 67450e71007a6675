package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel/feed"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// BenchmarkFeedTap measures what the feed tap adds to recording a batch,
// against the store's Record alone in the same run (the baseline), on the
// test Redis: 32 popular events of 2,000 matches each (64,000 pairs)
// among 20,000 subscriptions, with no feed anywhere (most deployments)
// and with 1% of the subscriptions on the feed channel (their jobs
// appended to real feeds). Each iteration records new job ids.
//
//	./scripts/with-redis.sh go test -run '^$' -bench FeedTap -benchtime 20x ./cmd/jobalert/
//
// docs/benchmarks.md, "The feed tap".
func BenchmarkFeedTap(b *testing.B) {
	const (
		subs    = 20000
		events  = 32
		matches = 2000
	)
	rdb, prefix := testenv.Redis(b)
	st := store.New(rdb, store.Config{Prefix: prefix})
	fs := feed.NewStore(rdb, feed.Keys{Prefix: prefix}, 0, nil)
	// The keys stay: the test Redis of scripts/with-redis.sh is thrown
	// away after the run.
	ids := make([]string, subs)
	for i := range ids {
		ids[i] = fmt.Sprintf("sub_bench%07d", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	picks := make([][]string, events)
	for e := range picks {
		perm := rng.Perm(subs)[:matches]
		for _, i := range perm {
			picks[e] = append(picks[e], ids[i])
		}
	}
	run := 0
	batch := func() []jobevent.Matched {
		run++
		out := make([]jobevent.Matched, events)
		for e := range out {
			out[e] = jobevent.Matched{Event: jobevent.Event{Kind: jobevent.Created, Job: matcher.Job{
				ID: fmt.Sprintf("bench-%d-%d", run, e), Title: "Backend Engineer", Company: "Acme", VisaTypes: []string{"H-1B"},
				Salary: &matcher.Salary{Min: 120000, Max: 160000, Currency: "USD", Period: "year"}}},
				SubscriptionIDs: picks[e]}
		}
		return out
	}
	withFeeds := func(share int) *fakeMembers {
		m := &fakeMembers{ver: map[int]int64{}, subs: map[int][]string{}}
		for i, id := range ids {
			if share > 0 && i%share == 0 {
				s := st.ShardOf(id)
				m.subs[s] = append(m.subs[s], id)
				m.ver[s] = 1
			}
		}
		return m
	}
	cases := []struct {
		name string
		rec  func(b *testing.B) consumer.Recorder
	}{
		{"record_alone_baseline", func(*testing.B) consumer.Recorder { return st }},
		{"tap_no_feeds", func(b *testing.B) consumer.Recorder { return benchTap(b, st, fs, withFeeds(0)) }},
		{"tap_1pct_feeds", func(b *testing.B) consumer.Recorder { return benchTap(b, st, fs, withFeeds(100)) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rec := c.rec(b)
			ctx := context.Background()
			var spent time.Duration
			for b.Loop() {
				bt := batch()
				start := time.Now()
				if err := rec.Record(ctx, bt); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
			}
			b.ReportMetric(float64(b.N*events*matches)/spent.Seconds(), "pairs/s")
		})
	}
}

// benchTap is a loaded feed tap in front of st, its membership members
// (in memory: the benchmark times Record, not the polling).
func benchTap(b *testing.B, st *store.Redis, fs *feed.Store, members *fakeMembers) *feedTap {
	tap := newFeedTap(st, fs, shardedMembers{members, st}, testenv.Logger(b))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tap.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-tap.Loaded()
	return tap
}

// shardedMembers is fakeMembers with the store's shard function.
type shardedMembers struct {
	*fakeMembers
	st *store.Redis
}

func (m shardedMembers) ShardOf(id string) int { return m.st.ShardOf(id) }
