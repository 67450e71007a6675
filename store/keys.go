package store

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// DefaultShards is the number of subscription shards when Config.Shards
// is not set (JOBALERT_REDIS_SHARDS).
const DefaultShards = 64

// keys builds every key name the store uses; no Lua script builds one
// (each receives its keys in KEYS), and docs/redis.md lists them.
//
// A subscription lives in shard hash(id) mod shards (shardOf), and
// everything of a shard is under one hash tag, P{s<k>}: on Redis Cluster
// a shard is one slot, so each script touches one slot. A job's record is
// under its own tag, P{j<job id>}; the change feed, address sets,
// suppressions, bounces, single-use links and the layout's meta hash each
// are one key of their own, and the rate limits share the tag P{rate}.
type keys struct {
	p      string
	shards int
}

// shardOf returns a subscription's shard: FNV-1a (32 bits) of its id,
// modulo the number of shards. It must never change for a deployment.
func (k keys) shardOf(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(k.shards))
}

// shard returns the key builder of shard n.
func (k keys) shard(n int) shardKeys { return shardKeys(k.p + "{s" + strconv.Itoa(n) + "}") }

// of returns the key builder of a subscription's shard.
func (k keys) of(subID string) shardKeys { return k.shard(k.shardOf(subID)) }

func (k keys) sub(id string) string     { return k.of(id).sub(id) }
func (k keys) pending(id string) string { return k.of(id).pending(id) }

// job is a job's record: id, newest data, first seen, closed, and the
// shards where its first event may have left a mark (fs).
func (k keys) job(id string) string       { return k.p + "{j" + id + "}job" }
func (k keys) feed() string               { return k.p + "changes" }
func (k keys) email(hash string) string   { return k.p + "email:" + hash }
func (k keys) suppressed() string         { return k.p + "suppressed" }
func (k keys) bounces() string            { return k.p + "bounces" }
func (k keys) rate(kind, v string) string { return k.p + "{rate}" + kind + ":" + v }
func (k keys) once(h string) string       { return k.p + "once:" + h }
func (k keys) meta() string               { return k.p + "{meta}" }

// telegramChat is the set of subscriptions bound to a Telegram chat.
func (k keys) telegramChat(chat int64) string {
	return k.p + "{tgchat:" + strconv.FormatInt(chat, 10) + "}"
}

// chatDead is the chat dead letters' index; chatDeadLetter one of them.
func (k keys) chatDead() string                { return k.p + "{chatdead}" }
func (k keys) chatDeadLetter(id string) string { return k.p + "{chatdead}:" + id }

// shardKeys builds the keys of one shard: its hash tag, then the name.
type shardKeys string

func (t shardKeys) sub(id string) string     { return string(t) + "sub:" + id }
func (t shardKeys) pending(id string) string { return string(t) + "pend:" + id }

// older is a subscription's set of the jobs first seen before it was
// activated (sequence number <= its born field) that it has been sent
// since, through an update or a repost: its watermark cannot tell them
// (docs/redis.md, "Jobs older than a subscription").
func (t shardKeys) older(id string) string { return string(t) + "older:" + id }
func (t shardKeys) due() string            { return string(t) + "due" }
func (t shardKeys) filters() string        { return string(t) + "filters" }
func (t shardKeys) jobseq() string         { return string(t) + "jobseq" }

// jid maps a job id to the job's sequence number in this shard; jobs the
// other way (the sender reads a digest's jobs through it); jobexp holds
// when each sequence number's two entries expire (the job TTL after its
// last event), pruned by the jobs step.
func (t shardKeys) jid() string       { return string(t) + "jid" }
func (t shardKeys) jobs() string      { return string(t) + "jobs" }
func (t shardKeys) jobexp() string    { return string(t) + "jobexp" }
func (t shardKeys) recording() string { return string(t) + "recording" }
func (t shardKeys) recuntil() string  { return string(t) + "recuntil" }

// live holds the Record calls' liveness: token → until when (Redis
// server time, ms) the call counts as alive.
func (t shardKeys) live() string   { return string(t) + "live" }
func (t shardKeys) outbox() string { return string(t) + "outbox" }

// owners holds which process leased each digest in the outbox: digest id
// → owner id (internal/liveness), so that a live process takes a dead
// one's digests over within seconds rather than after the lease.
func (t shardKeys) owners() string { return string(t) + "owners" }

// feedSubs is the set of the shard's active subscriptions with the feed
// channel, feedVer its change counter (FeedSubscribers).
func (t shardKeys) feedSubs() string { return string(t) + "feedsubs" }
func (t shardKeys) feedVer() string  { return string(t) + "feedver" }

// alerts counts a subscription's instant alerts on one local day (the
// daily cap).
func (t shardKeys) alerts(id, day string) string { return string(t) + "alerts:" + id + ":" + day }
func (t shardKeys) digest(id string) string      { return string(t) + "digest:" + id }

// digestShard returns the shard of a digest id (DigestID: the
// subscription id, a dot, the due time; a suffix after a dash).
func (k keys) digestShard(id string) int {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		return k.shardOf(id[:i])
	}
	return k.shardOf(id)
}

func (k keys) digest(id string) string { return k.shard(k.digestShard(id)).digest(id) }
func (k keys) outboxOf(id string) string {
	return k.shard(k.digestShard(id)).outbox()
}

// SubscriptionKeys names a subscription's keys in the sharded layout
// (docs/redis.md), for tests and tools that look at Redis directly.
type SubscriptionKeys struct {
	Sub, Pending, Older string
	Shard               ShardKeys
}

// ShardKeys names a shard's own keys.
type ShardKeys struct {
	Due, Filters, Outbox, JobSeq, Jid, Jobs, JobExp, Recording string
}

// JobKey returns the key of a job's record under prefix.
func JobKey(prefix, jobID string) string { return keys{p: prefix}.job(jobID) }

// KeysOf returns the keys of subscription subID under prefix with shards
// shards (0 means DefaultShards).
func KeysOf(prefix string, shards int, subID string) SubscriptionKeys {
	if shards <= 0 {
		shards = DefaultShards
	}
	k := keys{p: prefix, shards: shards}
	t := k.of(subID)
	return SubscriptionKeys{Sub: t.sub(subID), Pending: t.pending(subID), Older: t.older(subID), Shard: ShardKeysOf(prefix, shards, k.shardOf(subID))}
}

// ShardKeysOf returns the keys of shard n under prefix.
func ShardKeysOf(prefix string, shards, n int) ShardKeys {
	t := keys{p: prefix, shards: shards}.shard(n)
	return ShardKeys{Due: t.due(), Filters: t.filters(), Outbox: t.outbox(), JobSeq: t.jobseq(), Jid: t.jid(), Jobs: t.jobs(), JobExp: t.jobexp(), Recording: t.recording()}
}

// ShardOf returns the shard of subscription id among shards shards (0
// means DefaultShards): FNV-1a of the id modulo shards.
func ShardOf(id string, shards int) int {
	if shards <= 0 {
		shards = DefaultShards
	}
	return keys{shards: shards}.shardOf(id)
}
