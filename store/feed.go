package store

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/matcher"
)

// FilterIndex is what the change feed keeps current: the matcher's index.
type FilterIndex interface {
	Add(id string, f matcher.Filter) error
	Remove(id string) bool
}

// batchIndex is an index that builds many filters at once faster than one
// at a time (matcher.Index).
type batchIndex interface {
	AddBatch(entries []matcher.Entry) []matcher.EntryError
}

// LoadFilters adds every active subscription's filter to ix (of this
// store's partition only, Config.Partition), reading each shard's filters
// hash in large HSCAN pages, and returns how many it added. An index with
// AddBatch gets them in batches of 50,000.
func (s *Redis) LoadFilters(ctx context.Context, ix FilterIndex, log *slog.Logger) (int, error) {
	n := 0
	bix, batched := ix.(batchIndex)
	var batch []matcher.Entry
	flush := func() {
		if !batched {
			return
		}
		for _, e := range bix.AddBatch(batch) {
			log.Error("stored filter rejected by the index", "subscription", e.ID, "err", e.Err)
			n--
		}
		batch = batch[:0]
	}
	for k := range s.cfg.Shards {
		if !s.ownsShard(k) {
			continue
		}
		if err := s.loadShard(ctx, k, ix, &n, &batch, batched, flush, log); err != nil {
			return n, err
		}
	}
	if batched && len(batch) > 0 {
		flush()
	}
	return n, nil
}

// loadShard is LoadFilters for one shard.
func (s *Redis) loadShard(ctx context.Context, k int, ix FilterIndex, n *int, batch *[]matcher.Entry, batched bool, flush func(), log *slog.Logger) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.k.shard(k).filters(), cursor, "", 10000).Result()
		if err != nil {
			return wrap("load filters", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if !batched {
				if s.apply(ix, kv[i], kv[i+1], log) {
					*n++
				}
				continue
			}
			var f matcher.Filter
			if err := json.Unmarshal([]byte(kv[i+1]), &f); err != nil {
				log.Error("stored filter unreadable; subscription left out of the index", "subscription", kv[i], "err", err)
				continue
			}
			*batch = append(*batch, matcher.Entry{ID: kv[i], Filter: f})
			*n++
		}
		if batched && len(*batch) >= 50000 {
			flush()
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func (s *Redis) apply(ix FilterIndex, id, raw string, log *slog.Logger) bool {
	var f matcher.Filter
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		log.Error("stored filter unreadable; subscription left out of the index", "subscription", id, "err", err)
		return false
	}
	if err := ix.Add(id, f); err != nil {
		log.Error("stored filter rejected by the index", "subscription", id, "err", err)
		return false
	}
	return true
}

// Backoff of FollowFilters after a Redis error: the first retry waits
// feedRetryMin, each further one twice as long, up to feedRetryMax.
const (
	feedRetryMin = 500 * time.Millisecond
	feedRetryMax = 15 * time.Second
)

// FollowFilters keeps a filter index current until ctx is done. It loads
// every active filter into a fresh index from newIndex and hands it to
// swap with the count loaded, then follows the change feed into that
// index, so that a subscription confirmed, edited, paused or deleted on
// any replica takes effect here within a second.
//
// When the feed cannot be followed (this replica fell so far behind that
// it was trimmed past its position), it loads a fresh index the same way
// and swaps it in, so that filters deleted meanwhile are gone; the index
// in use keeps matching until then. Redis errors never end it: a failed
// read, re-read of changed filters or reload is retried, from where it
// was, with backoff (0.5 s doubling to 15 s). It returns when ctx is done.
func (s *Redis) FollowFilters(ctx context.Context, newIndex func() FilterIndex, swap func(ix FilterIndex, n int), log *slog.Logger) {
	retry := backoff{min: feedRetryMin, max: feedRetryMax}
	for ctx.Err() == nil {
		// Take the feed position before loading, so no change made during
		// the load is missed (applying one twice is harmless).
		last, err := s.feedTail(ctx)
		var ix FilterIndex
		n := 0
		if err == nil {
			ix = newIndex()
			n, err = s.LoadFilters(ctx, ix, log)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("loading the filter index failed; retrying", "err", err, "in", retry.next())
			}
			retry.wait(ctx)
			continue
		}
		retry.reset()
		swap(ix, n)
		if err := s.follow(ctx, ix, last, log); errors.Is(err, errFeedGap) {
			log.Warn("change feed trimmed past this replica's position; reloading every filter into a fresh index")
		}
	}
}

var errFeedGap = errors.New("change feed gap")

// backoff is a doubling delay for retries.
type backoff struct{ min, max, cur time.Duration }

// next returns the delay the next wait will use.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		return b.min
	}
	return b.cur
}

// wait sleeps the next delay (less if ctx ends) and doubles it.
func (b *backoff) wait(ctx context.Context) {
	d := b.next()
	b.cur = min(2*d, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (b *backoff) reset() { b.cur = 0 }

func (s *Redis) feedTail(ctx context.Context) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.k.feed(), "+", "-", 1).Result()
	if err != nil {
		return "", wrap("feed tail", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// follow applies the feed's entries after last to ix until ctx is done
// (nil) or the entries after last were trimmed away (errFeedGap). A
// failed step is retried with backoff; the position moves past entries
// only once they are applied.
func (s *Redis) follow(ctx context.Context, ix FilterIndex, last string, log *slog.Logger) error {
	retry := backoff{min: feedRetryMin, max: feedRetryMax}
	failed := func(what string, err error) {
		if ctx.Err() == nil {
			log.Warn(what+" failed; retrying", "err", err, "in", retry.next())
		}
		retry.wait(ctx)
	}
	for {
		streams, err := s.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{s.k.feed(), last}, Count: 1000, Block: 500 * time.Millisecond,
		}).Result()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			failed("change feed read", err)
			continue
		}
	read:
		for _, st := range streams {
			if len(st.Messages) == 0 {
				continue
			}
			if last != "0-0" {
				gap, err := s.gapBefore(ctx, last)
				if err != nil {
					failed("change feed position check", err)
					break read
				}
				if gap {
					return errFeedGap
				}
			}
			ids := make([]string, 0, len(st.Messages))
			for _, m := range st.Messages {
				if id, ok := m.Values["id"].(string); ok {
					ids = append(ids, id)
				}
			}
			if err := s.refresh(ctx, ix, ids, log); err != nil {
				failed("re-reading changed filters", err)
				break read
			}
			last = st.Messages[len(st.Messages)-1].ID
			retry.reset()
		}
	}
}

// gapBefore reports whether entries after last were trimmed away.
func (s *Redis) gapBefore(ctx context.Context, last string) (bool, error) {
	first, err := s.rdb.XRangeN(ctx, s.k.feed(), "-", "+", 1).Result()
	if err != nil || len(first) == 0 {
		return false, err
	}
	// Our position is an entry we read. If the oldest entry left is newer,
	// ours was trimmed, and so may be entries we have not seen.
	return streamIDLess(last, first[0].ID), nil
}

// streamIDLess compares two stream ids ("ms-seq").
func streamIDLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	an, _ := strconv.ParseUint(am, 10, 64)
	bn, _ := strconv.ParseUint(bm, 10, 64)
	if an != bn {
		return an < bn
	}
	asq, _ := strconv.ParseUint(as, 10, 64)
	bsq, _ := strconv.ParseUint(bs, 10, 64)
	return asq < bsq
}

// refresh re-reads the filters of the changed subscriptions in one round
// trip and applies each: present means add or replace, absent means remove.
func (s *Redis) refresh(ctx context.Context, ix FilterIndex, ids []string, log *slog.Logger) error {
	if len(ids) == 0 {
		return nil
	}
	// Only this partition's subscriptions, grouped by shard.
	byShard := map[int][]string{}
	for _, id := range ids {
		if k := s.k.shardOf(id); s.ownsShard(k) {
			byShard[k] = append(byShard[k], id)
		}
	}
	pipe := s.rdb.Pipeline()
	cmds := map[int]*redis.SliceCmd{}
	for k, ids := range byShard {
		cmds[k] = pipe.HMGet(ctx, s.k.shard(k).filters(), ids...)
	}
	if len(cmds) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap("read changed filters", err)
	}
	for k, c := range cmds {
		for i, v := range c.Val() {
			if raw, ok := v.(string); ok {
				s.apply(ix, byShard[k][i], raw, log)
			} else {
				ix.Remove(byShard[k][i])
			}
		}
	}
	return nil
}
