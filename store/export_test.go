package store

import "context"

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
