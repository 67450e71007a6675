package store

import (
	"context"
	"time"

	"github.com/jobalert/jobalert/jobevent"

	"github.com/redis/go-redis/v9"
)

// Test-only accessors, so that tests need not build key names by hand.

// PendingItems returns a subscription's pending list as stored (oldest
// first).
func (s *Redis) PendingItems(ctx context.Context, subID string) ([]string, error) {
	return s.rdb.LRange(ctx, s.k.pending(subID), 0, -1).Result()
}

// DroppedCount returns a subscription's count of matches trimmed from its
// pending list.
func (s *Redis) DroppedCount(ctx context.Context, subID string) (int, error) {
	return s.rdb.HGet(ctx, s.k.sub(subID), "dropped").Int()
}

// ClientForTest and PrefixForTest let fault tests break the store's keys on
// purpose (a trimmed feed, an unreadable hash); nothing else may reach
// under the store's API.
func (s *Redis) ClientForTest() redis.UniversalClient { return s.rdb }

// PrefixForTest returns the key prefix.
func (s *Redis) PrefixForTest() string { return s.cfg.Prefix }

// FiltersKeyForTest returns the filters hash of a subscription's shard.
func (s *Redis) FiltersKeyForTest(subID string) string { return s.k.of(subID).filters() }

// stepJobs runs a Record call's steps 0 and 1 only, as a recorder that
// dies or stalls before pushing would.
func (s *Redis) stepJobs(ctx context.Context, batch []jobevent.Matched, now time.Time, token string) (*recording, []RecordResult, error) {
	placeholder := make([]int64, 2*len(batch))
	for i := range batch {
		placeholder[2*i], placeholder[2*i+1] = int64(i+1), 1
	}
	r := s.newRecording(batch, groupBySubscription(batch, placeholder))
	if err := s.recordJobRecords(ctx, r, now); err != nil {
		return nil, nil, err
	}
	out, err := s.recordJobs(ctx, r, now, token)
	return r, out, err
}

// killRecorder drops a Record call's liveness in every shard, as if it
// had expired.
func (s *Redis) killRecorder(ctx context.Context, token string) error {
	pipe := s.rdb.Pipeline()
	for k := range s.cfg.Shards {
		pipe.HDel(ctx, s.k.shard(k).live(), token)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// marks returns every shard's recording marks.
func (s *Redis) marks(ctx context.Context) ([]string, error) {
	var out []string
	for k := range s.cfg.Shards {
		m, err := s.rdb.ZRange(ctx, s.k.shard(k).recording(), 0, -1).Result()
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// markCount returns how many recording marks there are over every shard.
func (s *Redis) markCount(ctx context.Context) (int, error) {
	m, err := s.marks(ctx)
	return len(m), err
}

// ChatDeadLetterKeyForTest returns a chat dead letter's hash.
func (s *Redis) ChatDeadLetterKeyForTest(id string) string { return s.k.chatDeadLetter(id) }
