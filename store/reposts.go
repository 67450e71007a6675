package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// Reposts (docs/events.md, "Reposts"; docs/redis.md). Before an event is
// recorded, the consumer asks ResolveRepost which job it is: a jobs.created
// whose canonical_id, url, or normalised company + title + first location
// was seen on a job within the repost window is that job, and is recorded
// as a jobs.updated of it. The state is one key per alias and per job id,
// each read and written with single-key commands, so every key may live in
// its own Redis Cluster slot:
//
//	repost:a:<kind>:<hash>  STRING the first job id of the alias; TTL the window,
//	                        renewed by every posting that resolves through it
//	repost:id:<job id>      HASH   of (the job id its events are recorded under),
//	                        reason, at (ms); TTL JobTTL, renewed by every event
//	repost:closed:<job id>  STRING a job closed; TTL JobTTL
//
// Window bounds: the job record lives JobTTL after its last event, and a
// posting resolved to it is an event of it, so an alias (at most the window,
// which config refuses above JobTTL) never outlives the record it points
// to: a repost can never find an expired record and alert everyone again.

func (k keys) repostAlias(kind, h string) string { return k.p + "repost:a:" + kind + ":" + h }
func (k keys) repostID(id string) string         { return k.p + "repost:id:" + id }
func (k keys) repostClosed(id string) string     { return k.p + "repost:closed:" + id }

// alias is one way a posting names its role.
type alias struct {
	reason jobevent.RepostReason
	key    string
}

// RepostAliases returns the alias values of a job, in the order they are
// tried: its canonical_id, its url (scheme and host in lower case, without
// fragment or utm_ parameters), and its normalised company, title tokens and
// first location (docs/matching.md §1). An empty value is left out.
func RepostAliases(j *matcher.Job) map[jobevent.RepostReason]string {
	out := map[jobevent.RepostReason]string{}
	if j.CanonicalID != "" {
		out[jobevent.RepostCanonicalID] = j.CanonicalID
	}
	if u := normalURL(j.URL); u != "" {
		out[jobevent.RepostApplyURL] = u
	}
	company, title := matcher.Key(j.Company), strings.Join(matcher.Tokens(j.Title), " ")
	if company != "" && title != "" {
		loc := ""
		if len(j.Locations) > 0 {
			loc = matcher.Key(j.Locations[0])
		}
		out[jobevent.RepostSameRole] = company + "\x00" + title + "\x00" + loc
	}
	return out
}

var aliasOrder = []jobevent.RepostReason{jobevent.RepostCanonicalID, jobevent.RepostApplyURL, jobevent.RepostSameRole}

func normalURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	u.Scheme, u.Host, u.Fragment, u.RawFragment = strings.ToLower(u.Scheme), strings.ToLower(u.Host), "", ""
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(strings.ToLower(k), "utm_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u.String()
}

func (s *Redis) aliases(j *matcher.Job) []alias {
	vals := RepostAliases(j)
	var out []alias
	for _, r := range aliasOrder {
		if v, ok := vals[r]; ok {
			h := sha256.Sum256([]byte(v))
			out = append(out, alias{reason: r, key: s.k.repostAlias(string(r), hex.EncodeToString(h[:16]))})
		}
	}
	return out
}

// ResolveRepostAt returns the job id ev is to be recorded under (see the
// comment above). A jobs.created resolves through its aliases when window
// is positive; a jobs.updated or jobs.closed, and a redelivered
// jobs.created, get what the first jobs.created of their id got. A repost
// of a job that was closed is a new job: the role is open again, and
// subscribers who have never seen it must get it. A window of 0 leaves
// new ids alone (ids already resolved keep their answer). Errors are
// Redis's and transient.
func (s *Redis) ResolveRepostAt(ctx context.Context, ev jobevent.Event, window time.Duration, now time.Time) (jobevent.Repost, error) {
	id := ev.Job.ID
	idk := s.k.repostID(id)
	h, err := s.rdb.HGetAll(ctx, idk).Result()
	if err != nil {
		return jobevent.Repost{}, wrap("resolve repost", err)
	}
	own := jobevent.Repost{Of: id}
	if of := h["of"]; of != "" {
		own = jobevent.Repost{Of: of, Reason: jobevent.RepostReason(h["reason"])}
		if err := s.rdb.Expire(ctx, idk, s.cfg.JobTTL).Err(); err != nil {
			return jobevent.Repost{}, wrap("resolve repost", err)
		}
	} else if ev.Kind == jobevent.Created && window > 0 {
		if own, err = s.resolveAliases(ctx, &ev.Job, window); err != nil {
			return jobevent.Repost{}, err
		}
		pipe := s.rdb.TxPipeline()
		pipe.HSet(ctx, idk, "of", own.Of, "reason", string(own.Reason), "at", strconv.FormatInt(ms(now), 10))
		pipe.Expire(ctx, idk, s.cfg.JobTTL)
		if _, err := pipe.Exec(ctx); err != nil {
			return jobevent.Repost{}, wrap("resolve repost", err)
		}
	}
	if ev.Kind == jobevent.Closed {
		if err := s.rdb.Set(ctx, s.k.repostClosed(own.Of), ms(now), s.cfg.JobTTL).Err(); err != nil {
			return jobevent.Repost{}, wrap("resolve repost", err)
		}
	}
	return own, nil
}

// resolveAliases finds the open job one of j's aliases names, or makes j
// the job of its aliases.
func (s *Redis) resolveAliases(ctx context.Context, j *matcher.Job, window time.Duration) (jobevent.Repost, error) {
	as := s.aliases(j)
	vals, err := s.getAll(ctx, as)
	if err != nil {
		return jobevent.Repost{}, err
	}
	got := jobevent.Repost{Of: j.ID}
	for i, a := range as {
		if vals[i] == "" || vals[i] == j.ID {
			continue
		}
		closed, err := s.rdb.Exists(ctx, s.k.repostClosed(vals[i])).Result()
		if err != nil {
			return jobevent.Repost{}, wrap("resolve repost", err)
		}
		if closed == 0 {
			got = jobevent.Repost{Of: vals[i], Reason: a.reason}
			break
		}
	}
	// Point every alias at the job found: an absent one with SET NX (a
	// concurrent first posting of the same role may win it: then this
	// posting is that one's repost), one pointing at a closed job or at
	// this posting by overwriting, one pointing at the job found by renewing.
	for i, a := range as {
		switch {
		case vals[i] == got.Of:
			if err := s.rdb.PExpire(ctx, a.key, window).Err(); err != nil {
				return jobevent.Repost{}, wrap("resolve repost", err)
			}
		case vals[i] == "":
			ok, err := s.rdb.SetNX(ctx, a.key, got.Of, window).Result()
			if err != nil {
				return jobevent.Repost{}, wrap("resolve repost", err)
			}
			if !ok && got.Of == j.ID {
				v, err := s.rdb.Get(ctx, a.key).Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					return jobevent.Repost{}, wrap("resolve repost", err)
				}
				if v != "" && v != j.ID {
					// Lost the race: start over with the winner in place.
					return s.resolveAliases(ctx, j, window)
				}
			}
		case vals[i] == j.ID || got.Of == j.ID:
			// A closed job's alias (or this posting's own, left by a crash).
			if err := s.rdb.Set(ctx, a.key, got.Of, window).Err(); err != nil {
				return jobevent.Repost{}, wrap("resolve repost", err)
			}
		}
		// An alias naming another open job than the one found is left to it.
	}
	return got, nil
}

func (s *Redis) getAll(ctx context.Context, as []alias) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(as))
	for i, a := range as {
		cmds[i] = pipe.Get(ctx, a.key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap("resolve repost", err)
	}
	out := make([]string, len(as))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// RepostInfo is what the store knows of a job id's repost resolution, for
// `jobalert admin job ID`.
type RepostInfo struct {
	ID     string                `json:"id"`
	Of     string                `json:"of"`     // the job its events are recorded under; "" when never resolved
	Reason jobevent.RepostReason `json:"reason"` // why Of is not ID; "" when it is
	At     time.Time             `json:"at,omitzero"`
	Closed bool                  `json:"closed"` // Of was closed
}

// RepostLookup returns the repost resolution of a job id.
func (s *Redis) RepostLookup(ctx context.Context, id string) (RepostInfo, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.repostID(id)).Result()
	if err != nil {
		return RepostInfo{}, wrap("repost lookup", err)
	}
	info := RepostInfo{ID: id, Of: h["of"], Reason: jobevent.RepostReason(h["reason"])}
	if n, err := strconv.ParseInt(h["at"], 10, 64); err == nil {
		info.At = time.UnixMilli(n).UTC()
	}
	of := info.Of
	if of == "" {
		of = id
	}
	n, err := s.rdb.Exists(ctx, s.k.repostClosed(of)).Result()
	if err != nil {
		return RepostInfo{}, wrap("repost lookup", err)
	}
	info.Closed = n > 0
	return info, nil
}
