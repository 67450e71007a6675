package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Layout is the key layout version the meta hash names once a keyspace
// is sharded (P{meta}: layout, shards).
const Layout = "sharded-1"

// layoutMigrating is the meta hash's layout while jobalert migrate runs
// (or after it was stopped part-way).
const layoutMigrating = "migrating"

// ErrOldLayout is returned by CheckLayout when Redis holds the keys of the
// unsharded layout that jobalert migrate moves.
var ErrOldLayout = errors.New("old layout")

// CheckLayout makes sure Redis holds this store's key layout, with its
// shard count: on a keyspace with no meta hash and none of the old
// layout's keys (a first start) it stores the layout and Config.Shards;
// it refuses, with an error that says what to do, a different stored
// shard count, a migration left unfinished, and the old unsharded layout
// (errors.Is ErrOldLayout; `jobalert migrate` moves it).
func (s *Redis) CheckLayout(ctx context.Context) error {
	if strings.ContainsAny(s.cfg.Prefix, "{}") {
		return fmt.Errorf("store: the key prefix %q must not contain { or }: they would change every key's hash slot", s.cfg.Prefix)
	}
	for range 3 {
		meta, err := s.rdb.HGetAll(ctx, s.k.meta()).Result()
		if err != nil {
			return wrap("read the layout", err)
		}
		if len(meta) > 0 {
			return s.checkMeta(meta)
		}
		old, err := s.oldLayoutKeys(ctx)
		if err != nil {
			return wrap("look for the old layout", err)
		}
		if len(old) > 0 {
			return fmt.Errorf("store: %w: Redis holds the unsharded key layout under prefix %q (%s); stop every jobalert process and run `jobalert migrate` to move it to %d shards (docs/scaling.md)",
				ErrOldLayout, s.cfg.Prefix, strings.Join(old, ", "), s.cfg.Shards)
		}
		// A first start: the first process to get here writes the meta
		// hash; the others read it.
		ok, err := s.rdb.HSetNX(ctx, s.k.meta(), "shards", s.cfg.Shards).Result()
		if err != nil {
			return wrap("store the layout", err)
		}
		if ok {
			return wrap("store the layout", s.rdb.HSet(ctx, s.k.meta(), "layout", Layout).Err())
		}
	}
	return errors.New("store: the layout's meta hash keeps changing; is another process migrating?")
}

func (s *Redis) checkMeta(meta map[string]string) error {
	switch meta["layout"] {
	case Layout, "":
		// "" is a first start still writing the hash.
	case layoutMigrating:
		return fmt.Errorf("store: %w: a `jobalert migrate` of prefix %q did not finish; run it again (it resumes where it stopped)", ErrOldLayout, s.cfg.Prefix)
	default:
		return fmt.Errorf("store: Redis holds key layout %q under prefix %q, which this version does not know (it knows %q)", meta["layout"], s.cfg.Prefix, Layout)
	}
	n, err := strconv.Atoi(meta["shards"])
	if err != nil {
		return fmt.Errorf("store: the stored shard count %q under prefix %q is not a number", meta["shards"], s.cfg.Prefix)
	}
	if n != s.cfg.Shards {
		return fmt.Errorf("store: JOBALERT_REDIS_SHARDS is %d but this keyspace (prefix %q) was created with %d shards; the shard count is fixed for a deployment: set JOBALERT_REDIS_SHARDS=%d", s.cfg.Shards, s.cfg.Prefix, n, n)
	}
	return nil
}

// oldLayoutKeys returns which of the unsharded layout's fixed keys exist.
func (s *Redis) oldLayoutKeys(ctx context.Context) ([]string, error) {
	names := oldKeys(s.cfg.Prefix)
	probe := []string{names.filters, names.due, names.jobseq, names.outbox, names.recording}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(probe))
	for i, k := range probe {
		cmds[i] = pipe.Exists(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var found []string
	for i, c := range cmds {
		if c.Val() > 0 {
			found = append(found, probe[i])
		}
	}
	return found, nil
}

// oldLayout names the keys of the unsharded layout (before sharding), which
// CheckLayout looks for and jobalert migrate moves.
type oldLayout struct {
	p                                                 string
	filters, due, jobseq, outbox, recording, recuntil string
}

func oldKeys(p string) oldLayout {
	return oldLayout{p: p, filters: p + "filters", due: p + "due", jobseq: p + "jobseq", outbox: p + "outbox",
		recording: p + "recording", recuntil: p + "recuntil"}
}

func (o oldLayout) sub(id string) string     { return o.p + "sub:" + id }
func (o oldLayout) pending(id string) string { return o.p + "pend:" + id }
func (o oldLayout) job(seq string) string    { return o.p + "job:" + seq }
func (o oldLayout) jid(id string) string     { return o.p + "jid:" + id }
func (o oldLayout) digest(id string) string  { return o.p + "digest:" + id }
