// Package feed is a subscription's private Atom 1.0 feed: the last 100
// matched jobs, newest first, under a revocable token
// (GET /v1/feeds/<token>.atom).
//
// Store keeps, per subscription and under its own hash tag, a sorted set
// of job ids by the time they matched, a hash of the jobs as the feed
// shows them and a small meta hash (when the feed last changed, its
// title); Append adds matches and trims to the cap in one script. Tokens
// are random; Redis keeps the current one under the subscription (so the
// manage page can show the URL) and a lookup key by its SHA-256;
// revoking is Rotate, which makes a new token and deletes the old lookup.
// Handler serves the feed with ETag, Last-Modified and 304 answers, and
// 404 for any token it does not know, revoked or never issued alike.
package feed

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/channel"
)

// DefaultCap is how many jobs a feed keeps.
const DefaultCap = 100

// Keys builds the feed's Redis keys under a prefix. A subscription's keys
// share the hash tag {feed:<id>}, so Append and Read are one script each
// in Redis Cluster; a token's lookup key has its own tag.
type Keys struct{ Prefix string }

func (k Keys) tag(sub string) string { return k.Prefix + "{feed:" + sub + "}" }

// Items is the sorted set of job ids by match order.
func (k Keys) Items(sub string) string { return k.tag(sub) + ":items" }

// Entries is the hash of job id to the job as JSON.
func (k Keys) Entries(sub string) string { return k.tag(sub) + ":entries" }

// Meta is the hash of the feed's updated time (Unix ms) and title.
func (k Keys) Meta(sub string) string { return k.tag(sub) + ":meta" }

// Token is the subscription's current feed token.
func (k Keys) Token(sub string) string { return k.tag(sub) + ":token" }

// Lookup maps a token, by its SHA-256, to its subscription.
func (k Keys) Lookup(token string) string {
	h := sha256.Sum256([]byte(token))
	return k.Prefix + "{feedtok:" + hex.EncodeToString(h[:]) + "}"
}

// Store is the feeds in Redis. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	keys Keys
	cap  int
	now  func() time.Time
}

// NewStore returns the feeds under keys, keeping cap jobs each (0:
// DefaultCap); now (nil: time.Now) stamps a new feed's start.
func NewStore(rdb redis.UniversalClient, keys Keys, cap int, now func() time.Time) *Store {
	if cap <= 0 {
		cap = DefaultCap
	}
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, keys: keys, cap: cap, now: now}
}

// Item is one job of a feed and when it matched.
type Item struct {
	Job       channel.Job `json:"job"`
	MatchedAt time.Time   `json:"matched_at"`
}

// appendScript: KEYS[1] items, KEYS[2] entries, KEYS[3] meta; ARGV[1]
// cap, ARGV[2] now (Unix ms), then id, json pairs, newest first. A job
// already in the feed gets its new data and keeps its place (a
// redelivered or updated job is not a new entry).
var appendScript = redis.NewScript(`
local cap = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local n = (#ARGV - 2) / 2
for i = 1, n do
  local id = ARGV[1 + 2*i]
  if not redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], now * 1000 + (n - i), id)
  end
  redis.call('HSET', KEYS[2], id, ARGV[2 + 2*i])
end
local extra = redis.call('ZCARD', KEYS[1]) - cap
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  redis.call('HDEL', KEYS[2], unpack(old))
end
redis.call('HSET', KEYS[3], 'updated', ARGV[2])
return redis.call('ZCARD', KEYS[1])`)

// Append adds jobs (newest first) that matched subscription sub at now,
// and trims the feed to its cap, oldest first.
func (s *Store) Append(ctx context.Context, sub string, jobs []channel.Job, now time.Time) error {
	if len(jobs) == 0 {
		return nil
	}
	args, err := s.appendArgs(jobs, now)
	if err != nil {
		return err
	}
	if err := appendScript.Run(ctx, s.rdb, s.appendKeys(sub), args...).Err(); err != nil {
		return fmt.Errorf("feed: append to %s: %w", sub, err)
	}
	return nil
}

// appendBatch bounds the appends AppendAll sends in one pipeline.
const appendBatch = 512

// AppendAll is Append for many feeds at once, the jobs of each by
// subscription id: the scripts go in pipelines of appendBatch (one round
// trip per Redis node each) rather than one round trip per feed. It
// returns the first error; the appends are idempotent, so a caller
// retries the lot.
func (s *Store) AppendAll(ctx context.Context, jobs map[string][]channel.Job, now time.Time) error {
	p := s.rdb.Pipeline()
	type queued struct {
		sub  string
		args []any
		cmd  *redis.Cmd
	}
	var q []queued
	flush := func() error {
		if len(q) == 0 {
			return nil
		}
		_, _ = p.Exec(ctx) // each command's own error is read below
		for _, c := range q {
			err := c.cmd.Err()
			if redis.HasErrorPrefix(err, "NOSCRIPT") {
				// Not loaded on that node yet (a restart, a failover):
				// Run loads it.
				err = appendScript.Run(ctx, s.rdb, s.appendKeys(c.sub), c.args...).Err()
			}
			if err != nil {
				return fmt.Errorf("feed: append to %s: %w", c.sub, err)
			}
		}
		q = q[:0]
		return nil
	}
	for sub, js := range jobs {
		if len(js) == 0 {
			continue
		}
		args, err := s.appendArgs(js, now)
		if err != nil {
			return err
		}
		q = append(q, queued{sub, args, appendScript.EvalSha(ctx, p, s.appendKeys(sub), args...)})
		if len(q) == appendBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (s *Store) appendKeys(sub string) []string {
	return []string{s.keys.Items(sub), s.keys.Entries(sub), s.keys.Meta(sub)}
}

// appendArgs are appendScript's arguments for jobs (newest first, at most
// the cap) matched at now.
func (s *Store) appendArgs(jobs []channel.Job, now time.Time) ([]any, error) {
	if len(jobs) > s.cap {
		jobs = jobs[:s.cap]
	}
	args := []any{s.cap, now.UnixMilli()}
	for _, j := range jobs {
		if j.ID == "" {
			return nil, errors.New("feed: a job without an id")
		}
		b, err := json.Marshal(Item{Job: j, MatchedAt: now.UTC()})
		if err != nil {
			return nil, fmt.Errorf("feed: encode job %q: %w", j.ID, err)
		}
		args = append(args, j.ID, b)
	}
	return args, nil
}

// readScript: KEYS[1] items, KEYS[2] entries, KEYS[3] meta; ARGV[1] cap.
// Returns {updated, title, json...} newest first, one snapshot.
var readScript = redis.NewScript(`
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {redis.call('HGET', KEYS[3], 'updated') or '', redis.call('HGET', KEYS[3], 'title') or ''}
if #ids > 0 then
  local js = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, #js do
    if js[i] then out[#out + 1] = js[i] end
  end
end
return out`)

// Snapshot is a feed as read: its items newest first, when it last
// changed and its title.
type Snapshot struct {
	Items   []Item
	Updated time.Time
	Title   string
}

// Read returns subscription sub's feed.
func (s *Store) Read(ctx context.Context, sub string) (Snapshot, error) {
	vals, err := readScript.Run(ctx, s.rdb, []string{s.keys.Items(sub), s.keys.Entries(sub), s.keys.Meta(sub)}, s.cap).StringSlice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("feed: read %s: %w", sub, err)
	}
	var snap Snapshot
	if ms, err := strconv.ParseInt(vals[0], 10, 64); err == nil {
		snap.Updated = time.UnixMilli(ms).UTC()
	}
	snap.Title = vals[1]
	for _, v := range vals[2:] {
		var it Item
		if err := json.Unmarshal([]byte(v), &it); err != nil {
			return Snapshot{}, fmt.Errorf("feed: decode an item of %s: %w", sub, err)
		}
		snap.Items = append(snap.Items, it)
	}
	return snap, nil
}

// SetTitle sets the feed's title (the filter in words), shown by readers.
func (s *Store) SetTitle(ctx context.Context, sub, title string) error {
	return s.rdb.HSet(ctx, s.keys.Meta(sub), "title", channel.Truncate(title, 300)).Err()
}

// Token returns subscription sub's feed token, making one when it has
// none.
func (s *Store) Token(ctx context.Context, sub string) (string, error) {
	tok, err := s.rdb.Get(ctx, s.keys.Token(sub)).Result()
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("feed: read token: %w", err)
	}
	return s.Rotate(ctx, sub)
}

// Rotate gives subscription sub a new feed token and revokes the old one:
// from its return on, the old URL answers 404. The new lookup is written
// before the subscription's token changes, and a lookup checks both, so a
// crash between the steps leaves at most an unusable key.
func (s *Store) Rotate(ctx context.Context, sub string) (string, error) {
	if sub == "" {
		return "", errors.New("feed: token for an empty subscription id")
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := base64.RawURLEncoding.EncodeToString(b)
	if err := s.rdb.Set(ctx, s.keys.Lookup(tok), sub, 0).Err(); err != nil {
		return "", fmt.Errorf("feed: store token: %w", err)
	}
	old, err := s.rdb.SetArgs(ctx, s.keys.Token(sub), tok, redis.SetArgs{Get: true}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("feed: store token: %w", err)
	}
	// An empty feed is new now: readers see when it began.
	if err := s.rdb.HSetNX(ctx, s.keys.Meta(sub), "updated", s.now().UnixMilli()).Err(); err != nil {
		return "", fmt.Errorf("feed: store token: %w", err)
	}
	if old != "" {
		if err := s.rdb.Del(ctx, s.keys.Lookup(old)).Err(); err != nil {
			return "", fmt.Errorf("feed: revoke old token: %w", err)
		}
	}
	return tok, nil
}

// Expire makes subscription sub's token (and its lookup) and feed meta
// expire after ttl, or keeps them for good when ttl is 0. A feed is
// issued with an unconfirmed subscription, which expires unless
// confirmed: its feed keys must go with it, and stay once it is.
func (s *Store) Expire(ctx context.Context, sub string, ttl time.Duration) error {
	tok, err := s.rdb.Get(ctx, s.keys.Token(sub)).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("feed: expire %s: %w", sub, err)
	}
	p := s.rdb.Pipeline() // two slots: the subscription's keys, the lookup
	for _, k := range []string{s.keys.Token(sub), s.keys.Meta(sub), s.keys.Lookup(tok)} {
		if ttl > 0 {
			p.PExpire(ctx, k, ttl)
		} else {
			p.Persist(ctx, k)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("feed: expire %s: %w", sub, err)
	}
	return nil
}

// ErrUnknownToken is Resolve's answer for a token that was never issued
// or was revoked.
var ErrUnknownToken = errors.New("feed: unknown token")

// Resolve returns the subscription of a feed token.
func (s *Store) Resolve(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 128 {
		return "", ErrUnknownToken
	}
	sub, err := s.rdb.Get(ctx, s.keys.Lookup(token)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrUnknownToken
	}
	if err != nil {
		return "", fmt.Errorf("feed: resolve token: %w", err)
	}
	cur, err := s.rdb.Get(ctx, s.keys.Token(sub)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrUnknownToken
	}
	if err != nil {
		return "", fmt.Errorf("feed: resolve token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(cur), []byte(token)) != 1 {
		return "", ErrUnknownToken
	}
	return sub, nil
}

// Delete removes subscription sub's feed and token (the subscription is
// deleted, or its data).
func (s *Store) Delete(ctx context.Context, sub string) error {
	tok, err := s.rdb.Get(ctx, s.keys.Token(sub)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("feed: delete %s: %w", sub, err)
	}
	if tok != "" {
		if err := s.rdb.Del(ctx, s.keys.Lookup(tok)).Err(); err != nil {
			return fmt.Errorf("feed: delete %s: %w", sub, err)
		}
	}
	// One slot: one DEL of the four keys.
	if err := s.rdb.Del(ctx, s.keys.Items(sub), s.keys.Entries(sub), s.keys.Meta(sub), s.keys.Token(sub)).Err(); err != nil {
		return fmt.Errorf("feed: delete %s: %w", sub, err)
	}
	return nil
}
