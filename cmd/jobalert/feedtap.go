package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/notifier"
)

// feedPoll is how often the feed tap reads the feed sets' versions: a
// subscription that gains the feed channel has its matches appended from
// about a second later on (and the digest engine appends a digest's jobs
// too, so none is missing by the time it is alerted).
const feedPoll = time.Second

// feedAppender is what the tap appends with (*feed.Store): every feed a
// batch touches in a few pipelined round trips.
type feedAppender interface {
	AppendAll(ctx context.Context, jobs map[string][]channel.Job, now time.Time) error
}

// feedMembership is what the tap reads of the store.
type feedMembership interface {
	FeedVersions(ctx context.Context) (map[int]int64, error)
	FeedSubscribers(ctx context.Context, shard int) ([]string, int64, error)
}

// feedTap stands between the consumer and the store: once a batch is
// recorded, each matched job is appended to the private feed of every
// matched subscription that has the feed channel, within seconds of the
// match, whatever the subscription's frequency. Which subscriptions have a
// feed is read per shard and kept in memory as one set, so a match of one
// without a feed costs a map lookup.
type feedTap struct {
	next    consumer.Recorder
	feed    feedAppender
	members feedMembership
	now     func() time.Time
	log     *slog.Logger

	loaded  chan struct{} // closed after the first full load
	once    sync.Once
	stopped chan struct{} // closed when Run returns

	mu     sync.RWMutex
	shards map[int]*feedShard
	all    map[string]struct{} // the union of shards' ids, rebuilt when one changes
}

type feedShard struct {
	version int64
	ids     map[string]struct{}
}

func newFeedTap(next consumer.Recorder, f feedAppender, m feedMembership, log *slog.Logger) *feedTap {
	return &feedTap{next: next, feed: f, members: m, now: time.Now, log: log.With("component", "feed-tap"),
		loaded: make(chan struct{}), stopped: make(chan struct{}), shards: map[int]*feedShard{}}
}

// Loaded is closed once the membership has been read in full: the
// consumer starts after it (as after the filter index), so no batch waits
// for it and no match is missed at start.
func (t *feedTap) Loaded() <-chan struct{} { return t.loaded }

// Run keeps the membership current until ctx is done: every feedPoll it
// reads the shards' versions (one round trip) and reloads the shards whose
// version moved. Redis errors are logged and retried.
func (t *feedTap) Run(ctx context.Context) error {
	defer close(t.stopped)
	tick := time.NewTicker(feedPoll)
	defer tick.Stop()
	failing := false
	for {
		if err := t.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				t.log.Warn("reading the feed subscriptions failed; retrying", "err", redact.Error(err))
			}
			failing = true
		} else {
			if failing {
				t.log.Info("feed subscriptions read again")
			}
			failing = false
			t.once.Do(func() { close(t.loaded) })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *feedTap) refresh(ctx context.Context) error {
	vers, err := t.members.FeedVersions(ctx)
	if err != nil {
		return err
	}
	changed := false
	defer func() {
		if changed {
			t.rebuild()
		}
	}()
	for shard, v := range vers {
		t.mu.RLock()
		cur, ok := t.shards[shard]
		t.mu.RUnlock()
		if ok && cur.version == v {
			continue
		}
		if v == 0 {
			// The version moves with every change of the set, so a shard
			// without one has never had a feed subscriber: no read. Most
			// deployments load in one round trip.
			t.mu.Lock()
			t.shards[shard] = &feedShard{ids: map[string]struct{}{}}
			t.mu.Unlock()
			changed = changed || (ok && len(cur.ids) > 0)
			continue
		}
		ids, v, err := t.members.FeedSubscribers(ctx, shard)
		if err != nil {
			return err
		}
		s := &feedShard{version: v, ids: make(map[string]struct{}, len(ids))}
		for _, id := range ids {
			s.ids[id] = struct{}{}
		}
		t.mu.Lock()
		t.shards[shard] = s
		t.mu.Unlock()
		changed = true
	}
	return nil
}

// rebuild makes the set Record looks ids up in from the shards' sets:
// one map lookup per match, not a shard hash and two lookups. Feed
// channels change rarely; a rebuild is a copy of the feed subscribers.
func (t *feedTap) rebuild() {
	t.mu.RLock()
	n := 0
	for _, s := range t.shards {
		n += len(s.ids)
	}
	all := make(map[string]struct{}, n)
	for _, s := range t.shards {
		for id := range s.ids {
			all[id] = struct{}{}
		}
	}
	t.mu.RUnlock()
	t.mu.Lock()
	t.all = all
	t.mu.Unlock()
}

// feedSet returns the current set of feed subscribers. A rebuild
// replaces the map and never changes one, so the caller reads it without
// the lock.
func (t *feedTap) feedSet() map[string]struct{} {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.all
}

func (t *feedTap) has(id string) bool {
	_, ok := t.feedSet()[id]
	return ok
}

// Record records the batch and appends its matches to the feeds. Which
// matches go to which feed is worked out while the store records (it
// needs only memory); the appends are written once the batch is
// recorded, so a batch that fails is not in any feed before it is
// redelivered. An append that fails fails the batch: it is redelivered,
// and both Record and Append are idempotent. Before the membership is
// first loaded it waits for it, so no match is missed at start, but not
// past Run's end: a tap stopped before its first load fails the batch at
// once, which is then redelivered, rather than holding it until the
// shutdown's grace runs out. (The consumer starts after the first load,
// so this is a safeguard.)
func (t *feedTap) Record(ctx context.Context, batch []jobevent.Matched) error {
	select {
	case <-t.loaded:
	case <-t.stopped:
		select {
		case <-t.loaded:
		default:
			return errors.New("feed: the feed tap stopped before the feed subscriptions were loaded")
		}
	case <-ctx.Done():
		return fmt.Errorf("feed: the feed subscriptions are not loaded yet: %w", ctx.Err())
	}
	all := t.feedSet()
	if len(all) == 0 {
		// Without a feed anywhere (most deployments) no match is looked up.
		return t.next.Record(ctx, batch)
	}
	type plan struct {
		per   map[string][]channel.Job
		panic any
	}
	planned := make(chan plan, 1)
	go func() {
		// A panic here is raised again in Record's goroutine below, where
		// the consumer recovers it as a poison batch (it would end the
		// process in this one).
		defer func() {
			if v := recover(); v != nil {
				planned <- plan{panic: v}
			}
		}()
		planned <- plan{per: feedJobs(batch, all)}
	}()
	err := t.next.Record(ctx, batch)
	p := <-planned
	if p.panic != nil {
		panic(p.panic)
	}
	if err != nil || len(p.per) == 0 {
		return err
	}
	per := p.per
	return t.feed.AppendAll(ctx, per, t.now())
}

// feedJobs returns, per subscription in feeds, its matched jobs in batch,
// newest first (a batch is in stream order, oldest first), each job once
// with its newest data; closed jobs are left out.
func feedJobs(batch []jobevent.Matched, feeds map[string]struct{}) map[string][]channel.Job {
	per := map[string][]channel.Job{}
	seen := map[string]map[string]bool{}
	for i := len(batch) - 1; i >= 0; i-- {
		m := &batch[i]
		if m.Event.Kind == jobevent.Closed || len(m.SubscriptionIDs) == 0 {
			continue
		}
		var job *channel.Job
		for _, id := range m.SubscriptionIDs {
			if _, ok := feeds[id]; !ok {
				continue
			}
			if seen[id][m.Event.Job.ID] {
				continue
			}
			if seen[id] == nil {
				seen[id] = map[string]bool{}
			}
			seen[id][m.Event.Job.ID] = true
			if job == nil {
				j := channel.FromMatcher(&m.Event.Job, notifier.FormatSalary(m.Event.Job.Salary))
				job = &j
			}
			per[id] = append(per[id], *job)
		}
	}
	return per
}
