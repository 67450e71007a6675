package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/consumer"
)

// Recording a batch of job events takes three steps, so that a
// subscription matching several jobs of the batch gets one RPUSH for all
// of them (at 1M subscriptions a batch of 32 popular jobs matches 2.3
// times fewer subscriptions than it has matches, 100 jobs 4.2 times; the
// per-command cost, not the per-value one, is what Redis spends its time
// on):
//
//  1. jobsScript, one call per batch: every event gets its job's sequence
//     number (new on a job's first appearance), the job record is written,
//     and the jobs whose matches are about to be pushed are marked as
//     recording, owned by this call's token.
//  2. pushScript, pipelined, each call a group of whole subscriptions:
//     every subscription's items of the batch, in event order.
//  3. doneScript, one call: the jobs this call owns stop recording.
//
// Dedup is per subscription, never per (subscription, job) pair:
//   - a first appearance (fresh sequence) is new to everyone it matches;
//   - a later event for a known job (a redelivery, a jobs.updated) adds the
//     job only where it is not pending already and no sent digest covered
//     its first appearance (cov, see claimScript).
//
// The marks make a claim safe between the steps: a claim only takes the
// pending items, and only moves cov, up to just below the lowest job still
// recording. So a job whose push step is cut short by a crash is neither
// sent half nor counted as covered: its redelivery (a later event for a
// known job) pushes exactly the missing items, takes the mark over and
// clears it.

// jobsScript is step 1.
//
// ARGV: prefix, now (ms), job TTL (s), token, then per event: kind ("u"
// upsert | "c" closed), job id, job JSON, the event's stream sequence (0
// when unknown), whether it matched anyone ("1" | "0").
// Returns per event {seq, mode}: mode 0 nothing to push (closed), 1 fresh,
// 2 a known job.
var jobsScript = redis.NewScript(`
local p, now, ttl, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out = {}
for i = 5, #ARGV, 5 do
  local kind, id, data, sseq, any = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4] == '1'
  local idk = p .. 'jid:' .. id
  local seq = redis.call('GET', idk)
  local mode = 2
  if not seq then
    seq = tostring(redis.call('INCR', p .. 'jobseq'))
    redis.call('SET', idk, seq)
    redis.call('HSET', p .. 'job:' .. seq, 'id', id, 'first', now)
    mode = 1
  end
  local jk = p .. 'job:' .. seq
  redis.call('EXPIRE', idk, ttl)
  redis.call('EXPIRE', jk, ttl)
  if kind == 'c' then
    redis.call('HSET', jk, 'closed', now)
    mode = 0
  elseif redis.call('HEXISTS', jk, 'closed') == 1 then
    mode = 0
  else
    -- Events of one job may arrive out of order (retries, replicas): keep
    -- the data of the newest event in the stream.
    if sseq == 0 or tonumber(redis.call('HGET', jk, 'sseq') or '0') <= sseq then
      redis.call('HSET', jk, 'data', data, 'updated', now, 'sseq', sseq)
    end
    -- Mark a fresh job, and take over the mark of one still recording (a
    -- redelivery after a crash mid-push, or an update racing the first
    -- event): whoever pushes last clears it.
    if any and (mode == 1 or redis.call('HEXISTS', p .. 'recowner', seq) == 1) then
      redis.call('ZADD', p .. 'recording', tonumber(seq), seq)
      redis.call('HSET', p .. 'recowner', seq, token .. ':' .. now)
    end
  end
  out[#out + 1] = tonumber(seq)
  out[#out + 1] = mode
end
return out
`)

// pushScript is step 2: whole subscriptions, each with its items of the
// batch in event order.
//
// ARGV: prefix, due time of a new instant window (ms), pending limit, then
// per subscription: id, item count, items; an item is a job sequence
// number, negated for a known job (checked against cov and the pending
// list), as is for a fresh one (pushed as is).
// Returns a string with one "1" (pushed) or "0" per known-job item, in
// order.
var pushScript = redis.NewScript(`
local p, dueAt, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local subp, pendp = p .. 'sub:', p .. 'pend:'
local due, ndue = {}, 0
local known = {}
local i = 4
while i <= #ARGV do
  local sid, k = ARGV[i], tonumber(ARGV[i + 1])
  local pk = pendp .. sid
  local first, last = i + 2, i + 1 + k
  i = last + 1
  local n, pushed = -1, 0
  local st
  local run = first -- where the current run of fresh items starts
  for x = first, last do
    local v = ARGV[x]
    if string.byte(v, 1) == 45 then
      if x > run then
        n = redis.call('RPUSH', pk, unpack(ARGV, run, x - 1))
        pushed = pushed + (x - run)
      end
      run = x + 1
      local seq = string.sub(v, 2)
      if not st then
        st = redis.call('HMGET', subp .. sid, 'status', 'cov')
      end
      if st[1] == 'active' and tonumber(st[2] or '0') < tonumber(seq) and not redis.call('LPOS', pk, seq) then
        n = redis.call('RPUSH', pk, seq)
        pushed = pushed + 1
        known[#known + 1] = '1'
      else
        known[#known + 1] = '0'
      end
    elseif x - run + 1 == 4000 then
      -- A run of fresh items is one RPUSH, in slices within Lua's stack.
      n = redis.call('RPUSH', pk, unpack(ARGV, run, x))
      pushed = pushed + (x - run + 1)
      run = x + 1
    end
  end
  if last >= run then
    n = redis.call('RPUSH', pk, unpack(ARGV, run, last))
    pushed = pushed + (last - run + 1)
  end
  if pushed > 0 then
    -- Lists grow to twice the bound, then lose their oldest half in one
    -- call: one command a push, amortised.
    if n > 2 * limit then
      redis.call('LTRIM', pk, n - limit, -1)
      redis.call('HINCRBY', subp .. sid, 'dropped', n - limit)
    end
    -- An active subscription with pending items is always scheduled (an
    -- open instant window, or its next daily/weekly send): only the first
    -- items may need a window opened.
    if n == pushed then
      due[ndue + 1] = dueAt
      due[ndue + 2] = sid
      ndue = ndue + 2
    end
  end
end
-- Open instant windows, many subscriptions a call. NX keeps a daily or
-- weekly subscription's next send, which is always scheduled.
for j = 1, ndue, 2000 do
  redis.call('ZADD', p .. 'due', 'NX', unpack(due, j, math.min(j + 1999, ndue)))
end
return table.concat(known)
`)

// doneScript is step 3: the jobs whose mark this call's token still owns
// stop recording. ARGV: prefix, token, sequence numbers.
var doneScript = redis.NewScript(`
local p, token = ARGV[1], ARGV[2] .. ':'
local ok = p .. 'recowner'
for i = 3, #ARGV do
  local v = redis.call('HGET', ok, ARGV[i])
  if v and string.sub(v, 1, #token) == token then
    redis.call('HDEL', ok, ARGV[i])
    redis.call('ZREM', p .. 'recording', ARGV[i])
  end
end
return 0
`)

// RecordResult is what recording one event did.
type RecordResult struct {
	Seq      int64 // the job's sequence number
	Recorded int   // pending items added
}

// maxPipelinePairs bounds the items one pipeline carries. The client gives
// a whole pipeline one read (and one write) deadline, go-redis's
// ReadTimeout, 3 s by default: a batch of popular jobs (hundreds of events
// matching tens of thousands of subscriptions each) would overrun it in
// one pipeline, fail and be redelivered forever. 20,000 items take Redis
// well under 100 ms, and the round trip between two pipelines costs it
// about 1%.
const maxPipelinePairs = 20_000

// maxScriptArgs bounds one pushScript call's arguments, so that one call
// does not hold Redis for long (other clients wait while a script runs).
const maxScriptArgs = 4_000

// Record durably records a batch of job events and their matches (see
// the steps above): about one round trip per 20,000 matches plus two. It
// is idempotent, so a batch that fails part-way is simply recorded again
// on redelivery. It implements consumer.Recorder.
func (s *Redis) Record(ctx context.Context, batch []consumer.Matched) error {
	_, err := s.RecordResults(ctx, batch, time.Now())
	return err
}

// recordTokens makes every Record call's token unique across processes.
var (
	recordTokenBase = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	recordTokenSeq atomic.Uint64
)

// RecordResults is Record with the clock given and per-event results.
func (s *Redis) RecordResults(ctx context.Context, batch []consumer.Matched, now time.Time) ([]RecordResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	token := recordTokenBase + strconv.FormatUint(recordTokenSeq.Add(1), 36)
	modes, out, owned, err := s.recordJobs(ctx, batch, now, token)
	if err != nil {
		return nil, err
	}
	if err := s.push(ctx, groupBySubscription(batch, modes), out, now); err != nil {
		return nil, err
	}
	if err := s.recordDone(ctx, token, owned); err != nil {
		return nil, err
	}
	return out, nil
}

// recordJobs runs step 1. It returns jobsScript's answer ({seq, mode} per
// event), the results so far, and the sequence numbers it may have marked.
func (s *Redis) recordJobs(ctx context.Context, batch []consumer.Matched, now time.Time, token string) (modes []int64, out []RecordResult, owned []any, err error) {
	args := make([]any, 0, 4+5*len(batch))
	args = append(args, s.cfg.Prefix, ms(now), int64(s.cfg.JobTTL/time.Second), token)
	for _, m := range batch {
		kind, data := "u", ""
		if m.Event.Kind == consumer.Closed {
			kind = "c"
		} else {
			b, err := json.Marshal(m.Event.Job)
			if err != nil {
				return nil, nil, nil, wrap("encode job", err)
			}
			data = string(b)
		}
		matched := "0"
		if len(m.SubscriptionIDs) > 0 {
			matched = "1"
		}
		args = append(args, kind, m.Event.Job.ID, data, m.Event.StreamSeq, matched)
	}
	modes, err = runScript(ctx, s.rdb, jobsScript, nil, args...).Int64Slice()
	if err != nil {
		return nil, nil, nil, wrap("record jobs", err)
	}
	if len(modes) != 2*len(batch) {
		return nil, nil, nil, wrap("record jobs", fmt.Errorf("got %d results, want %d", len(modes), 2*len(batch)))
	}
	out = make([]RecordResult, len(batch))
	for i := range batch {
		out[i].Seq = modes[2*i]
		if modes[2*i+1] == 0 || len(batch[i].SubscriptionIDs) == 0 {
			continue
		}
		if modes[2*i+1] == 1 {
			out[i].Recorded = len(batch[i].SubscriptionIDs)
		}
		owned = append(owned, modes[2*i])
	}
	return modes, out, owned, nil
}

// recordDone runs step 3.
func (s *Redis) recordDone(ctx context.Context, token string, owned []any) error {
	if len(owned) == 0 {
		return nil
	}
	err := runScript(ctx, s.rdb, doneScript, nil, append([]any{s.cfg.Prefix, token}, owned...)...).Err()
	return wrap("record done", err)
}

// subscriptionItems is a batch's matches turned around: for each
// subscription (in order of first appearance) its items in event order.
type subscriptionItems struct {
	ids   []string
	start []int32 // ids[i]'s items are items[start[i]:start[i+1]]
	items []int64 // +seq for a fresh job, -seq for a known one
	event []int32 // the event of each item
}

// groupBySubscription turns the batch around, leaving out the events that
// push nothing (jobs modes from step 1).
func groupBySubscription(batch []consumer.Matched, modes []int64) subscriptionItems {
	idx := make(map[string]int32)
	var g subscriptionItems
	var count []int32
	total := 0
	for i, m := range batch {
		if modes[2*i+1] == 0 {
			continue
		}
		for _, id := range m.SubscriptionIDs {
			n, ok := idx[id]
			if !ok {
				n = int32(len(g.ids))
				idx[id] = n
				g.ids = append(g.ids, id)
				count = append(count, 0)
			}
			count[n]++
			total++
		}
	}
	g.start = make([]int32, len(g.ids)+1)
	for i, c := range count {
		g.start[i+1] = g.start[i] + c
	}
	next := append([]int32(nil), g.start[:len(g.ids)]...)
	g.items = make([]int64, total)
	g.event = make([]int32, total)
	for i, m := range batch {
		if modes[2*i+1] == 0 {
			continue
		}
		item := modes[2*i]
		if modes[2*i+1] == 2 {
			item = -item
		}
		for _, id := range m.SubscriptionIDs {
			n := idx[id]
			g.items[next[n]] = item
			g.event[next[n]] = int32(i)
			next[n]++
		}
	}
	return g
}

// pushCall is one pushScript call: its arguments, and the event of each
// known-job item in argument order (to count what was pushed per event).
type pushCall struct {
	args  []any
	known []int32
}

// push runs step 2: pipelines of up to maxPipelinePairs items, each
// pushScript call up to maxScriptArgs arguments of whole subscriptions.
// It adds the known-job items pushed to out.
func (s *Redis) push(ctx context.Context, g subscriptionItems, out []RecordResult, now time.Time) error {
	head := []any{s.cfg.Prefix, ms(now.Add(s.cfg.InstantWindow)), s.cfg.PendingLimit}
	var calls []pushCall
	flush := func() error {
		if len(calls) == 0 {
			return nil
		}
		err := s.runPush(ctx, calls, func(i int, known string) error {
			if len(known) != len(calls[i].known) {
				return wrap("record push result", fmt.Errorf("got %d known-job results, want %d", len(known), len(calls[i].known)))
			}
			for j, ev := range calls[i].known {
				if known[j] == '1' {
					out[ev].Recorded++
				}
			}
			return nil
		})
		calls = calls[:0]
		return err
	}
	cur := pushCall{args: append([]any(nil), head...)}
	pairs := 0
	for i, id := range g.ids {
		from, to := g.start[i], g.start[i+1]
		if len(cur.args) > len(head) && len(cur.args)+2+int(to-from) > maxScriptArgs {
			calls = append(calls, cur)
			cur = pushCall{args: append([]any(nil), head...)}
		}
		if pairs+int(to-from) > maxPipelinePairs {
			if len(cur.args) > len(head) {
				calls = append(calls, cur)
				cur = pushCall{args: append([]any(nil), head...)}
			}
			if err := flush(); err != nil {
				return err
			}
			pairs = 0
		}
		cur.args = append(cur.args, id, int(to-from))
		for j := from; j < to; j++ {
			cur.args = append(cur.args, g.items[j])
			if g.items[j] < 0 {
				cur.known = append(cur.known, g.event[j])
			}
		}
		pairs += int(to - from)
	}
	if len(cur.args) > len(head) {
		calls = append(calls, cur)
	}
	return flush()
}

// runPush sends one pipeline of pushScript calls. When Redis lost its
// scripts (a restart), every call of the pipeline failed with NOSCRIPT and
// none ran, so the pipeline runs again once the script is loaded.
func (s *Redis) runPush(ctx context.Context, calls []pushCall, result func(i int, known string) error) error {
	run := func() ([]*redis.Cmd, error) {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, c := range calls {
			cmds[i] = pushScript.EvalSha(ctx, pipe, nil, c.args...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && allNoScript(cmds) {
		if lerr := pushScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return wrap("load push script", lerr)
		}
		cmds, err = run()
	}
	if err != nil {
		return wrap("record push", err)
	}
	for i, c := range cmds {
		known, err := c.Text()
		if err != nil {
			return wrap("record push result", err)
		}
		if err := result(i, known); err != nil {
			return err
		}
	}
	return nil
}

// allNoScript reports whether every command failed with NOSCRIPT.
func allNoScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c.Err() == nil || !redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return false
		}
	}
	return len(cmds) > 0
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
