package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/schedule"
)

// importChunk is how many subscriptions one ImportSubscriptions pipeline
// carries: large enough to amortise the round trip, small enough that a
// pipeline stays a few MB.
const importChunk = 1000

// ImportSubscriptions writes many subscriptions at once, for benchmarks
// and bulk imports into a deployment that is not serving yet. It stores
// the same keys as CreateSubscription (the subscription hash, the address
// set, the filters hash field for an active one, and the schedule entry of
// a daily or weekly one), pipelined in chunks of 1,000 subscriptions, but
// without CreateSubscription's WATCH and existence check and without
// change-feed entries: an existing subscription with the same id is
// overwritten, and replicas already running do not see the imported
// filters until they restart (which reloads every filter). Empty IDs get
// NewID, empty statuses pending, zero creation times now.
//
// A chunk is not atomic: on error, earlier chunks and part of the failing
// one may be written. Importing the same subscriptions again is harmless.
func (s *Redis) ImportSubscriptions(ctx context.Context, subs []*Subscription, now time.Time) error {
	for start := 0; start < len(subs); start += importChunk {
		if err := s.importChunk(ctx, subs[start:min(start+importChunk, len(subs))], now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Redis) importChunk(ctx context.Context, subs []*Subscription, now time.Time) error {
	pipe := s.rdb.Pipeline()
	filters := map[int][]any{}
	due := map[int][]redis.Z{}
	for _, sub := range subs {
		sub.fillNew(now)
		if sub.Status == StatusActive && sub.ConfirmedAt.IsZero() {
			sub.ConfirmedAt = now.UTC()
		}
		fields, _, err := sub.fields() // a new subscription: nothing to delete
		if err != nil {
			return wrap("import subscription "+sub.ID, err)
		}
		pipe.HSet(ctx, s.k.sub(sub.ID), fields)
		pipe.SAdd(ctx, s.k.email(EmailHash(sub.Email)), sub.ID)
		if sub.Status != StatusActive {
			continue
		}
		k := s.k.shardOf(sub.ID)
		filters[k] = append(filters[k], sub.ID, fields["filter"])
		if sub.Has(ChannelFeed) {
			pipe.SAdd(ctx, s.k.shard(k).feedSubs(), sub.ID)
			pipe.Incr(ctx, s.k.shard(k).feedVer())
		}
		if sub.Frequency != schedule.Instant {
			due[k] = append(due[k], redis.Z{Score: float64(ms(sub.Schedule().First(now))), Member: sub.ID})
		}
	}
	for k, f := range filters {
		pipe.HSet(ctx, s.k.shard(k).filters(), f...)
	}
	for k, d := range due {
		pipe.ZAdd(ctx, s.k.shard(k).due(), d...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap(fmt.Sprintf("import %d subscriptions", len(subs)), err)
	}
	return nil
}
