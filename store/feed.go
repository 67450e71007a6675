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

// LoadFilters adds every active subscription's filter to ix, reading the
// filters hash in large HSCAN pages, and returns how many it added. An
// index with AddBatch gets them in batches of 50,000.
func (s *Redis) LoadFilters(ctx context.Context, ix FilterIndex, log *slog.Logger) (int, error) {
	var cursor uint64
	n := 0
	bix, batched := ix.(batchIndex)
	var batch []matcher.Entry
	flush := func() {
		for _, e := range bix.AddBatch(batch) {
			log.Error("stored filter rejected by the index", "subscription", e.ID, "err", e.Err)
			n--
		}
		batch = batch[:0]
	}
	for {
		kv, next, err := s.rdb.HScan(ctx, s.k.filters(), cursor, "", 10000).Result()
		if err != nil {
			return n, wrap("load filters", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if !batched {
				if s.apply(ix, kv[i], kv[i+1], log) {
					n++
				}
				continue
			}
			var f matcher.Filter
			if err := json.Unmarshal([]byte(kv[i+1]), &f); err != nil {
				log.Error("stored filter unreadable; subscription left out of the index", "subscription", kv[i], "err", err)
				continue
			}
			batch = append(batch, matcher.Entry{ID: kv[i], Filter: f})
			n++
		}
		if batched && (len(batch) >= 50000 || next == 0) {
			flush()
		}
		if next == 0 {
			return n, nil
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

// FollowFilters loads every active filter into ix, calls loaded, then
// follows the change feed until ctx is done, so that a subscription
// confirmed, edited, paused or deleted on any replica takes effect here
// within a second. If this replica falls so far behind that the feed was
// trimmed past its position, it reloads everything.
func (s *Redis) FollowFilters(ctx context.Context, ix FilterIndex, loaded func(n int), log *slog.Logger) error {
	for {
		// Take the feed position before loading, so no change made during
		// the load is missed (applying one twice is harmless).
		last, err := s.feedTail(ctx)
		if err != nil {
			return err
		}
		n, err := s.LoadFilters(ctx, ix, log)
		if err != nil {
			return err
		}
		if loaded != nil {
			loaded(n)
			loaded = nil
		}
		err = s.follow(ctx, ix, last, log)
		if errors.Is(err, errFeedGap) {
			log.Warn("change feed trimmed past this replica's position; reloading every filter")
			continue
		}
		return err
	}
}

var errFeedGap = errors.New("change feed gap")

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

func (s *Redis) follow(ctx context.Context, ix FilterIndex, last string, log *slog.Logger) error {
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
			log.Warn("change feed read failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		for _, st := range streams {
			if len(st.Messages) > 0 && last != "0-0" {
				if gap, err := s.gapBefore(ctx, last); err == nil && gap {
					return errFeedGap
				}
			}
			ids := make([]string, 0, len(st.Messages))
			for _, m := range st.Messages {
				if id, ok := m.Values["id"].(string); ok {
					ids = append(ids, id)
				}
				last = m.ID
			}
			if err := s.refresh(ctx, ix, ids, log); err != nil {
				log.Warn("change feed refresh failed; reloading", "err", err)
				return errFeedGap
			}
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
	vals, err := s.rdb.HMGet(ctx, s.k.filters(), ids...).Result()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if raw, ok := v.(string); ok {
			s.apply(ix, ids[i], raw, log)
		} else {
			ix.Remove(ids[i])
		}
	}
	return nil
}
