package webhook

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the only writers of the delivery queue. Every
// webhook key carries the hash tag {wh} (Service.key: "<prefix>{wh}q",
// "<prefix>{wh}d:<id>", ...), so on Redis Cluster they all live in one
// slot, on one primary: the queue, the per-URL, per-host and
// per-subscription in-flight sets and the breakers are shared by every
// delivery, and one slot keeps each claim and outcome a single atomic
// script (docs/webhooks.md, "Redis keys", says why one primary is enough).
//
// Each script declares in KEYS every key it knows before it runs; the
// claim, delete and recovery scripts also reach keys they find on the
// way (the delivery records of the ids in the queue, their endpoints,
// breakers and in-flight sets): those they build inside Lua from ARGV[1],
// the tagged base "<prefix>{wh}", so they are in the slot of KEYS[1] too.
// Times are Unix milliseconds of the service clock.

// luaIndex keeps {wh}s:<sub>, the index of a subscription's delivery
// records that DeleteEndpoint purges: delivery id -> when its record
// expires ('+inf' while queued). Entries of expired records are trimmed
// on every write, and the key expires with its last finite entry.
const luaIndex = `
local function index(sk, id, score, now)
  redis.call('ZADD', sk, score, id)
  redis.call('ZREMRANGEBYSCORE', sk, '-inf', '(' .. now)
  local top = redis.call('ZRANGE', sk, -1, -1, 'WITHSCORES')
  if top[2] == nil then return end
  if top[2] == 'inf' then
    redis.call('PERSIST', sk)
  else
    redis.call('PEXPIRE', sk, math.max(1, tonumber(top[2]) - now))
  end
end
`

// luaDeadLetter moves the delivery at dk into the dead-letter set dead,
// out of the queue q; sk is its subscription's index. It expects
// luaIndex.
const luaDeadLetter = `
local function deadletter(dk, q, dead, sk, id, now, reason, ttl)
  redis.call('HSET', dk, 'state', 'dead', 'died', now, 'dead_reason', reason)
  redis.call('HDEL', dk, 'owner')
  redis.call('ZREM', q, id)
  redis.call('ZADD', dead, now, id)
  redis.call('ZREMRANGEBYSCORE', dead, '-inf', now - ttl)
  redis.call('PEXPIRE', dk, ttl)
  index(sk, id, now + ttl, now)
end
`

// enqueueScript: KEYS d:<id>, ep:<sub>, q, s:<sub>; ARGV sub, body, now,
// due, id. Returns 1 queued, 0 duplicate id, -1 no enabled endpoint.
var enqueueScript = redis.NewScript(`
local dk, ek, q, sk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
` + luaIndex + `
if redis.call('EXISTS', dk) == 1 then return 0 end
if redis.call('HGET', ek, 'enabled') ~= '1' then return -1 end
redis.call('HSET', dk, 'sub', ARGV[1], 'body', ARGV[2], 'state', 'queued', 'attempts', 0, 'claim', 0, 'created', ARGV[3])
redis.call('ZADD', q, ARGV[4], ARGV[5])
index(sk, ARGV[5], '+inf', tonumber(ARGV[3]))
return 1
`)

// claimScript: KEYS q, dead, owners, own:<owner>; ARGV base, now,
// leaseUntil, want, scan, perEndpoint, perHost, perSubscription,
// deferMin, deferSpread, postponeSpread, deadTTL, gcTTL, seed, owner.
// Looks at up to scan due deliveries, oldest first, and admits up to want
// of them: an admitted delivery is due again at the end of its lease (so
// that a crashed claimer's work comes back even if nobody notices it
// died), gets a new claim token (which fences later writes), the claimer's
// owner id (internal/liveness; recorded in own:<owner> and owners, so that
// recoverScript can hand it back as soon as the owner stops beating) and
// an entry in the in-flight sets of its endpoint URL, host and
// subscription. A delivery whose URL, host or subscription is at its
// limit is deferred by deferMin plus up to deferSpread, one behind an open
// circuit breaker to the end of the cool-down plus up to postponeSpread;
// neither counts as an attempt. Returns {more, records}: more is 1 when
// due deliveries may be left unseen, records are {'go', id, token, sub,
// url, eh, hh, secret, prev_secret, prev_until, body, attempts},
// {'disabled', id} (dead-lettered: endpoint disabled) or {'host', sub,
// url} (the endpoint predates host keys: the caller sets its hh, the
// delivery stays due).
var claimScript = redis.NewScript(`
local q, dead, owners, own = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local b = ARGV[1]
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local want, scan = tonumber(ARGV[4]), tonumber(ARGV[5])
local limURL, limHost, limSub = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local deferMin, deferSpread, postponeSpread = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local deadTTL, gcTTL = tonumber(ARGV[12]), ARGV[13]
local seed = tonumber(ARGV[14])
local owner = ARGV[15]
` + luaIndex + luaDeadLetter + `
local function rnd(m)
  seed = (seed * 16807) % 2147483647
  if m <= 0 then return 0 end
  return seed % m
end
local trimmed = {}
local function inflight(k)
  if not trimmed[k] then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
    trimmed[k] = true
  end
  return redis.call('ZCARD', k)
end
local ids = redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, scan)
local out, got, more = {}, 0, 0
if #ids >= scan then more = 1 end
for _, id in ipairs(ids) do
  if got >= want then
    more = 1
    break
  end
  local dk = b .. 'd:' .. id
  local d = redis.call('HMGET', dk, 'state', 'sub', 'body', 'attempts')
  if d[1] ~= 'queued' then
    redis.call('ZREM', q, id)
  else
    local sub = d[2]
    local sk = b .. 's:' .. sub
    local e = redis.call('HMGET', b .. 'ep:' .. sub, 'url', 'eh', 'hh', 'secret', 'prev_secret', 'prev_until', 'enabled')
    if not e[1] then
      redis.call('DEL', dk)
      redis.call('ZREM', q, id)
      redis.call('ZREM', sk, id)
    elseif e[7] ~= '1' then
      deadletter(dk, q, dead, sk, id, now, 'endpoint disabled', deadTTL)
      out[#out + 1] = {'disabled', id}
    elseif not e[3] then
      out[#out + 1] = {'host', sub, e[1]}
    else
      local open = tonumber(redis.call('HGET', b .. 'cb:' .. e[2], 'open_until') or '0')
      if open > now then
        redis.call('ZADD', q, open + rnd(postponeSpread), id)
      else
        local bk, hk, xk = b .. 'busy:' .. e[2], b .. 'hbusy:' .. e[3], b .. 'sbusy:' .. sub
        if inflight(bk) >= limURL or inflight(hk) >= limHost or inflight(xk) >= limSub then
          redis.call('ZADD', q, now + deferMin + rnd(deferSpread), id)
        else
          local tok = tostring(redis.call('HINCRBY', dk, 'claim', 1))
          redis.call('ZADD', q, lease, id)
          local m = id .. ':' .. tok
          for _, k in ipairs({bk, hk, xk}) do
            redis.call('ZADD', k, lease, m)
            redis.call('PEXPIRE', k, gcTTL)
          end
          if owner ~= '' then
            redis.call('HSET', dk, 'owner', owner)
            redis.call('ZADD', own, lease, id)
            redis.call('PEXPIREAT', own, lease)
            redis.call('ZADD', owners, lease, owner)
          end
          got = got + 1
          out[#out + 1] = {'go', id, tok, sub, e[1], e[2], e[3], e[4], e[5] or '', e[6] or '0', d[3] or '', d[4] or '0'}
        end
      end
    end
  end
end
if owner ~= '' then redis.call('ZREMRANGEBYSCORE', owners, '-inf', '(' .. now) end
return {more, out}
`)

// recoverScript: KEYS q, owners, own:<owner>; ARGV base, now, owner.
// Hands back at once every delivery the (dead) owner still holds: due
// now, its in-flight entries removed, its claim token bumped so that the
// owner's outcome, should it still come, is dropped as 'lost'. Deliveries
// claimed since by another owner, or finished, are left alone. Returns
// how many were handed back.
var recoverScript = redis.NewScript(`
local q, owners, own = KEYS[1], KEYS[2], KEYS[3]
local b, now, owner = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local n = 0
for _, id in ipairs(redis.call('ZRANGE', own, 0, -1)) do
  local dk = b .. 'd:' .. id
  local d = redis.call('HMGET', dk, 'state', 'owner', 'claim', 'sub')
  if d[1] == 'queued' and d[2] == owner then
    local m = id .. ':' .. d[3]
    local e = redis.call('HMGET', b .. 'ep:' .. d[4], 'eh', 'hh')
    if e[1] then redis.call('ZREM', b .. 'busy:' .. e[1], m) end
    if e[2] then redis.call('ZREM', b .. 'hbusy:' .. e[2], m) end
    redis.call('ZREM', b .. 'sbusy:' .. d[4], m)
    redis.call('HINCRBY', dk, 'claim', 1)
    redis.call('HDEL', dk, 'owner')
    redis.call('ZADD', q, now, id)
    n = n + 1
  end
end
redis.call('DEL', own)
redis.call('ZREM', owners, owner)
return n
`)

// setHostScript: KEYS ep:<sub>; ARGV url, hh. Records the host key of an
// endpoint set before host keys existed, if its URL is still url.
var setHostScript = redis.NewScript(`
local ek = KEYS[1]
if redis.call('HGET', ek, 'url') ~= ARGV[1] then return 0 end
redis.call('HSET', ek, 'hh', ARGV[2])
return 1
`)

// finishScript: KEYS d:<id>, q, dead, s:<sub>, ep:<sub>, busy:<eh>,
// hbusy:<hh>, sbusy:<sub>, cb:<eh>, cbopen, own:<owner>; ARGV id, token,
// eh, now, outcome, next, status, error, url, breakerThreshold,
// breakerCooldown, holdUntil, deadTTL, doneTTL, gcTTL, slow.
// outcome is ok | retry | dead | gone | release; slow ('1') makes an ok
// outcome count toward the circuit breaker like a failure. Returns the
// outcome applied ('slow' for a slow ok), 'lost' when the claim was taken
// over, 'dropped' when the delivery was deleted meanwhile
// (DeleteEndpoint), or 'disabled' for a gone outcome that switched the
// endpoint off.
var finishScript = redis.NewScript(`
local dk, q, dead, sk, ek = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local bk, hk, xk, cb, cbopen, own = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local id, tok, eh = ARGV[1], ARGV[2], ARGV[3]
local now, outcome = tonumber(ARGV[4]), ARGV[5]
` + luaIndex + luaDeadLetter + `
local m = id .. ':' .. tok
redis.call('ZREM', bk, m)
redis.call('ZREM', hk, m)
redis.call('ZREM', xk, m)
local d = redis.call('HMGET', dk, 'claim', 'state', 'sub')
if not d[2] then return 'dropped' end
if d[1] ~= tok or d[2] ~= 'queued' then return 'lost' end
redis.call('ZREM', own, id)
redis.call('HDEL', dk, 'owner')
if outcome == 'release' then
  redis.call('ZADD', q, now, id)
  return 'release'
end
redis.call('HINCRBY', dk, 'attempts', 1)
redis.call('HSET', dk, 'last_at', now, 'last_status', ARGV[7], 'last_error', ARGV[8], 'url', ARGV[9])
-- trip counts a failed (or slow) attempt toward the breaker of the URL.
local function trip()
  local fails = redis.call('HINCRBY', cb, 'fails', 1)
  local open = tonumber(redis.call('HGET', cb, 'open_until') or '0')
  local newopen = open
  if fails >= tonumber(ARGV[10]) then newopen = math.max(newopen, now + tonumber(ARGV[11])) end
  newopen = math.max(newopen, tonumber(ARGV[12]))
  if newopen > open then
    redis.call('HSET', cb, 'open_until', newopen)
    -- cbopen: endpoint hash -> open until, for counting open breakers.
    redis.call('ZADD', cbopen, newopen, eh)
    redis.call('ZREMRANGEBYSCORE', cbopen, '-inf', '(' .. now)
  end
  redis.call('PEXPIRE', cb, ARGV[15])
end
if outcome == 'ok' then
  redis.call('HDEL', dk, 'body')
  redis.call('HSET', dk, 'state', 'done')
  redis.call('ZREM', q, id)
  redis.call('PEXPIRE', dk, ARGV[14])
  index(sk, id, now + tonumber(ARGV[14]), now)
  if ARGV[16] == '1' then
    trip()
    return 'slow'
  end
  redis.call('DEL', cb)
  redis.call('ZREM', cbopen, eh)
  return 'ok'
end
if outcome == 'gone' then
  local e = redis.call('HMGET', ek, 'url', 'enabled')
  local res = 'gone'
  if e[1] == ARGV[9] and e[2] == '1' then
    redis.call('HSET', ek, 'enabled', '0', 'disabled_at', now, 'disabled_reason', '410 Gone')
    res = 'disabled'
  end
  deadletter(dk, q, dead, sk, id, now, 'endpoint answered 410 Gone', tonumber(ARGV[13]))
  return res
end
trip()
if outcome == 'retry' then
  redis.call('ZADD', q, ARGV[6], id)
  return 'retry'
end
deadletter(dk, q, dead, sk, id, now, 'attempts exhausted', tonumber(ARGV[13]))
return 'dead'
`)

// replayScript: KEYS d:<id>, q, dead; ARGV base, id, now. Returns 1
// requeued, 0 not found, -1 not a dead letter, -2 endpoint missing or
// disabled.
var replayScript = redis.NewScript(`
local dk, q, dead = KEYS[1], KEYS[2], KEYS[3]
local b, id = ARGV[1], ARGV[2]
` + luaIndex + `
local d = redis.call('HMGET', dk, 'state', 'sub')
if not d[1] then return 0 end
if d[1] ~= 'dead' then return -1 end
if redis.call('HGET', b .. 'ep:' .. d[2], 'enabled') ~= '1' then return -2 end
redis.call('HSET', dk, 'state', 'queued', 'attempts', 0)
redis.call('HDEL', dk, 'died', 'dead_reason')
redis.call('PERSIST', dk)
redis.call('ZREM', dead, id)
redis.call('ZADD', q, ARGV[3], id)
index(b .. 's:' .. d[2], id, '+inf', tonumber(ARGV[3]))
return 1
`)

// setEndpointScript: KEYS ep:<sub>; ARGV url, eh, hh, secret (may be
// empty: keep the current one), now. Returns 1, or 0 when there is no
// secret to keep.
var setEndpointScript = redis.NewScript(`
local ek = KEYS[1]
if ARGV[4] == '' then
  if redis.call('HEXISTS', ek, 'secret') == 0 then return 0 end
else
  redis.call('HSET', ek, 'secret', ARGV[4])
  redis.call('HDEL', ek, 'prev_secret', 'prev_until')
end
redis.call('HSET', ek, 'url', ARGV[1], 'eh', ARGV[2], 'hh', ARGV[3], 'enabled', '1', 'updated', ARGV[5])
redis.call('HDEL', ek, 'disabled_at', 'disabled_reason')
return 1
`)

// rotateScript: KEYS ep:<sub>; ARGV newSecret, prevUntil. Returns 1, or
// 0 when the subscription has no endpoint.
var rotateScript = redis.NewScript(`
local ek = KEYS[1]
local old = redis.call('HGET', ek, 'secret')
if not old then return 0 end
redis.call('HSET', ek, 'secret', ARGV[1], 'prev_secret', old, 'prev_until', ARGV[2])
return 1
`)

// deleteScript: KEYS ep:<sub>, sbusy:<sub>, s:<sub>, q, dead; ARGV base,
// sub, now, limit.
// Removes the subscription's endpoint, its expired in-flight entries, and
// up to limit of its delivery records (queued, dead or done) with their
// queue and dead-letter entries. Returns how many records are left to
// remove (call again until 0). Attempts in flight find their record gone
// when they finish, and drop their outcome.
var deleteScript = redis.NewScript(`
local ek, xk, sk, q, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local b, sub = ARGV[1], ARGV[2]
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local e = redis.call('HMGET', ek, 'eh', 'hh')
redis.call('DEL', ek)
if e[1] then redis.call('ZREMRANGEBYSCORE', b .. 'busy:' .. e[1], '-inf', now) end
if e[2] then redis.call('ZREMRANGEBYSCORE', b .. 'hbusy:' .. e[2], '-inf', now) end
redis.call('ZREMRANGEBYSCORE', xk, '-inf', now)
local ids = redis.call('ZRANGE', sk, 0, limit - 1)
for _, id in ipairs(ids) do
  local dk = b .. 'd:' .. id
  local owner = redis.call('HGET', dk, 'sub')
  if not owner or owner == sub then
    redis.call('DEL', dk)
    redis.call('ZREM', q, id)
    redis.call('ZREM', dead, id)
  end
  redis.call('ZREM', sk, id)
end
return redis.call('ZCARD', sk)
`)
