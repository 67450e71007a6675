package store

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Stats are counts over the whole data model, for the admin API.
type Stats struct {
	// Subscriptions counts every subscription (pending ones until they
	// expire), by status, by frequency, and by status then frequency.
	Subscriptions            int
	ByStatus                 map[string]int
	ByFrequency              map[string]int
	ByStatusAndFrequency     map[string]map[string]int
	PendingItems             int64 // job items waiting for a digest, over every subscription
	SubscriptionsWithPending int   // subscriptions with at least one
	Due                      int64 // subscriptions with a digest scheduled (P due)
	Outbox                   int64 // digests claimed, in flight or waiting for a retry (P outbox)
	Suppressed               int64 // entries of the suppression list
	BounceCounts             int64 // addresses with hard bounces counted
}

// Stats reads every subscription's status, frequency and pending list
// (SCAN, pipelined): it costs about one Redis round trip per thousand keys
// of the database, for an occasional look (metrics are for dashboards).
// Subscriptions changing meanwhile may be counted in their old or new
// state.
func (s *Redis) Stats(ctx context.Context) (Stats, error) {
	st := Stats{ByStatus: map[string]int{}, ByFrequency: map[string]int{}, ByStatusAndFrequency: map[string]map[string]int{}}
	var err error
	if st.Due, err = s.sumShards(ctx, func(p redis.Pipeliner, t shardKeys) *redis.IntCmd { return p.ZCard(ctx, t.due()) }); err != nil {
		return st, wrap("stats", err)
	}
	if st.Outbox, err = s.OutboxLen(ctx); err != nil {
		return st, wrap("stats", err)
	}
	if st.Suppressed, st.BounceCounts, err = s.SuppressionCounts(ctx); err != nil {
		return st, wrap("stats", err)
	}

	// SCAN may return a key twice (while Redis resizes its table): each
	// subscription is counted once, by a 64-bit hash of its id.
	seen := map[uint64]struct{}{}
	seed := maphash.MakeSeed()
	err = s.scanKeys(ctx, escapeGlob(s.k.p)+"{s*}sub:*", func(keys []string) error {
		type row struct {
			fields *redis.SliceCmd
			items  *redis.IntCmd
		}
		var rows []row
		p := s.rdb.Pipeline()
		for _, k := range keys {
			_, id, ok := strings.Cut(k, "}sub:")
			if !ok {
				continue
			}
			h := maphash.String(seed, id)
			if _, dup := seen[h]; dup {
				continue
			}
			seen[h] = struct{}{}
			rows = append(rows, row{p.HMGet(ctx, k, "status", "freq"), p.LLen(ctx, s.k.pending(id))})
		}
		if len(rows) > 0 {
			if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
		}
		for _, r := range rows {
			v := r.fields.Val()
			status, _ := v[0].(string)
			freq, _ := v[1].(string)
			if status == "" {
				continue // deleted or expired since the SCAN
			}
			st.Subscriptions++
			st.ByStatus[status]++
			st.ByFrequency[freq]++
			if st.ByStatusAndFrequency[status] == nil {
				st.ByStatusAndFrequency[status] = map[string]int{}
			}
			st.ByStatusAndFrequency[status][freq]++
			if n := r.items.Val(); n > 0 {
				st.PendingItems += n
				st.SubscriptionsWithPending++
			}
		}
		return nil
	})
	return st, wrap("stats", err)
}

// scanKeys calls fn with the keys matching pattern, a SCAN page at a
// time, on every primary of a cluster (SCAN covers one node) or on the
// one server.
func (s *Redis) scanKeys(ctx context.Context, pattern string, fn func([]string) error) error {
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if err := fn(keys); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex // fn is not safe for concurrent use
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			var cursor uint64
			for {
				keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
				if err != nil {
					return err
				}
				mu.Lock()
				err = fn(keys)
				mu.Unlock()
				if err != nil {
					return err
				}
				if cursor = next; cursor == 0 {
					return nil
				}
			}
		})
	}
	return scan(ctx, s.rdb)
}

// escapeGlob escapes the characters SCAN MATCH gives a meaning.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SuppressionCounts returns the number of suppression entries and of
// addresses with bounces counted (entries are keyed hashes: there is no
// address to list).
func (s *Redis) SuppressionCounts(ctx context.Context) (suppressed, bounceCounts int64, err error) {
	p := s.rdb.Pipeline()
	sup, b := p.SCard(ctx, s.k.suppressed()), p.HLen(ctx, s.k.bounces())
	if _, err := p.Exec(ctx); err != nil {
		return 0, 0, wrap("suppression counts", err)
	}
	return sup.Val(), b.Val(), nil
}

// LiftSuppression takes an address off the suppression list, under its
// current, previous and plain hashes, and forgets its bounce counts. It
// reports whether it was on the list. The address's subscriptions keep
// their status: a suppressed one stays stopped, and the address may sign
// up again.
func (s *Redis) LiftSuppression(ctx context.Context, email string) (bool, error) {
	hashes := append([]string{s.addressKey(email), EmailHash(email)}, s.previousAddressKeys(email)...)
	p := s.rdb.Pipeline() // two slots (suppressed, bounces); each command idempotent
	rem := p.SRem(ctx, s.k.suppressed(), toAny(hashes)...)
	p.HDel(ctx, s.k.bounces(), hashes...)
	if _, err := p.Exec(ctx); err != nil {
		return false, wrap("lift suppression", err)
	}
	return rem.Val() > 0, nil
}
