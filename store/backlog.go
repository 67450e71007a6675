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
	pipe := s.rdb.Pipeline()
	scheduled := pipe.ZCard(ctx, s.k.due())
	due := pipe.ZCount(ctx, s.k.due(), "-inf", strconv.FormatInt(ms(now), 10))
	oldest := pipe.ZRangeWithScores(ctx, s.k.due(), 0, 0)
	outbox := pipe.ZCard(ctx, s.k.outbox())
	recording := pipe.ZCard(ctx, s.k.p+"recording")
	sample := pipe.ZRandMember(ctx, s.k.due(), BacklogSample)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Backlog{}, wrap("backlog", err)
	}
	b := Backlog{Scheduled: scheduled.Val(), Due: due.Val(), Outbox: outbox.Val(), Recording: recording.Val()}
	if z := oldest.Val(); len(z) == 1 && b.Due > 0 {
		b.OldestDue = max(0, now.Sub(time.UnixMilli(int64(z[0].Score))))
	}
	ids := sample.Val()
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
