package store

import (
	"context"

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
