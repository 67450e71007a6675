// Package store owns jobalert's Redis data model: subscriptions, job records,
// per-subscription pending items with their dedup watermark, the digest
// schedule and outbox, and the change feed that keeps every replica's
// filter index current. docs/redis.md describes every key.
//
// Every multi-key change is one Lua script or one MULTI/EXEC, so a crash
// leaves each change whole or not made. Recording a batch takes three such
// steps (record.go); a crash between them leaves marks that hold newer items
// back until the batch's events are redelivered and recorded, so no item is
// lost or delivered twice (docs/redis.md).
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned when a subscription or digest does not exist.
var ErrNotFound = errors.New("not found")

// Config tunes the data model.
type Config struct {
	// Prefix is put in front of every key.
	Prefix string
	// InstantWindow is how long the first match of an instant subscription
	// waits for more before its email goes out.
	InstantWindow time.Duration
	// PendingLimit is how many pending items a subscription keeps; older
	// ones are counted instead ("and N more"). Default 100 (4x the
	// default digest cap).
	PendingLimit int
	// JobTTL is how long a job record is kept after its last event.
	// Default 30 days.
	JobTTL time.Duration
	// RepostWindow is how long after its last posting a job's aliases
	// make a new posting the same job (reposts.go); 0 turns collapsing off.
	// It must not exceed JobTTL.
	RepostWindow time.Duration
	// FeedLength bounds the change feed stream. Default 100,000 entries.
	FeedLength int64
	// RecordLease bounds how long a Record call may keep the jobs it
	// records from being claimed; it must be longer than any Record call
	// lasts (the consumer's RecordTimeout, 2 minutes; CheckRecordTimeout
	// checks it). Default 3 minutes.
	RecordLease time.Duration
	// PendingTTL is how long an unconfirmed subscription is kept: after it
	// the subscription and everything about it are gone from Redis.
	// Default 7 days (the confirmation link's life).
	PendingTTL time.Duration
	// AddressKey keys the HMAC that names an address in the suppression
	// list, the bounce counts and the per-address rate limit. The server
	// derives it from JOBALERT_SECRET; empty means a fixed, public key
	// (tests and benchmarks only).
	AddressKey []byte
	// PreviousAddressKeys are the address keys of earlier secrets
	// (JOBALERT_SECRET_PREVIOUS). Reads look for an address under each of
	// them too, so a rotation never unsuppresses anyone nor forgets a
	// bounce; writes use AddressKey only, and a suppression found under a
	// previous key only is written under AddressKey as it is read.
	PreviousAddressKeys [][]byte
	// Shards is the number of subscription shards (JOBALERT_REDIS_SHARDS):
	// every subscription lives in shard hash(id) mod Shards, with all of
	// its shard's keys under one hash tag (keys.go). Fixed for a
	// deployment: CheckLayout refuses a value different from the one
	// stored at first start. Default 64.
	Shards int
	// Partition and Partitions (JOBALERT_PARTITION=k/P) make this store
	// load and follow only the filters of the shards s with
	// s mod Partitions == Partition; Partitions 0 or 1 is every shard.
	Partition, Partitions int
	// WaitReplicas is how many replicas must acknowledge each record
	// step's and each claim's writes (WAIT) before the event is acked or
	// the email sent; a shortfall fails the step, which runs again.
	// JOBALERT_REDIS_WAIT_REPLICAS; negative is auto: 1 on a primary with
	// a replica connected, else 0, decided per primary as replicas come
	// and go; 0 (the default) waits for none.
	WaitReplicas int
	// WaitTimeout bounds each WAIT. Default 2 s.
	WaitTimeout time.Duration
}

// Redis is the Redis-backed store. It is safe for concurrent use.
type Redis struct {
	rdb redis.UniversalClient
	cfg Config
	k   keys
	// dueTurn and outboxTurn rotate the shard DueAt and LeaseOutbox
	// start from.
	dueTurn, outboxTurn atomic.Uint32
	live                Liveness // nil: digests wait for their lease
	// tookOwn is set once recoverOrphans has taken back this instance's
	// earlier boots' digests: that happens at start only, so that two
	// live processes given one instance name never take each other's.
	tookOwn atomic.Bool
	// deadSince is when each owner was first seen dead (recoverOrphans).
	deadMu    sync.Mutex
	deadSince map[string]time.Time
	// replicas caches each primary's replica count in auto WAIT mode.
	replicasMu sync.Mutex
	replicas   map[string]replicaCount
}

// New returns a store over rdb. It does not touch Redis.
func New(rdb redis.UniversalClient, cfg Config) *Redis {
	if cfg.PendingLimit <= 0 {
		cfg.PendingLimit = 100
	}
	if cfg.JobTTL <= 0 {
		cfg.JobTTL = 30 * 24 * time.Hour
	}
	if cfg.FeedLength <= 0 {
		cfg.FeedLength = 100_000
	}
	if cfg.RecordLease <= 0 {
		cfg.RecordLease = 3 * time.Minute
	}
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = 7 * 24 * time.Hour
	}
	if len(cfg.AddressKey) == 0 {
		cfg.AddressKey = []byte("jobalert-unkeyed-address")
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 2 * time.Second
	}
	if cfg.Shards <= 0 {
		cfg.Shards = DefaultShards
	}
	return &Redis{rdb: rdb, cfg: cfg, k: keys{p: cfg.Prefix, shards: cfg.Shards}}
}

// CheckRecordTimeout returns an error unless the record lease is longer
// than recordTimeout, the longest a Record call may last (the consumer's
// RecordTimeout): a call still running when its lease runs out no longer
// holds back the claims of the jobs it is recording, so a digest could
// be sent without some of them and send them later in a second one.
func (s *Redis) CheckRecordTimeout(recordTimeout time.Duration) error {
	if s.cfg.RecordLease <= recordTimeout {
		return fmt.Errorf("store: the record lease (%v) must be longer than the record timeout (%v), the longest a Record call may last", s.cfg.RecordLease, recordTimeout)
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *Redis) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func ms(t time.Time) int64 { return t.UnixMilli() }

// runScript runs a script with EVALSHA, loading it first when Redis does not
// have it (after a restart or SCRIPT FLUSH).
func runScript(ctx context.Context, c redis.Scripter, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := s.EvalSha(ctx, c, keys, args...)
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return s.Eval(ctx, c, keys, args...)
	}
	return cmd
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// sumShards runs one counting command per shard in one pipeline and
// returns the sum.
func (s *Redis) sumShards(ctx context.Context, cmd func(redis.Pipeliner, shardKeys) *redis.IntCmd) (int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, s.cfg.Shards)
	for k := range cmds {
		cmds[k] = cmd(pipe, s.k.shard(k))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// ownsShard reports whether shard k is in this store's filter partition.
func (s *Redis) ownsShard(k int) bool {
	return s.cfg.Partitions <= 1 || k%s.cfg.Partitions == s.cfg.Partition
}
