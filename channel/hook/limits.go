package hook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limits remembers, per destination URL, until when the service asked not
// to be posted to: the wait of a 429, or the reset of a rate-limit bucket
// that is empty. Every Post waits it out first (or, when it is longer than
// MaxWait, returns it as a *channel.TemporaryError without a request), so
// the next alert to the same Slack or Discord webhook honours a limit met
// by the previous one. With Redis, every replica sees it; without, only
// this process.
type Limits struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time

	mu    sync.Mutex
	until map[string]time.Time // without Redis
}

// NewLimits returns limits kept in rdb under prefix (one key per
// destination, {chatrl:<hash of the URL>}, expiring with the wait), or in
// memory when rdb is nil. now (nil: time.Now) times the in-memory ones.
func NewLimits(rdb redis.UniversalClient, prefix string, now func() time.Time) *Limits {
	if now == nil {
		now = time.Now
	}
	return &Limits{rdb: rdb, prefix: prefix, now: now, until: map[string]time.Time{}}
}

// Key is the Redis key of a destination: its own hash tag, the URL
// hashed (it holds the webhook's secret).
func (l *Limits) Key(target string) string {
	h := sha256.Sum256([]byte(target))
	return l.prefix + "{chatrl:" + hex.EncodeToString(h[:16]) + "}"
}

// holdScript: KEYS[1]; ARGV[1] ms. Extends the hold, never shortens it.
var holdScript = redis.NewScript(`
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1`)

// Hold records that target must not be posted to for d.
func (l *Limits) Hold(ctx context.Context, target string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if l.rdb == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		if u := l.now().Add(d); u.After(l.until[target]) {
			l.until[target] = u
		}
		return nil
	}
	ms := max(d.Milliseconds(), 1)
	if err := holdScript.Run(ctx, l.rdb, []string{l.Key(target)}, ms).Err(); err != nil {
		return fmt.Errorf("hook: record rate limit: %w", err)
	}
	return nil
}

// Left returns how long target is still held; 0 when it is not.
func (l *Limits) Left(ctx context.Context, target string) (time.Duration, error) {
	if l.rdb == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		u, ok := l.until[target]
		if !ok {
			return 0, nil
		}
		if d := u.Sub(l.now()); d > 0 {
			return d, nil
		}
		delete(l.until, target)
		return 0, nil
	}
	d, err := l.rdb.PTTL(ctx, l.Key(target)).Result()
	if err != nil {
		return 0, fmt.Errorf("hook: read rate limit: %w", err)
	}
	return max(d, 0), nil // -2: no key, -1: no expiry (never set so)
}
