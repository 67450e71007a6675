package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/consumer"
)

// recordScript applies one job event and its matches atomically.
//
// A job gets a sequence number the first time any event names it. Because
// the number is taken inside the same script that records the matches, and
// Redis runs scripts one at a time, every subscription sees its pending
// items arrive in increasing sequence order. That makes dedup per
// subscription, never per (subscription, job) pair:
//   - a first appearance (fresh sequence) is new to everyone it matches;
//   - a later event for a known job (a redelivery, a jobs.updated) adds the
//     job only where it is not pending already and no sent digest covered
//     its first appearance (cov, the job sequence at the last digest).
//
// ARGV: prefix, kind ("u" upsert | "c" closed), job id, job JSON, now (ms),
// instant window (ms), job TTL (s), pending limit, the event's stream
// sequence (0 when unknown), subscription ids...
// Returns {seq, recorded}.
var recordScript = redis.NewScript(`
local p, kind, id, data = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, window, ttl, limit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local idk = p .. 'jid:' .. id
local seq = redis.call('GET', idk)
local fresh = false
if not seq then
  seq = tostring(redis.call('INCR', p .. 'jobseq'))
  redis.call('SET', idk, seq)
  redis.call('HSET', p .. 'job:' .. seq, 'id', id, 'first', now)
  fresh = true
end
local jk = p .. 'job:' .. seq
redis.call('EXPIRE', idk, ttl)
redis.call('EXPIRE', jk, ttl)
if kind == 'c' then
  redis.call('HSET', jk, 'closed', now)
  return {tonumber(seq), 0}
end
if redis.call('HEXISTS', jk, 'closed') == 1 then
  return {tonumber(seq), 0}
end
-- Events of one job may arrive out of order (retries, replicas): keep the
-- data of the newest event in the stream.
local sseq = tonumber(ARGV[9])
if sseq == 0 or tonumber(redis.call('HGET', jk, 'sseq') or '0') <= sseq then
  redis.call('HSET', jk, 'data', data, 'updated', now, 'sseq', sseq)
end
local nseq = tonumber(seq)
local recorded = 0
local subp, pendp = p .. 'sub:', p .. 'pend:'
local due, ndue = {}, 0
for i = 10, #ARGV do
  local sid = ARGV[i]
  local pk = pendp .. sid
  -- A fresh job is new to everyone it matches: one RPUSH. The index holds
  -- active subscriptions only (a change reaches it within a second); the
  -- claim looks at the status, so a match in that second is held or
  -- dropped there, not here.
  local take = fresh
  if not fresh then
    local st = redis.call('HMGET', subp .. sid, 'status', 'cov')
    take = st[1] == 'active' and tonumber(st[2] or '0') < nseq and not redis.call('LPOS', pk, seq)
  end
  if take then
    local n = redis.call('RPUSH', pk, seq)
    -- Lists grow to twice the bound, then lose their oldest half in one
    -- call: one command a match, amortised.
    if n > 2 * limit then
      redis.call('LTRIM', pk, n - limit, -1)
      redis.call('HINCRBY', subp .. sid, 'dropped', n - limit)
    end
    -- An active subscription with pending items is always scheduled (an
    -- open instant window, or its next daily/weekly send): only the first
    -- item may need a window opened.
    if n == 1 then
      due[ndue + 1] = now + window
      due[ndue + 2] = sid
      ndue = ndue + 2
    end
    recorded = recorded + 1
  end
end
-- Open instant windows, many subscriptions a call. NX keeps a daily or
-- weekly subscription's next send, which is always scheduled.
local dk = p .. 'due'
for i = 1, ndue, 2000 do
  redis.call('ZADD', dk, 'NX', unpack(due, i, math.min(i + 1999, ndue)))
end
return {nseq, recorded}
`)

// RecordResult is what recording one event did.
type RecordResult struct {
	Seq      int64 // the job's sequence number
	Recorded int   // pending items added
}

// maxPipelinePairs bounds the matches one pipeline carries. The client
// gives a whole pipeline one read (and one write) deadline, go-redis's
// ReadTimeout, 3 s by default: a batch of popular jobs (hundreds of events
// matching tens of thousands of subscriptions each, a few microseconds of
// Redis time a match) would overrun it in one pipeline, fail and be
// redelivered forever. 20,000 matches take Redis about 100 ms, and the
// round trip between two pipelines costs it well under 1%.
const maxPipelinePairs = 20_000

// Record durably records a batch of job events and their matches: one Lua
// script per event, sent in pipelines of up to 20,000 matches (so one
// round trip per batch unless the batch matches more), in event order.
// It is idempotent, so a batch that fails part-way is simply recorded
// again on redelivery. It implements consumer.Recorder.
func (s *Redis) Record(ctx context.Context, batch []consumer.Matched) error {
	_, err := s.RecordResults(ctx, batch, time.Now())
	return err
}

// RecordResults is Record with the clock given and per-event results.
func (s *Redis) RecordResults(ctx context.Context, batch []consumer.Matched, now time.Time) ([]RecordResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	out := make([]RecordResult, 0, len(batch))
	argv := make([][]any, 0, len(batch))
	pairs := 0
	for i, m := range batch {
		args, err := s.recordArgs(m, now)
		if err != nil {
			return nil, err
		}
		argv = append(argv, args)
		pairs += len(m.SubscriptionIDs)
		if i+1 < len(batch) && pairs+len(batch[i+1].SubscriptionIDs) <= maxPipelinePairs {
			continue
		}
		res, err := s.execRecord(ctx, argv)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if lerr := recordScript.Load(ctx, s.rdb).Err(); lerr != nil {
				return nil, wrap("load record script", lerr)
			}
			res, err = s.execRecord(ctx, argv)
		}
		if err != nil {
			return nil, wrap("record", err)
		}
		out = append(out, res...)
		argv, pairs = argv[:0], 0
	}
	return out, nil
}

// recordArgs returns the script arguments for one event.
func (s *Redis) recordArgs(m consumer.Matched, now time.Time) ([]any, error) {
	kind, data := "u", ""
	if m.Event.Kind == consumer.Closed {
		kind = "c"
	} else {
		b, err := json.Marshal(m.Event.Job)
		if err != nil {
			return nil, wrap("encode job", err)
		}
		data = string(b)
	}
	args := make([]any, 0, 9+len(m.SubscriptionIDs))
	args = append(args, s.cfg.Prefix, kind, m.Event.Job.ID, data, ms(now),
		s.cfg.InstantWindow.Milliseconds(), int64(s.cfg.JobTTL/time.Second), s.cfg.PendingLimit, m.Event.StreamSeq)
	for _, id := range m.SubscriptionIDs {
		args = append(args, id)
	}
	return args, nil
}

func (s *Redis) execRecord(ctx context.Context, argv [][]any) ([]RecordResult, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(argv))
	for i, args := range argv {
		cmds[i] = recordScript.EvalSha(ctx, pipe, nil, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]RecordResult, len(cmds))
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 2 {
			return nil, wrap("record result", err)
		}
		out[i] = RecordResult{Seq: v[0], Recorded: int(v[1])}
	}
	return out, nil
}

// Job is a job record as the notifier reads it at send time.
type Job struct {
	Seq    int64
	Data   []byte // the newest matcher.Job JSON; empty for a closed-first tombstone
	Closed bool
	First  time.Time
}

// Jobs reads the job records for seqs in one round trip; a missing record
// (expired) comes back with Closed set, so it is left out like a closed job.
func (s *Redis) Jobs(ctx context.Context, seqs []int64) ([]Job, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(seqs))
	for i, seq := range seqs {
		cmds[i] = pipe.HMGet(ctx, s.k.job(strconv.FormatInt(seq, 10)), "data", "closed", "first")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, wrap("read jobs", err)
	}
	out := make([]Job, len(seqs))
	for i, c := range cmds {
		v := c.Val()
		j := Job{Seq: seqs[i]}
		data, _ := v[0].(string)
		j.Data = []byte(data)
		j.Closed = v[1] != nil || data == ""
		if f, ok := v[2].(string); ok {
			if n, err := strconv.ParseInt(f, 10, 64); err == nil {
				j.First = time.UnixMilli(n)
			}
		}
		out[i] = j
	}
	return out, nil
}

var _ consumer.Recorder = (*Redis)(nil)
