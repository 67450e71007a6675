package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MigrateCounts is what a migration found and what the sharded layout
// holds at its end.
type MigrateCounts struct {
	// ToMove is how many old subscriptions, jobs, digests and rate
	// counters this run found to move.
	ToMove int64
	// In the sharded layout at the end.
	Subscriptions, PendingItems, Due, Digests, Jobs int64
}

// migrateChunk is how many old keys one pipeline moves (a variable for
// the tests, which stop a migration part-way).
var migrateChunk = 500

// Migrate moves a keyspace of the unsharded layout (docs/redis.md before
// sharding: P sub:<id>, P pend:<id>, P due, P filters, P jobseq, P jid:,
// P job:<seq>, P outbox, P digest:, P rate:) to the sharded one, in place,
// with every jobalert process stopped. It marks the meta hash as
// migrating first (serve refuses to start meanwhile), copies each old
// key to its new place and then deletes it, so it is idempotent and
// resumable: killed part-way, a rerun copies again what it had not
// deleted (each copy overwrites) and moves on. Job sequence numbers are
// kept (every shard's jobseq starts at the old one, and knows every live
// job), so each subscription's cov and pending items mean what they
// meant. Recording marks are dropped: no Record call runs. progress, if
// set, is told the total to move once, then called after each chunk with
// how many moved so far.
func (s *Redis) Migrate(ctx context.Context, progress func(total, done int64)) (MigrateCounts, error) {
	var c MigrateCounts
	if strings.ContainsAny(s.cfg.Prefix, "{}") {
		return c, fmt.Errorf("store: the key prefix %q must not contain { or }", s.cfg.Prefix)
	}
	meta, err := s.rdb.HGetAll(ctx, s.k.meta()).Result()
	if err != nil {
		return c, wrap("migrate: read the layout", err)
	}
	if n, ok := meta["shards"]; ok && n != strconv.Itoa(s.cfg.Shards) {
		return c, fmt.Errorf("store: migrate: the keyspace under prefix %q is (being) sharded into %s shards, not %d: set JOBALERT_REDIS_SHARDS=%s", s.cfg.Prefix, n, s.cfg.Shards, n)
	}
	if err := s.rdb.HSet(ctx, s.k.meta(), "shards", s.cfg.Shards, "layout", layoutMigrating).Err(); err != nil {
		return c, wrap("migrate: mark the layout", err)
	}
	old := oldKeys(s.cfg.Prefix)
	jobKeys, err := s.oldKeysMatching(ctx, old.p+"job:*")
	if err != nil {
		return c, err
	}
	subKeys, err := s.oldKeysMatching(ctx, old.p+"sub:*")
	if err != nil {
		return c, err
	}
	rateKeys, err := s.oldKeysMatching(ctx, old.p+"rate:*")
	if err != nil {
		return c, err
	}
	digests, err := s.rdb.ZRangeWithScores(ctx, old.outbox, 0, -1).Result()
	if err != nil {
		return c, wrap("migrate: read the outbox", err)
	}
	c.ToMove = int64(len(jobKeys) + len(subKeys) + len(rateKeys) + len(digests))
	var done int64
	step := func(n int) {
		done += int64(n)
		if progress != nil {
			progress(c.ToMove, done)
		}
	}
	step(0)

	// Every shard's sequence starts where the old one was.
	jobseq, err := s.rdb.Get(ctx, old.jobseq).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return c, wrap("migrate: read jobseq", err)
	}
	if jobseq > 0 {
		pipe := s.rdb.Pipeline()
		for k := range s.cfg.Shards {
			pipe.Set(ctx, s.k.shard(k).jobseq(), jobseq, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return c, wrap("migrate: jobseq", err)
		}
	}
	for _, chunk := range chunks(jobKeys) {
		if err := s.migrateJobs(ctx, old, chunk); err != nil {
			return c, err
		}
		step(len(chunk))
	}
	for _, chunk := range chunks(subKeys) {
		if err := s.migrateSubs(ctx, old, chunk); err != nil {
			return c, err
		}
		step(len(chunk))
	}
	for start := 0; start < len(digests); start += migrateChunk {
		chunk := digests[start:min(start+migrateChunk, len(digests))]
		if err := s.migrateDigests(ctx, old, chunk); err != nil {
			return c, err
		}
		step(len(chunk))
	}
	for _, chunk := range chunks(rateKeys) {
		if err := s.migrateRates(ctx, old, chunk); err != nil {
			return c, err
		}
		step(len(chunk))
	}
	// What is left of the old layout: its sequence, the recording marks
	// of calls that no longer run, and the index and schedule entries of
	// subscriptions that were gone already.
	pipe := s.rdb.Pipeline()
	for _, k := range []string{old.jobseq, old.recording, old.recuntil, old.filters, old.due, old.outbox} {
		pipe.Del(ctx, k) // one key a command: on a cluster they are in different slots
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return c, wrap("migrate: delete the old keys", err)
	}
	if err := s.rdb.HSet(ctx, s.k.meta(), "layout", Layout).Err(); err != nil {
		return c, wrap("migrate: mark the layout", err)
	}
	return s.countLayout(ctx, c)
}

func chunks(keys []string) [][]string {
	var out [][]string
	for start := 0; start < len(keys); start += migrateChunk {
		out = append(out, keys[start:min(start+migrateChunk, len(keys))])
	}
	return out
}

// oldKeysMatching lists the old layout's keys matching pattern (a prefix
// and a literal tail with one *): the new layout's keys never match,
// since a { follows the prefix in each.
func (s *Redis) oldKeysMatching(ctx context.Context, pattern string) ([]string, error) {
	var out []string
	err := s.scanKeys(ctx, escapeGlob(strings.TrimSuffix(pattern, "*"))+"*", func(keys []string) error {
		out = append(out, keys...)
		return nil
	})
	return out, wrap("migrate: scan "+pattern, err)
}

// migrateJobs moves job records: each job's record under its own tag
// (with the time it had left), and its sequence number in every shard.
func (s *Redis) migrateJobs(ctx context.Context, old oldLayout, keys []string) error {
	pipe := s.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		hs[i], ttls[i] = pipe.HGetAll(ctx, k), pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap("migrate: read jobs", err)
	}
	now := time.Now()
	pipe = s.rdb.Pipeline()
	var dels []string
	for i, k := range keys {
		h := hs[i].Val()
		seq := strings.TrimPrefix(k, old.p+"job:")
		id := h["id"]
		if id != "" {
			ttl := ttls[i].Val()
			if ttl <= 0 {
				ttl = s.cfg.JobTTL
			}
			fields := make([]any, 0, 2*len(h))
			for f, v := range h {
				fields = append(fields, f, v)
			}
			nk := s.k.job(id)
			pipe.HSet(ctx, nk, fields...)
			pipe.PExpire(ctx, nk, ttl)
			for sh := range s.cfg.Shards {
				t := s.k.shard(sh)
				pipe.HSet(ctx, t.jid(), id, seq)
				pipe.HSet(ctx, t.jobs(), seq, id)
				pipe.ZAdd(ctx, t.jobexp(), redis.Z{Score: float64(ms(now.Add(ttl))), Member: seq})
			}
			dels = append(dels, old.jid(id))
		}
		dels = append(dels, k)
	}
	return s.writeThenDelete(ctx, "jobs", pipe, func(p redis.Pipeliner) {
		for _, k := range dels {
			p.Del(ctx, k)
		}
	})
}

// migrateSubs moves subscriptions: the hash (with its expiry, for a
// pending one), the pending list, the index entry and the schedule.
func (s *Redis) migrateSubs(ctx context.Context, old oldLayout, keys []string) error {
	type row struct {
		id     string
		h      *redis.MapStringStringCmd
		ttl    *redis.DurationCmd
		items  *redis.StringSliceCmd
		filter *redis.StringCmd
		due    *redis.FloatCmd
	}
	rows := make([]row, 0, len(keys))
	pipe := s.rdb.Pipeline()
	for _, k := range keys {
		id := strings.TrimPrefix(k, old.p+"sub:")
		rows = append(rows, row{id, pipe.HGetAll(ctx, k), pipe.PTTL(ctx, k), pipe.LRange(ctx, old.pending(id), 0, -1),
			pipe.HGet(ctx, old.filters, id), pipe.ZScore(ctx, old.due, id)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return wrap("migrate: read subscriptions", err)
	}
	pipe = s.rdb.Pipeline()
	for _, r := range rows {
		t := s.k.of(r.id)
		if h := r.h.Val(); len(h) > 0 {
			fields := make([]any, 0, 2*len(h))
			for f, v := range h {
				fields = append(fields, f, v)
			}
			pipe.HSet(ctx, t.sub(r.id), fields...)
			if ttl := r.ttl.Val(); ttl > 0 {
				pipe.PExpire(ctx, t.sub(r.id), ttl)
			}
			pipe.Del(ctx, t.pending(r.id))
			if items := r.items.Val(); len(items) > 0 {
				pipe.RPush(ctx, t.pending(r.id), toAny(items)...)
			}
			if f, err := r.filter.Result(); err == nil {
				pipe.HSet(ctx, t.filters(), r.id, f)
			}
			if at, err := r.due.Result(); err == nil {
				pipe.ZAdd(ctx, t.due(), redis.Z{Score: at, Member: r.id})
			}
		}
	}
	return s.writeThenDelete(ctx, "subscriptions", pipe, func(p redis.Pipeliner) {
		for _, r := range rows {
			p.Del(ctx, old.sub(r.id))
			p.Del(ctx, old.pending(r.id))
			p.HDel(ctx, old.filters, r.id)
			p.ZRem(ctx, old.due, r.id)
		}
	})
}

// migrateDigests moves claimed digests into their shard's outbox, with
// the time each may next be attempted. A digest id made by the old
// fallback (a dot and the job sequence) gets a dash instead, so that the
// id names its shard.
func (s *Redis) migrateDigests(ctx context.Context, old oldLayout, entries []redis.Z) error {
	pipe := s.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(entries))
	for i, z := range entries {
		hs[i] = pipe.HGetAll(ctx, old.digest(z.Member.(string)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap("migrate: read digests", err)
	}
	pipe = s.rdb.Pipeline()
	for i, z := range entries {
		id := z.Member.(string)
		h := hs[i].Val()
		if sub := h["sub"]; sub != "" {
			nid := id
			if rest, ok := strings.CutPrefix(id, sub+"."); ok {
				nid = sub + "." + strings.ReplaceAll(rest, ".", "-")
			}
			fields := make([]any, 0, 2*len(h))
			for f, v := range h {
				fields = append(fields, f, v)
			}
			t := s.k.of(sub)
			pipe.HSet(ctx, t.digest(nid), fields...)
			pipe.ZAdd(ctx, t.outbox(), redis.Z{Score: z.Score, Member: nid})
		}
	}
	return s.writeThenDelete(ctx, "digests", pipe, func(p redis.Pipeliner) {
		for _, z := range entries {
			id := z.Member.(string)
			p.Del(ctx, old.digest(id))
			p.ZRem(ctx, old.outbox, id)
		}
	})
}

// migrateRates moves the rate limit counters under their tag, with the
// time their window has left.
func (s *Redis) migrateRates(ctx context.Context, old oldLayout, keys []string) error {
	pipe := s.rdb.Pipeline()
	vals := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		vals[i], ttls[i] = pipe.Get(ctx, k), pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return wrap("migrate: read rate limits", err)
	}
	pipe = s.rdb.Pipeline()
	for i, k := range keys {
		kind, v, ok := strings.Cut(strings.TrimPrefix(k, old.p+"rate:"), ":")
		if ttl := ttls[i].Val(); ok && vals[i].Err() == nil && ttl > 0 {
			pipe.Set(ctx, s.k.rate(kind, v), vals[i].Val(), ttl)
		}
	}
	return s.writeThenDelete(ctx, "rate limits", pipe, func(p redis.Pipeliner) {
		for _, k := range keys {
			p.Del(ctx, k)
		}
	})
}

// writeThenDelete sends a chunk's writes (pipe) and, only once every one
// of them has succeeded, the deletes of the old keys they copy: a write
// that fails (out of memory, a primary lost mid-chunk) must not take its
// old key with it, since a rerun starts from the old keys.
func (s *Redis) writeThenDelete(ctx context.Context, what string, pipe redis.Pipeliner, deletes func(redis.Pipeliner)) error {
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap("migrate: write "+what, err)
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		deletes(p)
		return nil
	})
	return wrap("migrate: delete the old "+what, err)
}

// countLayout counts what the sharded layout holds.
func (s *Redis) countLayout(ctx context.Context, c MigrateCounts) (MigrateCounts, error) {
	st, err := s.Stats(ctx)
	if err != nil {
		return c, err
	}
	c.Subscriptions, c.PendingItems, c.Due, c.Digests = int64(st.Subscriptions), st.PendingItems, st.Due, st.Outbox
	err = s.scanKeys(ctx, escapeGlob(s.k.p)+"{j*}job", func(keys []string) error {
		c.Jobs += int64(len(keys))
		return nil
	})
	return c, wrap("migrate: count jobs", err)
}
