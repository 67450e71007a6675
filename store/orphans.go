package store

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Liveness tells which processes still run (internal/liveness): the
// store records its Owner on every digest it claims or leases, and takes
// over, at once, the digests of owners that no longer beat.
type Liveness interface {
	Owner() string
	// Alive answers for each owner whether its process still beats.
	Alive(ctx context.Context, owners ...string) (map[string]bool, error)
	// SameInstance reports whether owner is an earlier boot of this
	// instance (so dead: this instance restarted).
	SameInstance(owner string) bool
}

// WithLiveness makes the store record its owner on the digests it claims
// and leases, and take over the orphans of dead processes in LeaseOutbox.
// Without it, a dead process's digests wait for their lease to run out.
func (s *Redis) WithLiveness(l Liveness) *Redis {
	s.live = l
	return s
}

func (s *Redis) owner() string {
	if s.live == nil {
		return ""
	}
	return s.live.Owner()
}

// recoverScript makes a shard's orphaned digests due at once: ARGV now
// (ms), then pairs (digest id, its dead owner as read); a pair whose
// owner changed meanwhile (another process took it) is left alone, and a
// digest no longer in the outbox (KEYS[1]) is not put back. KEYS[2] the
// owners hash.
var recoverScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], ARGV[i])
    n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[i])
  end
end
return n
`)

// orphanConfirm is how long an owner must keep looking dead before its
// digests are taken: a liveness key lost in a failover (its last beat not
// yet on the replica) is beaten again within a beat (2 s), so a live
// process is not mistaken for a dead one.
const orphanConfirm = 2500 * time.Millisecond

// recoverOrphans makes due at once the outbox digests whose owner is no
// longer alive: its liveness key is gone (a crash, once its TTL ran out;
// a clean shutdown) and still gone orphanConfirm later by now's clock,
// or, on the first pass only, it is an earlier boot of this instance (a
// restart takes its own orphans back at once; see liveness.SameInstance).
// A liveness read that fails leaves everything to the leases.
func (s *Redis) recoverOrphans(ctx context.Context, now time.Time) error {
	if s.live == nil {
		return nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, s.cfg.Shards)
	for k := range cmds {
		cmds[k] = pipe.HGetAll(ctx, s.k.shard(k).owners())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap("outbox owners", err)
	}
	var owners []string
	seen := map[string]bool{}
	for _, c := range cmds {
		for _, o := range c.Val() {
			if !seen[o] {
				seen[o] = true
				owners = append(owners, o)
			}
		}
	}
	if len(owners) == 0 {
		s.tookOwn.Store(true)
		return nil
	}
	alive, err := s.live.Alive(ctx, owners...)
	if err != nil {
		return nil // the leases decide
	}
	self := s.live.Owner()
	// An earlier boot of this instance is taken for dead on the first
	// pass only (a restart takes its own back at once): afterwards a
	// claim whose owner beats is never taken, even from a live process
	// that was given the same instance name by mistake.
	atStart := !s.tookOwn.Load()
	s.deadMu.Lock()
	if s.deadSince == nil {
		s.deadSince = map[string]time.Time{}
	}
	confirmed := map[string]bool{}
	for _, o := range owners {
		switch {
		case o == self:
		case atStart && s.live.SameInstance(o):
			// Its key may not have expired yet: it is taken for this
			// instance's crashed predecessor, which is why an instance
			// name must be unique among the processes running at once.
			confirmed[o] = true
		case alive[o]:
			delete(s.deadSince, o)
		default:
			since, seen := s.deadSince[o]
			if !seen {
				s.deadSince[o] = now
			} else if now.Sub(since) >= orphanConfirm {
				confirmed[o] = true
			}
		}
	}
	for o := range s.deadSince {
		if !seen[o] {
			delete(s.deadSince, o) // its digests are gone
		}
	}
	s.deadMu.Unlock()
	dead := func(o string) bool { return confirmed[o] }
	var shards []int
	var args [][]any
	for k, c := range cmds {
		a := []any{ms(now)}
		for id, o := range c.Val() {
			if dead(o) {
				a = append(a, id, o)
			}
		}
		if len(a) > 1 {
			shards = append(shards, k)
			args = append(args, a)
		}
	}
	if len(shards) == 0 {
		s.tookOwn.Store(true)
		return nil
	}
	_, err = s.evalEach(ctx, recoverScript, len(shards), func(j int) []string {
		t := s.k.shard(shards[j])
		return []string{t.outbox(), t.owners()}
	}, func(j int) []any { return args[j] })
	if err != nil {
		return wrap("recover orphaned digests", err)
	}
	s.tookOwn.Store(true)
	return nil
}
