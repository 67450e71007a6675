package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

// DueAt returns up to limit subscriptions due at or before now, fairly
// over the shards: each shard is read for its share of limit (at least
// one), then the shards that had more for the rest, and the answer takes
// the shards in turn from a start that rotates between calls.
func (s *Redis) DueAt(ctx context.Context, now time.Time, limit int64) ([]Due, error) {
	n := s.cfg.Shards
	per := max(1, (limit+int64(n)-1)/int64(n))
	got := make([][]Due, n)
	full := make([]int, n)
	for i := range full {
		full[i] = i
	}
	total := int64(0)
	upto := strconv.FormatInt(ms(now), 10)
	for len(full) > 0 && total < limit {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.ZSliceCmd, len(full))
		for j, k := range full {
			cmds[j] = pipe.ZRangeByScoreWithScores(ctx, s.k.shard(k).due(), &redis.ZRangeBy{
				Min: "-inf", Max: upto, Offset: int64(len(got[k])), Count: per,
			})
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, wrap("due", err)
		}
		var more []int
		for j, k := range full {
			zs := cmds[j].Val()
			for _, z := range zs {
				got[k] = append(got[k], Due{SubscriptionID: z.Member.(string), At: time.UnixMilli(int64(z.Score)), score: z.Score})
			}
			total += int64(len(zs))
			if int64(len(zs)) == per {
				more = append(more, k)
			}
		}
		full = more
		if len(full) > 0 {
			per = max(1, (limit-total+int64(len(full))-1)/int64(len(full)))
		}
	}
	start := int(s.dueTurn.Add(1)) % n
	out := make([]Due, 0, min(total, limit))
	for round := 0; int64(len(out)) < limit; round++ {
		added := false
		for j := range n {
			k := (start + j) % n
			if round < len(got[k]) && int64(len(out)) < limit {
				out = append(out, got[k][round])
				added = true
			}
		}
		if !added {
			break
		}
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
// marks once its liveness entry has lapsed, are dropped here.
//
// KEYS: the shard's due, the subscription's sub: and pend:, the shard's
// jobseq, recording, recuntil, live, the digest's key, the key of its
// fallback id, the shard's outbox, the shard's outbox owners, the
// subscription's alert count of the day (the daily cap).
// ARGV: subscription id, due score as read, next due (ms, "" to drop),
// now (ms), digest id, lease until (ms), fallback digest id, the
// claiming process's owner id ("" without liveness), the digest's kind
// ("" or "rollup", which clears the subscription's rollup mark), when
// the day's alert count expires (ms; "" when the alert is not counted).
// Returns the digest id when claimed, -1 when claimed but nothing was
// ready, 0 when not claimed (lost the race, or the subscription is not
// active).
var claimScript = redis.NewScript(`
local dk, sk, pk, rk, uk, lk = KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7]
local sid, did = ARGV[1], ARGV[5]
local now = tonumber(ARGV[4])
local cur = redis.call('ZSCORE', dk, sid)
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then
  return 0
end
local status = redis.call('HGET', sk, 'status')
if status ~= 'active' then
  -- Matched in the second before a change reached the index: a paused or
  -- unconfirmed subscription keeps its items for when it is live again;
  -- a gone one loses them.
  redis.call('ZREM', dk, sid)
  if status ~= 'paused' and status ~= 'pending' then
    redis.call('DEL', pk)
  end
  return 0
end
if ARGV[3] ~= '' then
  redis.call('ZADD', dk, ARGV[3], sid)
else
  redis.call('ZREM', dk, sid)
end
if ARGV[9] == 'rollup' then
  redis.call('HDEL', sk, 'rollup')
end
local list = redis.call('LRANGE', pk, 0, -1)
if #list == 0 then
  return -1
end
local jobseq = redis.call('GET', KEYS[4]) or '0'
local cov = tonumber(jobseq)
local started = now
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
while true do
  local r = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
  if #r == 0 then
    break
  end
  local v = redis.call('HGET', uk, r[1]) or '0:0'
  local untl, since = string.match(v, '^(%d+):(%d+)$')
  local token = string.match(r[1], '^%d+/(.+)$')
  if tonumber(untl or '0') > now and (not token or tonumber(redis.call('HGET', lk, token) or '0') > clock) then
    cov, started = tonumber(r[2]) - 1, tonumber(since)
    break
  end
  redis.call('ZREM', rk, r[1])
  redis.call('HDEL', uk, r[1])
  if token then
    redis.call('HDEL', lk, token)
  end
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
  if ARGV[3] == '' then
    local wait = math.min(math.max(now - started, 1000), 60000)
    redis.call('ZADD', dk, now + wait, sid)
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
redis.call('HSET', sk, 'cov', cov, 'dropped', 0, 'last_sent', ARGV[4])
-- The id is the subscription and the due time; a second claim in the same
-- millisecond (an instant window of 0) must not overwrite the first.
local gk = KEYS[8]
if redis.call('EXISTS', gk) == 1 then
  did, gk = ARGV[7], KEYS[9]
end
redis.call('HSET', gk, 'sub', sid, 'items', table.concat(items, ','),
  'dropped', dropped, 'created', ARGV[4], 'due', ARGV[2])
if ARGV[9] ~= '' then
  redis.call('HSET', gk, 'kind', ARGV[9])
end
if ARGV[10] ~= '' then
  -- One more instant alert on the subscriber's local day (the daily cap).
  redis.call('INCR', KEYS[12])
  redis.call('PEXPIREAT', KEYS[12], ARGV[10])
end
redis.call('ZADD', KEYS[10], ARGV[6], did)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[11], did, ARGV[8])
end
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
	// Kind is the digest's kind: "" or KindRollup.
	Kind string
	// CountDay, when not empty, is the subscriber's local day
	// (schedule.Day) the alert counts toward for the daily cap, and
	// CountUntil when that count may expire.
	CountDay   string
	CountUntil time.Time
}

// DigestID is the stable id of the digest made when a subscription's
// schedule entry due at dueMs is claimed: the claim is unique per entry.
// The subscription id comes first, up to the last dot, so the id names
// its shard (a second digest of one entry gets a dash and a suffix).
func DigestID(subID string, due time.Time) string {
	return subID + "." + strconv.FormatInt(ms(due), 36)
}

// ClaimDue claims a batch of due subscriptions in one round trip. For each
// one claimed it sets claims[i].DigestID to the id the digest got.
func (s *Redis) ClaimDue(ctx context.Context, claims []Claim, now time.Time) ([]ClaimResult, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	res, err := s.evalEach(ctx, claimScript, len(claims), func(i int) []string {
		c := claims[i]
		id := c.Due.SubscriptionID
		t := s.k.of(id)
		alt := c.DigestID + "-" + hex.EncodeToString(suffix)
		return []string{t.due(), t.sub(id), t.pending(id), t.jobseq(), t.recording(), t.recuntil(), t.live(),
			t.digest(c.DigestID), t.digest(alt), t.outbox(), t.owners(), t.alerts(id, c.CountDay)}
	}, func(i int) []any {
		c := claims[i]
		next := ""
		if !c.Next.IsZero() {
			next = strconv.FormatInt(ms(c.Next), 10)
		}
		count := ""
		if c.CountDay != "" {
			count = strconv.FormatInt(ms(c.CountUntil), 10)
		}
		return []any{c.Due.SubscriptionID, strconv.FormatFloat(c.Due.score, 'f', -1, 64), next, ms(now),
			c.DigestID, ms(c.LeaseUntil), c.DigestID + "-" + hex.EncodeToString(suffix), s.owner(), c.Kind, count}
	})
	if err != nil {
		return nil, wrap("claim", err)
	}
	out := make([]ClaimResult, len(res))
	for i, v := range res {
		switch v := v.(type) {
		case string:
			out[i] = Claimed
			claims[i].DigestID = v
		case int64:
			out[i] = ClaimResult(v)
		default:
			return nil, wrap("claim result", fmt.Errorf("unexpected %T %v", v, v))
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
	// Kind is "" for an alert or digest, KindRollup for the message
	// after a day that reached the daily cap, KindReplay for a chat dead
	// letter sent again (only Messages, no jobs).
	Kind string
	// Done says, per chat channel, that its messages are all accepted;
	// Sent how many messages of a multi-message alert were (a retry
	// resumes after them); ChannelAttempts how many tries failed.
	Done            map[string]bool
	Sent            map[string]int
	ChannelAttempts map[string]int
	// Messages holds, for a replay, the message each channel sends
	// (JSON, as dead-lettered).
	Messages map[string]string
}

// Digest kinds (DigestRecord.Kind, Claim.Kind).
const (
	KindRollup = "rollup"
	KindReplay = "replay"
)

// Digest reads a digest record, or ErrNotFound.
func (s *Redis) Digest(ctx context.Context, id string) (*DigestRecord, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.digest(id)).Result()
	if err != nil {
		return nil, wrap("digest", err)
	}
	if h["sub"] == "" {
		return nil, ErrNotFound
	}
	d := &DigestRecord{ID: id, SubscriptionID: h["sub"], EmailDone: h["email_done"] != "", WebhookDone: h["webhook_done"] != "",
		Kind: h["kind"], Done: map[string]bool{}, Sent: map[string]int{}, ChannelAttempts: map[string]int{}, Messages: map[string]string{}}
	for f, v := range h {
		ch, what, ok := strings.Cut(f, "_")
		if strings.HasPrefix(f, "msg:") {
			d.Messages[f[len("msg:"):]] = v
			continue
		}
		if !ok {
			continue
		}
		switch what {
		case "done":
			d.Done[ch] = true
		case "sent":
			d.Sent[ch], _ = strconv.Atoi(v)
		case "att":
			d.ChannelAttempts[ch], _ = strconv.Atoi(v)
		}
	}
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

// leaseScript takes up to ARGV[2] entries of one shard's outbox (KEYS[1])
// whose time has come and pushes their time to the lease end, so no other
// replica takes them while this one works, and records this process as
// their owner (KEYS[2], when ARGV[4] is not ""). ARGV: now (ms), limit,
// lease until (ms), owner.
var leaseScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  if ARGV[4] ~= '' then
    redis.call('HSET', KEYS[2], id, ARGV[4])
  end
end
return ids
`)

// LeaseOutbox takes up to limit digests whose retry time or lease has
// come, leasing them until leaseUntil: every shard is asked for its share
// (at least one), from a start shard that rotates between calls, so a
// shard with a long outbox does not starve the others. With liveness
// (WithLiveness), the digests leased by a process that is gone are
// first made due at once (recoverOrphans).
func (s *Redis) LeaseOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]string, error) {
	if err := s.recoverOrphans(ctx, now); err != nil {
		return nil, err
	}
	n := s.cfg.Shards
	per := max(1, (limit+n-1)/n)
	start := int(s.outboxTurn.Add(1)) % n
	res, err := s.evalEach(ctx, leaseScript, n, func(j int) []string {
		t := s.k.shard((start + j) % n)
		return []string{t.outbox(), t.owners()}
	}, func(int) []any { return []any{ms(now), per, ms(leaseUntil), s.owner()} })
	if err != nil {
		return nil, wrap("lease outbox", err)
	}
	var ids []string
	for _, v := range res {
		a, _ := v.([]any)
		for _, id := range a {
			if str, ok := id.(string); ok {
				ids = append(ids, str)
			}
		}
	}
	return ids, nil
}

// MarkDigest records that one channel ("email", "webhook", or a chat
// channel) of a digest is done, so a retry after a crash does not send it
// again.
func (s *Redis) MarkDigest(ctx context.Context, id, channel string) error {
	return wrap("mark digest", s.rdb.HSet(ctx, s.k.digest(id), channel+"_done", 1).Err())
}

// SetDigestSent records that the first n messages of a chat channel's
// alert were accepted, so a retry resumes after them, and keeps the
// message they were rendered from (JSON, "" to leave it): a retry must
// send that message, not one rebuilt from the jobs' newer data, whose
// split into messages may differ (a job closed, a longer description).
func (s *Redis) SetDigestSent(ctx context.Context, id, channel string, n int, msg string) error {
	f := []any{channel + "_sent", n}
	if msg != "" {
		f = append(f, "msg:"+channel, msg)
	}
	return wrap("digest progress", s.rdb.HSet(ctx, s.k.digest(id), f...).Err())
}

// FailDigestChannel counts a failed try of one chat channel of a digest
// and returns how many have failed.
func (s *Redis) FailDigestChannel(ctx context.Context, id, channel string) (int, error) {
	n, err := s.rdb.HIncrBy(ctx, s.k.digest(id), channel+"_att", 1).Result()
	return int(n), wrap("digest channel failure", err)
}

// RetryDigest puts a digest back in the outbox for another attempt at at,
// and returns how many attempts failed so far.
func (s *Redis) RetryDigest(ctx context.Context, id string, at time.Time) (int, error) {
	p := s.rdb.TxPipeline()
	n := p.HIncrBy(ctx, s.k.digest(id), "attempts", 1)
	p.ZAdd(ctx, s.k.outboxOf(id), redis.Z{Score: float64(ms(at)), Member: id})
	p.HDel(ctx, s.k.shard(s.k.digestShard(id)).owners(), id) // waiting for its retry, owned by no one
	if _, err := p.Exec(ctx); err != nil {
		return 0, wrap("retry digest", err)
	}
	return int(n.Val()), nil
}

// FinishDigest removes a digest that is fully sent (or given up).
func (s *Redis) FinishDigest(ctx context.Context, id string) error {
	p := s.rdb.TxPipeline()
	p.Del(ctx, s.k.digest(id))
	p.ZRem(ctx, s.k.outboxOf(id), id)
	p.HDel(ctx, s.k.shard(s.k.digestShard(id)).owners(), id)
	_, err := p.Exec(ctx)
	return wrap("finish digest", err)
}

// OutboxLen returns how many digests wait in the outbox.
func (s *Redis) OutboxLen(ctx context.Context) (int64, error) {
	n, err := s.sumShards(ctx, func(p redis.Pipeliner, t shardKeys) *redis.IntCmd { return p.ZCard(ctx, t.outbox()) })
	return n, wrap("outbox length", err)
}

// PendingCount returns how many items wait for a subscription's next digest.
func (s *Redis) PendingCount(ctx context.Context, subID string) (int64, error) {
	n, err := s.rdb.LLen(ctx, s.k.pending(subID)).Result()
	return n, wrap("pending count", err)
}
