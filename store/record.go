package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/jobevent"
)

// Recording a batch of job events takes three steps, so that a
// subscription matching several jobs of the batch gets one RPUSH for all
// of them (at 1M subscriptions a batch of 32 popular jobs matches 2.3
// times fewer subscriptions than it has matches, 250 jobs 7.7 times;
// Redis spends its time per command, much less per value):
//
//  1. jobsScript, one call per batch: every event gets its job's sequence
//     number (new on a job's first appearance) and the job record is
//     written; a job appearing for the first time, with matches, is
//     marked as recording.
//  2. pushScript, pipelined, each call a group of whole subscriptions:
//     every subscription's items of the batch, in event order.
//  3. doneScript, one call: the marks of step 1 are cleared.
//
// Dedup is per subscription, never per (subscription, job) pair:
//   - a first appearance (fresh sequence) is new to everyone it matches;
//   - a later event for a known job (a redelivery, a jobs.updated) adds the
//     job only where it is not pending already and no sent digest covered
//     its first appearance (cov, see claimScript).
//
// A claim takes pending items, and moves cov, only up to just below the
// lowest marked job, so it never sends half a job's items nor counts a
// job as covered before all its first items are pushed. A job's first
// appearance gets two marks:
//   - "seq/token", the first recorder's own, while the call runs: until
//     it is done, its liveness key rec:<token> (refreshed while the call
//     runs) expires, or its lease runs out (RecordLease, longer than a
//     Record call may last). A later event of the job (a redelivery racing
//     a slow first delivery, an update in the other batch in flight) may
//     push the job to a subscription the first recorder has not reached
//     yet; both copies then wait for the first recorder, go out in one
//     digest, and the claim keeps one;
//   - "seq#stream-seq", until that first event is recorded to the end, by
//     its first delivery or by its redelivery after a crash, however late
//     (up to a day, see recordFlagTTL), or the job is closed.
// Later events push each item with a check (not pending, not covered) in
// the same step, so they need no mark.

// jobsScript is step 1.
//
// ARGV: prefix, now (ms), job TTL (s), token, lease end (ms), first
// appearance flag end (ms), liveness TTL (ms), then per event: kind ("u"
// upsert | "c" closed), job id, job JSON, the event's stream sequence (0
// when unknown), whether it matched anyone ("1" | "0").
// Returns per event {seq, mode}: mode 0 nothing to push (closed), 1 fresh,
// 2 a known job.
var jobsScript = redis.NewScript(`
local p, now, ttl, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local rk, uk = p .. 'recording', p .. 'recuntil'
redis.call('SET', p .. 'rec:' .. token, 1, 'PX', ARGV[7])
local out = {}
for i = 8, #ARGV, 5 do
  local kind, id, data, sseq, any = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4] == '1'
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
  if kind == 'c' or redis.call('HEXISTS', jk, 'closed') == 1 then
    if kind == 'c' then
      redis.call('HSET', jk, 'closed', now)
    end
    mode = 0
    -- A closed job is left out of every digest: nothing newer need wait
    -- for its first event to be recorded to the end.
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', rk, seq, seq)) do
      if string.find(m, '#', 1, true) then
        redis.call('ZREM', rk, m)
        redis.call('HDEL', uk, m)
      end
    end
  else
    -- Events of one job may arrive out of order (retries, replicas): keep
    -- the data of the newest event in the stream.
    local n = tonumber(sseq)
    if n == 0 or tonumber(redis.call('HGET', jk, 'sseq') or '0') <= n then
      redis.call('HSET', jk, 'data', data, 'updated', now, 'sseq', sseq)
    end
    -- Only a job's first appearance is marked: it is the only event whose
    -- items are pushed unchecked. A later event checks and pushes each
    -- item in one step (pushScript), so it needs no mark; marking it
    -- would hold every newer item back behind an old job while it runs.
    if any and mode == 1 then
      local own, flag = seq .. '/' .. token, seq .. '#' .. sseq
      redis.call('ZADD', rk, tonumber(seq), own, tonumber(seq), flag)
      redis.call('HSET', uk, own, ARGV[5] .. ':' .. now, flag, ARGV[6] .. ':' .. now)
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

// doneScript is step 3: this call's marks go, and so do the first
// appearance flags of the events it recorded to the end. ARGV: prefix,
// token, then per event not closed: sequence number, stream sequence.
var doneScript = redis.NewScript(`
local p, token = ARGV[1], ARGV[2]
local rk, uk = p .. 'recording', p .. 'recuntil'
redis.call('DEL', p .. 'rec:' .. token)
for i = 3, #ARGV, 2 do
  local own, flag = ARGV[i] .. '/' .. token, ARGV[i] .. '#' .. ARGV[i + 1]
  redis.call('ZREM', rk, own, flag)
  redis.call('HDEL', uk, own, flag)
end
return 0
`)

// recordFlagTTL is how long a job's first appearance flag may keep newer
// items waiting when its event is never recorded to the end: the event is
// redelivered after AckWait once any consumer runs, so a day means every
// consumer was down for a day, or the event left the stream (MaxAge, a
// purge) unrecorded. Its missing items are lost either way; newer items
// must not wait for ever.
const recordFlagTTL = 24 * time.Hour

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
// on redelivery. It is what the consumer records through (its Recorder;
// cmd/jobalert wires the two).
func (s *Redis) Record(ctx context.Context, batch []jobevent.Matched) error {
	_, err := s.RecordResults(ctx, batch, time.Now())
	return err
}

// recordTokenBase (random per process) and recordTokenSeq make every
// Record call's token unique across processes.
var (
	recordTokenBase = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	recordTokenSeq atomic.Uint64
)

// RecordResults is Record with the clock given and per-event results.
func (s *Redis) RecordResults(ctx context.Context, batch []jobevent.Matched, now time.Time) ([]RecordResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	token := recordTokenBase + "." + strconv.FormatUint(recordTokenSeq.Add(1), 36)
	modes, out, owned, err := s.recordJobs(ctx, batch, now, token)
	if err != nil {
		s.recordEnded(ctx, token)
		return nil, err
	}
	stop := s.keepRecording(ctx, token)
	err = s.push(ctx, groupBySubscription(batch, modes), out, now)
	stop()
	if err == nil {
		err = s.recordDone(ctx, token, owned)
	}
	if err != nil {
		s.recordEnded(ctx, token)
		return nil, err
	}
	return out, nil
}

// recorderAlive is how long a Record call's liveness key lives unless the
// call refreshes it (every third of it while it runs): when a process dies
// mid-call, its marks stop holding newer items back this long after.
const recorderAlive = 10 * time.Second

// keepRecording refreshes the call's liveness key until the returned func
// is called.
func (s *Redis) keepRecording(ctx context.Context, token string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(recorderAlive / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = s.rdb.PExpire(ctx, s.k.recorder(token), recorderAlive).Err() // best effort: a miss only frees the marks early
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// recordEnded drops the liveness key of a call that failed, so its marks
// stop holding newer items back at once. The job's first-event mark stays
// until the event is recorded again, so nothing is lost; at worst a push
// of this call still queued in Redis lands after, alongside a concurrent
// recorder's (the rare duplicate this mark guards against). Best effort.
func (s *Redis) recordEnded(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.rdb.Del(ctx, s.k.recorder(token)).Err()
}

// recordJobs runs step 1. It returns jobsScript's answer ({seq, mode} per
// event), the results so far, and the (sequence number, stream sequence)
// of each event whose marks step 3 clears.
func (s *Redis) recordJobs(ctx context.Context, batch []jobevent.Matched, now time.Time, token string) (modes []int64, out []RecordResult, owned []any, err error) {
	args := make([]any, 0, 7+5*len(batch))
	args = append(args, s.cfg.Prefix, ms(now), int64(s.cfg.JobTTL/time.Second), token,
		ms(now.Add(s.cfg.RecordLease)), ms(now.Add(recordFlagTTL)), recorderAlive.Milliseconds())
	for _, m := range batch {
		kind, data := "u", ""
		if m.Event.Kind == jobevent.Closed {
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
		if modes[2*i+1] == 0 {
			continue
		}
		if modes[2*i+1] == 1 {
			out[i].Recorded = len(batch[i].SubscriptionIDs)
		}
		// Every event not closed, even one that now matches nobody: it
		// may be the redelivery that ends its job's first-event mark.
		owned = append(owned, modes[2*i], batch[i].Event.StreamSeq)
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
// push nothing (jobs modes from step 1). A first pass finds each match's
// subscription (by the matcher's keys when it gave them, else by hashing
// the id), a second places it.
func groupBySubscription(batch []jobevent.Matched, modes []int64) subscriptionItems {
	total, maxKey, keyed := 0, uint32(0), true
	for i, m := range batch {
		if modes[2*i+1] == 0 {
			continue
		}
		total += len(m.SubscriptionIDs)
		if len(m.Keys) != len(m.SubscriptionIDs) {
			keyed = false
			continue
		}
		for _, k := range m.Keys {
			maxKey = max(maxKey, k)
		}
	}
	var g subscriptionItems
	var count, of []int32 // matches per subscription; the subscription of each match
	ok := false
	if keyed && int(maxKey) < 16*total+1<<16 { // an array of keys, not much larger than the batch
		g.ids, count, of, ok = assignByKey(batch, modes, total, maxKey)
	}
	if !ok {
		g.ids, count, of = assignByHash(batch, modes, total)
	}
	g.start = make([]int32, len(g.ids)+1)
	for i, c := range count {
		g.start[i+1] = g.start[i] + c
	}
	next := append([]int32(nil), g.start[:len(g.ids)]...)
	g.items = make([]int64, total)
	g.event = make([]int32, total)
	k := 0
	for i, m := range batch {
		if modes[2*i+1] == 0 {
			continue
		}
		item := modes[2*i]
		if modes[2*i+1] == 2 {
			item = -item
		}
		for range m.SubscriptionIDs {
			n := of[k]
			k++
			g.items[next[n]] = item
			g.event[next[n]] = int32(i)
			next[n]++
		}
	}
	return g
}

// assignByKey numbers the batch's subscriptions through an array indexed
// by the matcher's keys: no hashing. BenchmarkGroupBySubscription, 256
// events of 13,000 matches over 1M subscriptions: 0.29 s a batch, against
// 1.7-1.9 s by hashing. It gives up (ok false) when one key stands for
// two ids in the batch (a filter removed and its slot reused meanwhile).
func assignByKey(batch []jobevent.Matched, modes []int64, total int, maxKey uint32) (ids []string, count, of []int32, ok bool) {
	group := make([]int32, maxKey+1) // key → subscription number + 1
	of = make([]int32, 0, total)
	for i, m := range batch {
		if modes[2*i+1] == 0 {
			continue
		}
		for j, id := range m.SubscriptionIDs {
			n := group[m.Keys[j]] - 1
			if n < 0 {
				n = int32(len(ids))
				group[m.Keys[j]] = n + 1
				ids = append(ids, id)
				count = append(count, 0)
			} else if ids[n] != id {
				return nil, nil, nil, false
			}
			count[n]++
			of = append(of, n)
		}
	}
	return ids, count, of, true
}

// assignByHash numbers the batch's subscriptions through a map of ids.
func assignByHash(batch []jobevent.Matched, modes []int64, total int) (ids []string, count, of []int32) {
	idx := make(map[string]int32, total/4)
	of = make([]int32, 0, total)
	for i, m := range batch {
		if modes[2*i+1] == 0 {
			continue
		}
		for _, id := range m.SubscriptionIDs {
			n, ok := idx[id]
			if !ok {
				n = int32(len(ids))
				idx[id] = n
				ids = append(ids, id)
				count = append(count, 0)
			}
			count[n]++
			of = append(of, n)
		}
	}
	return ids, count, of
}

// pushCall is one pushScript call: its arguments, and the event of each
// known-job item in argument order (to count what was pushed per event).
type pushCall struct {
	args   []any
	known  []int32
	result string // pushScript's answer
}

// push runs step 2: pipelines of up to maxPipelinePairs items, each
// pushScript call up to maxScriptArgs arguments of whole subscriptions,
// pushInFlight pipelines at a time so that Redis works on one while the
// next is built and sent. It adds the known-job items pushed to out.
func (s *Redis) push(ctx context.Context, g subscriptionItems, out []RecordResult, now time.Time) error {
	head := []any{s.cfg.Prefix, ms(now.Add(s.cfg.InstantWindow)), s.cfg.PendingLimit}
	var (
		wg       sync.WaitGroup
		slots    = make(chan struct{}, pushInFlight)
		mu       sync.Mutex
		firstErr error
		done     [][]pushCall // pipelines sent, with their results
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	send := func(calls []pushCall) {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			err := s.runPush(ctx, calls)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			done = append(done, calls)
		}()
	}
	var calls []pushCall
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
			if failed() {
				break
			}
			send(calls)
			calls, pairs = nil, 0
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
	if len(calls) > 0 && !failed() {
		send(calls)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, calls := range done {
		for _, c := range calls {
			if len(c.result) != len(c.known) {
				return wrap("record push result", fmt.Errorf("got %d known-job results, want %d", len(c.result), len(c.known)))
			}
			for j, ev := range c.known {
				if c.result[j] == '1' {
					out[ev].Recorded++
				}
			}
		}
	}
	return nil
}

// pushInFlight is how many push pipelines one Record call has in flight.
// Two keep Redis busy while the client builds the next; more only queue.
const pushInFlight = 2

// runPush sends one pipeline of pushScript calls and stores each call's
// result. A call that failed with NOSCRIPT did not run: when Redis lost
// its scripts (a restart, or SCRIPT FLUSH, possibly while another
// pipeline was loading it again), those calls run again once the script
// is loaded; the others ran and must not run twice.
func (s *Redis) runPush(ctx context.Context, calls []pushCall) error {
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for i, c := range todo {
			cmds[i] = pushScript.EvalSha(ctx, pipe, nil, calls[c].args...)
		}
		_, err := pipe.Exec(ctx)
		var again []int
		for i, cmd := range cmds {
			if cmd.Err() != nil && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
				again = append(again, todo[i])
				continue
			}
			known, err := cmd.Text()
			if err != nil {
				return wrap("record push", err)
			}
			calls[todo[i]].result = known
		}
		if len(again) == 0 || attempt > 0 {
			return wrap("record push", err)
		}
		if lerr := pushScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return wrap("load push script", lerr)
		}
		todo = again
	}
}

// JobRecord is a job record as the notifier reads it at send time.
type JobRecord struct {
	Seq    int64
	Data   []byte // the newest matcher.Job JSON; empty for a closed-first tombstone
	Closed bool
	First  time.Time
}

// Jobs reads the job records for seqs in one round trip; a missing record
// (expired) comes back with Closed set, so it is left out like a closed job.
func (s *Redis) Jobs(ctx context.Context, seqs []int64) ([]JobRecord, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(seqs))
	for i, seq := range seqs {
		cmds[i] = pipe.HMGet(ctx, s.k.job(strconv.FormatInt(seq, 10)), "data", "closed", "first")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, wrap("read jobs", err)
	}
	out := make([]JobRecord, len(seqs))
	for i, c := range cmds {
		v := c.Val()
		j := JobRecord{Seq: seqs[i]}
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

// recorder is a Record call's liveness key (docs/redis.md, rec:<token>).
func (k keys) recorder(token string) string { return k.p + "rec:" + token }
