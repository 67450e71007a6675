package telegram

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys builds the Redis keys of the Telegram channel under a prefix. Each
// key has its own hash tag: a start token's key is alone in its slot, and
// the poller's offset and lease share the tag {telegram} so one script
// may check the lease and move the offset (Redis Cluster: one slot per
// script).
type Keys struct{ Prefix string }

// Start is the key of a one-time start token, by its SHA-256: Redis never
// holds the token itself.
func (k Keys) Start(token string) string {
	h := sha256.Sum256([]byte(token))
	return k.Prefix + "{tgstart:" + hex.EncodeToString(h[:]) + "}"
}

// Offset is the key of the last update id the poller claimed.
func (k Keys) Offset() string { return k.Prefix + "{telegram}:offset" }

// Lease is the key naming the replica that reads updates.
func (k Keys) Lease() string { return k.Prefix + "{telegram}:lease" }

// Starts issues and redeems one-time start tokens.
type Starts struct {
	rdb  redis.UniversalClient
	keys Keys
	ttl  time.Duration
}

// DefaultStartTTL is how long a start link works when NewStarts is given 0.
const DefaultStartTTL = 24 * time.Hour

// NewStarts returns the start tokens under keys, valid for ttl (0:
// DefaultStartTTL).
func NewStarts(rdb redis.UniversalClient, keys Keys, ttl time.Duration) *Starts {
	if ttl <= 0 {
		ttl = DefaultStartTTL
	}
	return &Starts{rdb: rdb, keys: keys, ttl: ttl}
}

// Issue returns a new start token for subID: 32 random characters from
// the set Telegram allows in a start parameter (A-Z, a-z, 0-9, _ and -,
// at most 64), stored with the TTL.
func (s *Starts) Issue(ctx context.Context, subID string) (string, error) {
	if subID == "" {
		return "", errors.New("telegram: start token for an empty subscription id")
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := base64.RawURLEncoding.EncodeToString(b)
	if err := s.rdb.Set(ctx, s.keys.Start(tok), subID, s.ttl).Err(); err != nil {
		return "", fmt.Errorf("telegram: store start token: %w", err)
	}
	return tok, nil
}

// ErrUnknownStart is Redeem's answer for a token that is unknown, expired
// or already used.
var ErrUnknownStart = errors.New("telegram: unknown, expired or used start token")

// Redeem returns the subscription of a start token and deletes the token
// in the same step (GETDEL), so it works once.
func (s *Starts) Redeem(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 64 {
		return "", ErrUnknownStart
	}
	sub, err := s.rdb.GetDel(ctx, s.keys.Start(token)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrUnknownStart
	}
	if err != nil {
		return "", fmt.Errorf("telegram: redeem start token: %w", err)
	}
	return sub, nil
}

// lease is the poller's lock on reading updates: one owner at a time,
// with a TTL the owner renews; every step checks it still holds it.
type lease struct {
	rdb   redis.UniversalClient
	keys  Keys
	owner string
	ttl   time.Duration
}

// renewScript: KEYS[1] lease; ARGV owner, ttl ms. Takes a free lease or
// renews one's own; 1 when held.
var renewScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

// claimScript: KEYS[1] lease, KEYS[2] offset; ARGV owner, update id.
// 1 when the caller holds the lease and the update is past the offset
// (the offset moves to it), 0 when the update was claimed already, -1
// when the lease is lost.
var claimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local id = tonumber(ARGV[2])
if id <= cur then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`)

// releaseScript: KEYS[1] lease; ARGV owner. Deletes the lease if held.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func (l *lease) renew(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.keys.Lease()}, l.owner, l.ttl.Milliseconds()).Int()
	return n == 1, err
}

func (l *lease) release(ctx context.Context) error {
	return releaseScript.Run(ctx, l.rdb, []string{l.keys.Lease()}, l.owner).Err()
}

// errLeaseLost is claim's error when another replica took the lease.
var errLeaseLost = errors.New("telegram: poller lease lost")

// claim marks update id as processed by this owner; false means it was
// claimed before.
func (l *lease) claim(ctx context.Context, id int64) (bool, error) {
	n, err := claimScript.Run(ctx, l.rdb, []string{l.keys.Lease(), l.keys.Offset()}, l.owner, id).Int()
	switch {
	case err != nil:
		return false, err
	case n < 0:
		return false, errLeaseLost
	}
	return n == 1, nil
}

func (l *lease) offset(ctx context.Context) (int64, error) {
	v, err := l.rdb.Get(ctx, l.keys.Offset()).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}
