package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Backlog is what waits in Redis to be sent, across every replica.
type Backlog struct {
	// Scheduled is the number of subscriptions with a digest scheduled:
	// daily and weekly ones always, instant ones while a window is open.
	Scheduled int64
	// Due is how many of them are due now and not yet claimed; OldestDue
	// is how late the most overdue one is (0 when none is due).
	Due       int64
	OldestDue time.Duration
	// Outbox is the number of claimed digests not yet sent: being sent
	// now, or waiting for a retry after a temporary failure.
	Outbox int64
	// PendingItems is the number of matched jobs waiting in the pending
	// lists of scheduled subscriptions: exact up to BacklogSample
	// scheduled subscriptions, past that estimated from a random sample of
	// them.
	PendingItems int64
	// Recording is the number of marks of jobs being recorded (docs/redis.md).
	Recording int64
}

// BacklogSample is how many scheduled subscriptions' pending lists Backlog
// reads at most.
const BacklogSample = 1000

// Backlog reads the backlog at now: a few commands and at most
// BacklogSample list lengths.
func (s *Redis) Backlog(ctx context.Context, now time.Time) (Backlog, error) {
	n := s.cfg.Shards
	sample := max(1, (BacklogSample+n-1)/n)
	type shardCmds struct {
		scheduled, due, outbox, recording *redis.IntCmd
		oldest                            *redis.ZSliceCmd
		sample                            *redis.StringSliceCmd
	}
	cmds := make([]shardCmds, n)
	pipe := s.rdb.Pipeline()
	upto := strconv.FormatInt(ms(now), 10)
	for k := range cmds {
		t := s.k.shard(k)
		cmds[k] = shardCmds{pipe.ZCard(ctx, t.due()), pipe.ZCount(ctx, t.due(), "-inf", upto), pipe.ZCard(ctx, t.outbox()),
			pipe.ZCard(ctx, t.recording()), pipe.ZRangeWithScores(ctx, t.due(), 0, 0), pipe.ZRandMember(ctx, t.due(), sample)}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Backlog{}, wrap("backlog", err)
	}
	var b Backlog
	var ids []string
	oldest := int64(-1)
	for _, c := range cmds {
		b.Scheduled += c.scheduled.Val()
		b.Outbox += c.outbox.Val()
		b.Recording += c.recording.Val()
		if d := c.due.Val(); d > 0 {
			b.Due += d
			if z := c.oldest.Val(); len(z) == 1 && (oldest < 0 || int64(z[0].Score) < oldest) {
				oldest = int64(z[0].Score)
			}
		}
		ids = append(ids, c.sample.Val()...)
	}
	if oldest >= 0 {
		b.OldestDue = max(0, now.Sub(time.UnixMilli(oldest)))
	}
	if len(ids) == 0 {
		return b, nil
	}
	pipe = s.rdb.Pipeline()
	lens := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		lens[i] = pipe.LLen(ctx, s.k.pending(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return Backlog{}, wrap("backlog", err)
	}
	var sum int64
	for _, l := range lens {
		sum += l.Val()
	}
	b.PendingItems = sum
	if int64(len(ids)) < b.Scheduled {
		b.PendingItems = int64(float64(sum) * float64(b.Scheduled) / float64(len(ids)))
	}
	return b, nil
}
