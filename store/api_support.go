package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sign-up rate-limit kinds (docs/security.md).
const (
	RateAddress = "confirm-email" // emails to one mailbox (AddressKey)
	RateIP      = "confirm-ip"    // emails asked for by one client IP or IPv6 /64
	RateTotal   = "confirm-total" // emails asked for by everyone together
	// RateLinks counts the links a manage page had emailed to its mailbox
	// (AddressKey): sign-out, delete-all and webhook rotation.
	RateLinks = "link-email"
)

// Limit is one fixed-window counter: at most Max in Window for (Kind, Value).
type Limit struct {
	Kind, Value string
	Max         int
	Window      time.Duration
}

// reserveScript checks every counter and, only when each has room, counts
// one against each: a refused request writes nothing. KEYS are the
// counters; ARGV holds max and window (ms) per key. It returns {0, 0} on
// success, or the 1-based index of the first full counter and its PTTL.
var reserveScript = redis.NewScript(`
for i, k in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', k) or '0')
  if n >= tonumber(ARGV[2*i-1]) then
    return {i, redis.call('PTTL', k)}
  end
end
for i, k in ipairs(KEYS) do
  redis.call('INCR', k)
  if redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, ARGV[2*i])
  end
end
return {0, 0}
`)

// releaseScript gives back one count of each existing counter, and
// deletes a counter that is back at zero.
var releaseScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') > 1 then
    redis.call('DECR', k)
  else
    redis.call('DEL', k)
  end
end
return 0
`)

// Reserve counts one against every limit when all have room and returns
// nil. Otherwise it writes nothing and returns the first full limit and
// how long until its window ends, so a refused request can neither grow
// Redis nor use up anyone's allowance.
func (s *Redis) Reserve(ctx context.Context, limits []Limit) (*Limit, time.Duration, error) {
	keys := make([]string, len(limits))
	args := make([]any, 0, 2*len(limits))
	for i, l := range limits {
		keys[i] = s.k.rate(l.Kind, l.Value)
		args = append(args, l.Max, l.Window.Milliseconds())
	}
	res, err := runScript(ctx, s.rdb, reserveScript, keys, args...).Int64Slice()
	if err != nil {
		return nil, 0, wrap("rate limit", err)
	}
	if res[0] == 0 {
		return nil, 0, nil
	}
	l := limits[res[0]-1]
	wait := time.Duration(res[1]) * time.Millisecond
	if wait <= 0 || wait > l.Window {
		wait = l.Window
	}
	return &l, wait, nil
}

// Release gives back a reservation whose email was not sent: the counters
// count emails that went out.
func (s *Redis) Release(ctx context.Context, limits []Limit) error {
	keys := make([]string, len(limits))
	for i, l := range limits {
		keys[i] = s.k.rate(l.Kind, l.Value)
	}
	return wrap("rate limit release", runScript(ctx, s.rdb, releaseScript, keys).Err())
}

// UseOnce marks a single-use token as spent for ttl and reports whether
// this call was the first to spend it. Only a hash of the token is kept.
func (s *Redis) UseOnce(ctx context.Context, tok string, ttl time.Duration) (bool, error) {
	h := sha256.Sum256([]byte(tok))
	ok, err := s.rdb.SetNX(ctx, s.k.once(hex.EncodeToString(h[:16])), 1, ttl).Result()
	return ok, wrap("use once", err)
}

// revokeScript bumps the token version of an existing subscription.
var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'tv', 1)
`)

// RevokeLinks signs out every manage link of a subscription issued so far
// by bumping its token version, and returns the new version. ErrNotFound
// if there is no such subscription.
func (s *Redis) RevokeLinks(ctx context.Context, id string) (int, error) {
	v, err := runScript(ctx, s.rdb, revokeScript, []string{s.k.sub(id)}).Int()
	if err != nil {
		return 0, wrap("revoke links", err)
	}
	if v < 0 {
		return 0, ErrNotFound
	}
	return v, nil
}
