package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// fakeMembers is a feed membership in memory, by shard.
type fakeMembers struct {
	mu      sync.Mutex
	ver     map[int]int64
	subs    map[int][]string
	reloads int
	fail    error
}

func (f *fakeMembers) FeedVersions(context.Context) (map[int]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	return maps(f.ver), nil
}

func (f *fakeMembers) FeedSubscribers(_ context.Context, shard int) ([]string, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return slices.Clone(f.subs[shard]), f.ver[shard], nil
}

func maps(m map[int]int64) map[int]int64 {
	out := map[int]int64{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

type fakeFeed struct {
	mu   sync.Mutex
	got  map[string][][]channel.Job
	fail error
}

func (f *fakeFeed) Append(_ context.Context, sub string, jobs []channel.Job, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got[sub] = append(f.got[sub], jobs)
	return nil
}

func (f *fakeFeed) AppendAll(ctx context.Context, jobs map[string][]channel.Job, now time.Time) error {
	for sub, js := range jobs {
		if err := f.Append(ctx, sub, js, now); err != nil {
			return err
		}
	}
	return nil
}

type recorded struct{ n int }

func (r *recorded) Record(context.Context, []jobevent.Matched) error { r.n++; return nil }

func matched(kind jobevent.Kind, id, title string, subs ...string) jobevent.Matched {
	return jobevent.Matched{Event: jobevent.Event{Kind: kind, Job: matcher.Job{ID: id, Title: title, Company: "Acme",
		Salary: &matcher.Salary{Min: 100000, Max: 150000, Currency: "USD", Period: "year"}}}, SubscriptionIDs: subs}
}

// Matches reach the feeds of the subscriptions that have one, newest
// first, each job once with its newest data; closed jobs and
// subscriptions without a feed append nothing; a failed append fails the
// batch (it is redelivered).
func TestFeedTap(t *testing.T) {
	// Shard c has never had a feed subscriber (no version): it is not read.
	members := &fakeMembers{ver: map[int]int64{'a': 1, 'b': 1, 'c': 0}, subs: map[int][]string{'a': {"a-feed"}, 'b': {}}}
	ff := &fakeFeed{got: map[string][][]channel.Job{}}
	next := &recorded{}
	tap := newFeedTap(next, ff, members, testenv.Logger(t))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = tap.Run(ctx) }()
	defer func() { cancel(); <-done }()

	batch := []jobevent.Matched{
		matched(jobevent.Created, "j1", "Backend Engineer", "a-feed", "b-nofeed"),
		matched(jobevent.Created, "j2", "Go Developer", "a-feed"),
		matched(jobevent.Updated, "j1", "Backend Engineer II", "a-feed"),
		matched(jobevent.Closed, "j3", "", "a-feed"),
		matched(jobevent.Created, "j4", "Nobody's", "b-nofeed"),
	}
	if err := tap.Record(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if next.n != 1 {
		t.Fatalf("the store recorded %d batches, want 1", next.n)
	}
	got := ff.got["a-feed"]
	if len(got) != 1 || len(ff.got) != 1 {
		t.Fatalf("appends: got %v, want one, to a-feed", ff.got)
	}
	var ids, titles []string
	for _, j := range got[0] {
		ids, titles = append(ids, j.ID), append(titles, j.Title)
	}
	if !slices.Equal(ids, []string{"j1", "j2"}) || titles[0] != "Backend Engineer II" {
		t.Errorf("got %v %v, want [j1 j2] newest first with j1's newest title", ids, titles)
	}
	if s := got[0][0].Salary; s == "" {
		t.Errorf("the job's salary is empty; want it formatted as in emails")
	}

	// b-nofeed gains the feed: its shard's version moves, and within a
	// poll its matches are appended.
	members.mu.Lock()
	members.subs['b'] = []string{"b-nofeed"}
	members.ver['b'] = 2
	members.mu.Unlock()
	testenv.Eventually(t, 3*time.Second, func() bool { return tap.has("b-nofeed") }, "b-nofeed not a feed subscriber after its version moved")
	members.mu.Lock()
	if members.reloads != 3 {
		t.Errorf("shard reloads: got %d, want 3 (a and b at first, b again), not one per poll nor one of c", members.reloads)
	}
	members.mu.Unlock()

	ff.fail = errors.New("redis down")
	if err := tap.Record(t.Context(), batch[:1]); err == nil {
		t.Errorf("a failed append: got nil, want the batch to fail")
	}
}

// A tap whose Run ended before the membership was ever read fails a
// batch at once (it is redelivered) instead of holding it until the
// caller's context ends: at shutdown that context is the whole grace.
func TestFeedTapStoppedBeforeLoadFailsTheBatch(t *testing.T) {
	members := &fakeMembers{fail: errors.New("redis down")}
	tap := newFeedTap(&recorded{}, &fakeFeed{got: map[string][][]channel.Job{}}, members, testenv.Logger(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := tap.Run(ctx); err != nil {
		t.Fatalf("Run: got %v, want nil once its context is done", err)
	}
	select {
	case <-tap.Loaded():
		t.Fatal("Loaded: closed, want open: the membership was never read")
	default:
	}
	rctx, stop := context.WithTimeout(t.Context(), time.Minute)
	defer stop()
	err := tap.Record(rctx, []jobevent.Matched{matched(jobevent.Created, "j1", "Backend Engineer", "a-feed")})
	if err == nil || rctx.Err() != nil {
		t.Errorf("Record after Run stopped unloaded: got %v (context %v), want the tap's error before the context ends", err, rctx.Err())
	}
}
