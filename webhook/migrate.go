package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// MigrateKeys moves webhook keys of the layout before hash tags,
// "<prefix>wh:<rest>", to their place under the tag, "<prefix>{wh}<rest>"
// (docs/webhooks.md, "Redis keys"), keeping each key's value and expiry.
// It is idempotent and resumable: a key already moved is skipped, and when
// both names exist (a run cut short between copy and delete, or a service
// of the new layout already writing) sorted sets are merged and other
// keys keep the new name's value. progress, if not nil, is called after
// each key moved with the count so far, one call at a time. It returns how many old keys it
// removed. Run it with no jobalert process serving.
func MigrateKeys(ctx context.Context, rdb redis.UniversalClient, prefix string, progress func(moved int)) (int, error) {
	var (
		mu    sync.Mutex
		moved int
	)
	oldBase, newBase := prefix+"wh:", prefix+"{wh}"
	migrate := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, globEscape(oldBase)+"*", 500).Iterator()
		for iter.Next(ctx) {
			old := iter.Val()
			if err := moveKey(ctx, rdb, old, newBase+strings.TrimPrefix(old, oldBase)); err != nil {
				return err
			}
			mu.Lock() // ForEachMaster scans the primaries at once
			moved++
			if progress != nil {
				progress(moved)
			}
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, migrate)
	case *redis.Client:
		err = migrate(ctx, c)
	default:
		err = fmt.Errorf("cannot scan the keys of a %T", rdb)
	}
	if err != nil {
		return moved, fmt.Errorf("migrate webhook keys: %w", err)
	}
	return moved, nil
}

// moveKey copies old to new (DUMP and RESTORE, so it works across Redis
// Cluster slots) and deletes old.
func moveKey(ctx context.Context, rdb redis.UniversalClient, old, new string) error {
	dump, err := rdb.Dump(ctx, old).Result()
	if errors.Is(err, redis.Nil) {
		return nil // gone meanwhile
	}
	if err != nil {
		return fmt.Errorf("DUMP %s: %w", old, err)
	}
	ttl, err := rdb.PTTL(ctx, old).Result()
	if err != nil {
		return fmt.Errorf("PTTL %s: %w", old, err)
	}
	if ttl < 0 {
		ttl = 0 // no expiry
	}
	err = rdb.Restore(ctx, new, ttl, dump).Err()
	if err != nil && strings.HasPrefix(err.Error(), "BUSYKEY") {
		err = merge(ctx, rdb, old, new)
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", old, new, err)
	}
	return rdb.Del(ctx, old).Err()
}

// merge folds old into new when both exist: a sorted set's members are
// added (the later score wins); other types keep new's value.
func merge(ctx context.Context, rdb redis.UniversalClient, old, new string) error {
	typ, err := rdb.Type(ctx, old).Result()
	if err != nil || typ != "zset" {
		return err
	}
	zs, err := rdb.ZRangeWithScores(ctx, old, 0, -1).Result()
	if err != nil || len(zs) == 0 {
		return err
	}
	return rdb.ZAddGT(ctx, new, zs...).Err()
}

// globEscape quotes the SCAN MATCH pattern characters of s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
