package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Due is a subscription whose digest is due.
type Due struct {
	SubscriptionID string
	At             time.Time // when it became due
	score          float64   // the schedule entry as read, for the claim's compare-and-set
}

// DueAt returns up to limit subscriptions due at or before now, earliest
// first.
func (s *Redis) DueAt(ctx context.Context, now time.Time, limit int64) ([]Due, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.k.due(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(now), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, wrap("due", err)
	}
	out := make([]Due, len(zs))
	for i, z := range zs {
		out[i] = Due{SubscriptionID: z.Member.(string), At: time.UnixMilli(int64(z.Score)), score: z.Score}
	}
	return out, nil
}

// claimScript turns a due subscription's pending items into a digest, once.
// The schedule entry is compared with the one the caller read, so of two
// replicas that read the same due entry exactly one claims it. It stores the
// digest, puts it in the outbox under a lease, moves the schedule on (or
// drops it for instant), and records the covered job watermark, cov.
//
// cov is the highest sequence number below every job still marked as
// recording (see Record): every job at or below it has all its first
// items pushed, so a later event for such a job may skip a subscription
// whose digest covered it. Items above it (pushed by a batch still
// recording) stay pending for the next digest; an instant subscription is
// claimed again for them soon. Marks past their end, and a Record call's
// marks once its liveness key is gone, are dropped here.
//
// ARGV: prefix, subscription id, due score as read, next due (ms, "" to
// drop), now (ms), digest id, lease until (ms).
// Returns the digest id when claimed, -1 when claimed but nothing was
// ready, 0 when not claimed (lost the race, or the subscription is not
// active).
var claimScript = redis.NewScript(`
local p, sid, did = ARGV[1], ARGV[2], ARGV[6]
local now = tonumber(ARGV[5])
local cur = redis.call('ZSCORE', p .. 'due', sid)
if not cur or tonumber(cur) ~= tonumber(ARGV[3]) then
  return 0
end
local pk, sk = p .. 'pend:' .. sid, p .. 'sub:' .. sid
local status = redis.call('HGET', sk, 'status')
if status ~= 'active' then
  -- Matched in the second before a change reached the index: a paused or
  -- unconfirmed subscription keeps its items for when it is live again;
  -- a gone one loses them.
  redis.call('ZREM', p .. 'due', sid)
  if status ~= 'paused' and status ~= 'pending' then
    redis.call('DEL', pk)
  end
  return 0
end
if ARGV[4] ~= '' then
  redis.call('ZADD', p .. 'due', ARGV[4], sid)
else
  redis.call('ZREM', p .. 'due', sid)
end
local list = redis.call('LRANGE', pk, 0, -1)
if #list == 0 then
  return -1
end
local jobseq = redis.call('GET', p .. 'jobseq') or '0'
local cov = tonumber(jobseq)
local started = now
while true do
  local r = redis.call('ZRANGE', p .. 'recording', 0, 0, 'WITHSCORES')
  if #r == 0 then
    break
  end
  local v = redis.call('HGET', p .. 'recuntil', r[1]) or '0:0'
  local untl, since = string.match(v, '^(%d+):(%d+)$')
  local token = string.match(r[1], '^%d+/(.+)$')
  if tonumber(untl or '0') > now and (not token or redis.call('EXISTS', p .. 'rec:' .. token) == 1) then
    cov, started = tonumber(r[2]) - 1, tonumber(since)
    break
  end
  redis.call('ZREM', p .. 'recording', r[1])
  redis.call('HDEL', p .. 'recuntil', r[1])
end
-- Newest first, each job once (a redelivery racing its first event may
-- have pushed one twice while both were recording).
local items, keep, seen = {}, {}, {}
for i = #list, 1, -1 do
  local v = list[i]
  if tonumber(v) > cov then
    table.insert(keep, 1, v)
  elseif not seen[v] then
    seen[v] = true
    items[#items + 1] = v
  end
end
if #keep > 0 then
  -- An instant subscription comes back for them as soon as the batch is
  -- likely done: after as long as it has been recording (a recorder that
  -- died is redelivered after the consumer's AckWait), at least a second,
  -- at most a minute.
  if ARGV[4] == '' then
    local wait = math.min(math.max(now - started, 1000), 60000)
    redis.call('ZADD', p .. 'due', now + wait, sid)
  end
  if #items == 0 then
    return -1
  end
  redis.call('DEL', pk)
  redis.call('RPUSH', pk, unpack(keep))
else
  redis.call('DEL', pk)
end
local dropped = redis.call('HGET', sk, 'dropped') or '0'
-- cov never goes down (every pending item is above it already).
cov = math.max(cov, tonumber(redis.call('HGET', sk, 'cov') or '0'))
redis.call('HSET', sk, 'cov', cov, 'dropped', 0, 'last_sent', ARGV[5])
-- The id is the subscription and the due time; a second claim in the same
-- millisecond (an instant window of 0) must not overwrite the first.
if redis.call('EXISTS', p .. 'digest:' .. did) == 1 then
  did = did .. '.' .. jobseq
end
redis.call('HSET', p .. 'digest:' .. did, 'sub', sid, 'items', table.concat(items, ','),
  'dropped', dropped, 'created', ARGV[5], 'due', ARGV[3])
redis.call('ZADD', p .. 'outbox', ARGV[7], did)
return did
`)

// ClaimResult says what a claim did.
type ClaimResult int

// Claim outcomes.
const (
	NotClaimed   ClaimResult = 0  // another replica claimed it, or the schedule changed
	Claimed      ClaimResult = 1  // a digest was made and put in the outbox
	ClaimedEmpty ClaimResult = -1 // it was due but nothing was pending
)

// Claim is one due subscription to claim.
type Claim struct {
	Due        Due
	Next       time.Time // the next due time; zero drops the schedule (instant)
	DigestID   string
	LeaseUntil time.Time // when another replica may take the digest over
}

// DigestID is the stable id of the digest made when a subscription's
// schedule entry due at dueMs is claimed: the claim is unique per entry.
func DigestID(subID string, due time.Time) string {
	return subID + "." + strconv.FormatInt(ms(due), 36)
}

// ClaimDue claims a batch of due subscriptions in one round trip. For each
// one claimed it sets claims[i].DigestID to the id the digest got.
func (s *Redis) ClaimDue(ctx context.Context, claims []Claim, now time.Time) ([]ClaimResult, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	run := func() ([]*redis.Cmd, error) {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(claims))
		for i, c := range claims {
			next := ""
			if !c.Next.IsZero() {
				next = strconv.FormatInt(ms(c.Next), 10)
			}
			cmds[i] = claimScript.EvalSha(ctx, pipe, nil, s.cfg.Prefix, c.Due.SubscriptionID,
				strconv.FormatFloat(c.Due.score, 'f', -1, 64), next, ms(now), c.DigestID, ms(c.LeaseUntil))
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis had lost its scripts (a restart): no claim ran, so the
		// whole batch runs again once the script is loaded.
		if lerr := claimScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return nil, wrap("load claim script", lerr)
		}
		cmds, err = run()
	}
	if err != nil {
		return nil, wrap("claim", err)
	}
	out := make([]ClaimResult, len(cmds))
	for i, c := range cmds {
		switch v := c.Val().(type) {
		case string:
			out[i] = Claimed
			claims[i].DigestID = v
		case int64:
			out[i] = ClaimResult(v)
		default:
			return nil, wrap("claim result", fmt.Errorf("unexpected %T %v (%v)", v, v, c.Err()))
		}
	}
	return out, nil
}

// DigestRecord is a claimed digest waiting in the outbox.
type DigestRecord struct {
	ID             string
	SubscriptionID string
	Seqs           []int64 // job sequence numbers, newest first
	Dropped        int     // matches trimmed from the pending list
	Attempts       int
	EmailDone      bool
	WebhookDone    bool
	Due            time.Time
}

// Digest reads a digest record, or ErrNotFound.
func (s *Redis) Digest(ctx context.Context, id string) (*DigestRecord, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.digest(id)).Result()
	if err != nil {
		return nil, wrap("digest", err)
	}
	if h["sub"] == "" {
		return nil, ErrNotFound
	}
	d := &DigestRecord{ID: id, SubscriptionID: h["sub"], EmailDone: h["email_done"] != "", WebhookDone: h["webhook_done"] != ""}
	for _, f := range strings.Split(h["items"], ",") {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			d.Seqs = append(d.Seqs, n)
		}
	}
	d.Dropped, _ = strconv.Atoi(h["dropped"])
	d.Attempts, _ = strconv.Atoi(h["attempts"])
	if f, err := strconv.ParseFloat(h["due"], 64); err == nil {
		d.Due = time.UnixMilli(int64(f))
	}
	return d, nil
}

// leaseScript takes up to ARGV[3] outbox entries whose time has come and
// pushes their time to the lease end, so no other replica takes them
// while this one works. ARGV: prefix, now (ms), limit, lease until (ms).
var leaseScript = redis.NewScript(`
local ob = ARGV[1] .. 'outbox'
local ids = redis.call('ZRANGEBYSCORE', ob, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', ob, ARGV[4], id)
end
return ids
`)

// LeaseOutbox takes up to limit digests whose retry time or lease has come,
// leasing them until leaseUntil.
func (s *Redis) LeaseOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]string, error) {
	ids, err := runScript(ctx, s.rdb, leaseScript, nil, s.cfg.Prefix, ms(now), limit, ms(leaseUntil)).StringSlice()
	if err == redis.Nil {
		return nil, nil
	}
	return ids, wrap("lease outbox", err)
}

// MarkDigest records that one channel ("email" or "webhook") of a digest
// is done, so a retry after a crash does not send it again.
func (s *Redis) MarkDigest(ctx context.Context, id, channel string) error {
	return wrap("mark digest", s.rdb.HSet(ctx, s.k.digest(id), channel+"_done", 1).Err())
}

// RetryDigest puts a digest back in the outbox for another attempt at at,
// and returns how many attempts failed so far.
func (s *Redis) RetryDigest(ctx context.Context, id string, at time.Time) (int, error) {
	p := s.rdb.TxPipeline()
	n := p.HIncrBy(ctx, s.k.digest(id), "attempts", 1)
	p.ZAdd(ctx, s.k.outbox(), redis.Z{Score: float64(ms(at)), Member: id})
	if _, err := p.Exec(ctx); err != nil {
		return 0, wrap("retry digest", err)
	}
	return int(n.Val()), nil
}

// FinishDigest removes a digest that is fully sent (or given up).
func (s *Redis) FinishDigest(ctx context.Context, id string) error {
	p := s.rdb.TxPipeline()
	p.Del(ctx, s.k.digest(id))
	p.ZRem(ctx, s.k.outbox(), id)
	_, err := p.Exec(ctx)
	return wrap("finish digest", err)
}

// OutboxLen returns how many digests wait in the outbox.
func (s *Redis) OutboxLen(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.k.outbox()).Result()
	return n, wrap("outbox length", err)
}

// PendingCount returns how many items wait for a subscription's next digest.
func (s *Redis) PendingCount(ctx context.Context, subID string) (int64, error) {
	n, err := s.rdb.LLen(ctx, s.k.pending(subID)).Result()
	return n, wrap("pending count", err)
}
