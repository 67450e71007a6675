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
// against the store's Record alone (the baseline), on the test Redis: 32
// popular events of 2,000 matches each (64,000 pairs) among 20,000
// subscriptions, with no feed anywhere (most deployments) and with 1% of
// the subscriptions on the feed channel (their jobs appended to real
// feeds). Each iteration records new job ids.
//
// Redis's time for Record drifts by tens of percent within a run (its
// disk, the keys already there), more than the tap adds, so every
// iteration records one batch through the store alone and one through
// the tap, each first in turn, and the two rates come from the same
// moments: baseline_pairs/s
// and tap_pairs/s, and tap_cost_% what the tap adds to the baseline's
// time. The tap's own work is also timed in front of a recorder that does
// nothing (tap_alone).
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
		for _, i := range rng.Perm(subs)[:matches] {
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
				s := i % store.DefaultShards
				m.subs[s] = append(m.subs[s], id)
				m.ver[s] = 1
			}
		}
		return m
	}
	timed := func(rec consumer.Recorder) time.Duration {
		bt := batch()
		start := time.Now()
		if err := rec.Record(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	pairs := float64(events * matches)
	for _, c := range []struct {
		name  string
		share int
	}{{"no_feeds", 0}, {"1pct_feeds", 100}} {
		b.Run(c.name, func(b *testing.B) {
			tap := benchTap(b, st, fs, withFeeds(c.share))
			var base, with time.Duration
			odd := false
			for b.Loop() {
				// In turn first and second, so neither gains from the
				// other's writes.
				if odd {
					with += timed(tap)
					base += timed(st)
				} else {
					base += timed(st)
					with += timed(tap)
				}
				odd = !odd
			}
			n := float64(b.N)
			b.ReportMetric(n*pairs/base.Seconds(), "baseline_pairs/s")
			b.ReportMetric(n*pairs/with.Seconds(), "tap_pairs/s")
			b.ReportMetric(100*(with.Seconds()-base.Seconds())/base.Seconds(), "tap_cost_%")
		})
		b.Run(c.name+"/tap_alone", func(b *testing.B) {
			tap := benchTap(b, nopRecorder{}, fs, withFeeds(c.share))
			var spent time.Duration
			for b.Loop() {
				spent += timed(tap)
			}
			b.ReportMetric(float64(b.N)*pairs/spent.Seconds(), "pairs/s")
			b.ReportMetric(float64(spent.Nanoseconds())/(float64(b.N)*pairs), "ns/pair")
		})
	}
}

// benchTap is a loaded feed tap in front of next, its membership members
// (in memory: the benchmark times Record, not the polling).
func benchTap(b *testing.B, next consumer.Recorder, fs *feed.Store, members *fakeMembers) *feedTap {
	tap := newFeedTap(next, fs, members, testenv.Logger(b))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tap.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-tap.Loaded()
	return tap
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, []jobevent.Matched) error { return nil }
