package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/jobevent"
)

// ResolveReposts resolves a batch of events, in order, with the configured
// RepostWindow at the current time: ResolveRepostsAt.
func (s *Redis) ResolveReposts(ctx context.Context, evs []jobevent.Event) ([]jobevent.Repost, error) {
	return s.ResolveRepostsAt(ctx, evs, s.cfg.RepostWindow, time.Now())
}

// ResolveRepostsAt gives each event of evs, in order, the answer
// ResolveRepostAt would give it called one event after the other, in a few
// pipelined round trips instead of several per event: the consumer
// resolves every batch before recording it. It reads the state of the
// batch's ids and aliases (three pipelines), decides every event in
// memory, writes the aliases (one pipeline) and then the decisions (one
// more). When another consumer took one of the aliases meanwhile (a SET NX
// that fails), the events from the first one concerned are resolved again
// one by one, which is safe against any interleaving.
func (s *Redis) ResolveRepostsAt(ctx context.Context, evs []jobevent.Event, window time.Duration, now time.Time) ([]jobevent.Repost, error) {
	out := make([]jobevent.Repost, len(evs))
	if len(evs) == 0 {
		return out, nil
	}
	// 1. What each id resolved to before.
	pipe := s.rdb.Pipeline()
	known := map[string]*redis.MapStringStringCmd{}
	for _, ev := range evs {
		if _, ok := known[ev.Job.ID]; !ok {
			known[ev.Job.ID] = pipe.HGetAll(ctx, s.k.repostID(ev.Job.ID))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, wrap("resolve reposts", err)
	}
	of := map[string]jobevent.Repost{}
	had := map[string]bool{} // ids resolved before this batch
	for id, c := range known {
		if h := c.Val(); h["of"] != "" {
			of[id] = jobevent.Repost{Of: h["of"], Reason: jobevent.RepostReason(h["reason"])}
			had[id] = true
		}
	}

	// 2. The aliases of the postings to resolve, and whether the jobs
	// they name are closed.
	aliasesOf := make([][]alias, len(evs))
	aliasVal := map[string]string{}
	if window > 0 {
		pipe = s.rdb.Pipeline()
		gets := map[string]*redis.StringCmd{}
		for i, ev := range evs {
			if ev.Kind != jobevent.Created {
				continue
			}
			if _, ok := of[ev.Job.ID]; ok {
				continue
			}
			aliasesOf[i] = s.aliases(&evs[i].Job)
			for _, a := range aliasesOf[i] {
				if _, ok := gets[a.key]; !ok {
					gets[a.key] = pipe.Get(ctx, a.key)
				}
			}
		}
		if len(gets) > 0 {
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return nil, wrap("resolve reposts", err)
			}
			for k, c := range gets {
				if v := c.Val(); v != "" {
					aliasVal[k] = v
				}
			}
		}
	}
	closed := map[string]bool{}
	if len(aliasVal) > 0 {
		pipe = s.rdb.Pipeline()
		ex := map[string]*redis.IntCmd{}
		check := func(v string) {
			if _, ok := ex[v]; !ok {
				ex[v] = pipe.Exists(ctx, s.k.repostClosed(v))
			}
		}
		for _, v := range aliasVal {
			check(v)
		}
		// The batch's new postings may come to be named by an alias too.
		for i := range evs {
			if aliasesOf[i] != nil {
				check(evs[i].Job.ID)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, wrap("resolve reposts", err)
		}
		for v, c := range ex {
			closed[v] = c.Val() > 0
		}
	}

	// 3. Decide, in order, as ResolveRepostAt would; collect the writes.
	type aliasWrite struct {
		ev   int
		key  string
		val  string
		mode byte // 'r' renew, 'n' set if absent, 's' set
	}
	var aw []aliasWrite
	decided := make([]bool, len(evs)) // an answer to write under the event's id
	for i, ev := range evs {
		id := ev.Job.ID
		got := jobevent.Repost{Of: id}
		if r, ok := of[id]; ok {
			got = r
		} else if aliasesOf[i] != nil {
			for _, a := range aliasesOf[i] {
				if v := aliasVal[a.key]; v != "" && v != id && !closed[v] {
					got = jobevent.Repost{Of: v, Reason: a.reason}
					break
				}
			}
			for _, a := range aliasesOf[i] {
				switch v := aliasVal[a.key]; {
				case v == got.Of:
					aw = append(aw, aliasWrite{i, a.key, got.Of, 'r'})
				case v == "":
					aw = append(aw, aliasWrite{i, a.key, got.Of, 'n'})
					aliasVal[a.key] = got.Of
				case v == id || got.Of == id:
					aw = append(aw, aliasWrite{i, a.key, got.Of, 's'})
					aliasVal[a.key] = got.Of
				}
			}
			of[id] = got
			decided[i] = true
		}
		if ev.Kind == jobevent.Closed {
			closed[got.Of] = true
		}
		out[i] = got
	}

	// 4. The aliases; a lost SET NX sends the rest to the one-by-one path.
	redo := len(evs)
	if len(aw) > 0 {
		pipe = s.rdb.Pipeline()
		cmds := make([]redis.Cmder, len(aw))
		for k, w := range aw {
			switch w.mode {
			case 'r':
				cmds[k] = pipe.PExpire(ctx, w.key, window)
			case 'n':
				cmds[k] = pipe.SetNX(ctx, w.key, w.val, window)
			default:
				cmds[k] = pipe.Set(ctx, w.key, w.val, window)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, wrap("resolve reposts", err)
		}
		for k, w := range aw {
			if c, ok := cmds[k].(*redis.BoolCmd); ok && w.mode == 'n' && !c.Val() && w.ev < redo {
				redo = w.ev
			}
		}
	}

	// 5. The answers of the events before redo, and the closes.
	pipe = s.rdb.Pipeline()
	at := strconv.FormatInt(ms(now), 10)
	for i := range evs[:redo] {
		ev := &evs[i]
		if decided[i] {
			k := s.k.repostID(ev.Job.ID)
			pipe.HSet(ctx, k, "of", out[i].Of, "reason", string(out[i].Reason), "at", at)
			pipe.Expire(ctx, k, s.cfg.JobTTL)
		} else if had[ev.Job.ID] {
			pipe.Expire(ctx, s.k.repostID(ev.Job.ID), s.cfg.JobTTL)
		}
		if ev.Kind == jobevent.Closed {
			pipe.Set(ctx, s.k.repostClosed(out[i].Of), ms(now), s.cfg.JobTTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, wrap("resolve reposts", err)
	}
	for i := redo; i < len(evs); i++ {
		r, err := s.ResolveRepostAt(ctx, evs[i], window, now)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}
