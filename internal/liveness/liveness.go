// Package liveness tells which jobalert processes are still running, so that
// work a dead process had claimed (outbox digests, webhook deliveries) is
// taken over within seconds instead of after its lease.
//
// Each process has an owner id, "<instance>/<boot id>": the instance is
// the stable name of the machine or container (JOBALERT_INSTANCE), the
// boot id is new at every start: the start time (16 hex digits of Unix
// nanoseconds, so boot ids sort by start) and 6 random hex digits. While
// the process runs, Run keeps the key "<prefix>live:<owner>" set with a
// short expiry (TTL, refreshed every Every); a clean shutdown deletes it,
// a crash lets it expire. A claim
// records its owner; whoever finds a claim whose owner is not Alive may take
// it, and a restarted process whose instance name matches (SameInstance)
// takes its own orphans back at once, without waiting for the key to
// expire. Only an earlier boot counts: two processes that were given the
// same instance name by mistake never take each other's claims for
// orphans the other way round, and a process takes its own orphans only
// once, at start (the caller's choice).
//
// Each owner has a key of its own, in whatever Redis Cluster slot its name
// hashes to: Alive asks them with one pipelined EXISTS per owner, which the
// cluster client splits by node. Expiry is Redis's (PX); the local clock
// (WithClock) only times a reader's second look at an owner it saw dead.
package liveness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/clock"
)

// Defaults: a key lives 6 s and is refreshed every 2 s, so two refreshes
// may fail (a slow Redis, a failover) before a live process looks dead, and
// a dead one is noticed within 6 s.
const (
	DefaultTTL   = 6 * time.Second
	DefaultEvery = 2 * time.Second
)

// Liveness is one process's liveness key and the reader of the others'.
type Liveness struct {
	rdb      redis.Cmdable
	prefix   string
	instance string
	owner    string
	ttl      time.Duration
	every    time.Duration
	clock    clock.Clock
}

// New returns the liveness of a process of instance (JOBALERT_INSTANCE),
// with a fresh boot id, keyed under prefix (JOBALERT_REDIS_PREFIX). The
// instance must not contain "/" or braces, which config already refuses.
func New(rdb redis.Cmdable, prefix, instance string) *Liveness {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	boot := fmt.Sprintf("%016x%s", time.Now().UnixNano(), hex.EncodeToString(b))
	return &Liveness{
		rdb: rdb, prefix: prefix, instance: instance, owner: instance + "/" + boot,
		ttl: DefaultTTL, every: DefaultEvery, clock: clock.Real{},
	}
}

// WithTiming sets how long a beat lasts and how often it is refreshed
// (tests shorten both); every must be shorter than ttl.
func (l *Liveness) WithTiming(ttl, every time.Duration) *Liveness {
	l.ttl, l.every = ttl, every
	return l
}

// WithClock sets the clock that readers measure Every with (Now); the
// keys themselves expire in Redis's time. Tests move a clock.Fake.
func (l *Liveness) WithClock(c clock.Clock) *Liveness {
	l.clock = c
	return l
}

// Now is the time of the liveness clock (the real time by default), which
// readers use to tell when an owner seen dead may be looked at again.
func (l *Liveness) Now() time.Time { return l.clock.Now() }

// Owner is this process's owner id, "<instance>/<boot id>", to record in
// every claim.
func (l *Liveness) Owner() string { return l.owner }

// TTL is how long a beat lasts: a process that stops beating looks dead
// at most this long after its last beat.
func (l *Liveness) TTL() time.Duration { return l.ttl }

// Every is how often a running process beats: a key that was lost (a
// Redis failover that dropped the last beat) is back within this long, so
// a reader that saw an owner dead once looks again this much later before
// it takes the owner's work.
func (l *Liveness) Every() time.Duration { return l.every }

func (l *Liveness) key(owner string) string { return l.prefix + "live:" + owner }

// Beat sets this process's key once, with the TTL. Run calls it; a
// process calls it once itself before its first claim, so that no other
// process takes that claim for an orphan.
func (l *Liveness) Beat(ctx context.Context) error {
	if err := l.rdb.Set(ctx, l.key(l.owner), "1", l.ttl).Err(); err != nil {
		return fmt.Errorf("liveness beat: %w", err)
	}
	return nil
}

// Run beats at once and then every Every until ctx is done; then it
// deletes the key (a clean shutdown: the claims left are taken over at
// once) and returns nil. A failed beat is reported to onErr (nil: ignored)
// and retried at the next tick: the key outlives two missed beats.
func (l *Liveness) Run(ctx context.Context, onErr func(error)) error {
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		if err := l.Beat(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return l.Retire(context.WithoutCancel(ctx))
		case <-t.C:
		}
	}
}

// Retire deletes this process's key: from now on it looks dead and its
// claims may be taken. It waits at most 2 s for Redis.
func (l *Liveness) Retire(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := l.rdb.Del(ctx, l.key(l.owner)).Err(); err != nil {
		return fmt.Errorf("liveness retire: %w", err)
	}
	return nil
}

// Alive answers, for each owner, whether its process still beats: one
// EXISTS each, pipelined. An empty owner (a claim written before owners
// were recorded) is never alive. On error no answer is given: the caller
// must then treat every owner as alive and wait for the leases.
func (l *Liveness) Alive(ctx context.Context, owners ...string) (map[string]bool, error) {
	alive := make(map[string]bool, len(owners))
	var cmds []*redis.IntCmd
	var asked []string
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, o := range owners {
			if _, seen := alive[o]; seen || o == "" {
				alive[o] = false
				continue
			}
			alive[o] = false
			asked = append(asked, o)
			cmds = append(cmds, p.Exists(ctx, l.key(o)))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("liveness: %w", err)
	}
	for i, c := range cmds {
		alive[asked[i]] = c.Val() == 1
	}
	return alive, nil
}

// SameInstance reports whether owner is an earlier boot of this instance:
// the same instance name, a boot id that sorts before this one's. Such an
// owner is dead (this instance restarted), so its claims are this
// process's to take back at once, at start, without waiting for its key
// to expire.
func (l *Liveness) SameInstance(owner string) bool {
	inst, boot, ok := strings.Cut(owner, "/")
	_, mine, _ := strings.Cut(l.owner, "/")
	return ok && inst == l.instance && boot < mine
}
