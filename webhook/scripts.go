package webhook

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the only writers of the delivery queue. Each
// takes the key prefix as ARGV[1] and builds the per-delivery, per-endpoint
// key names from it (on Redis Cluster, put a hash tag in the prefix, e.g.
// "{jobalert}:", so that every key lives in one slot). Times are Unix
// milliseconds of the service clock.

// luaIndex keeps wh:s:<sub>, the index of a subscription's delivery
// records that DeleteEndpoint purges: delivery id -> when its record
// expires ('+inf' while queued). Entries of expired records are trimmed
// on every write, and the key expires with its last finite entry. It
// expects the local p.
const luaIndex = `
local function index(sub, id, score, now)
  local sk = p .. 'wh:s:' .. sub
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

// luaDeadLetter moves the delivery at dk into the dead-letter set. It
// expects the local p and luaIndex.
const luaDeadLetter = `
local function deadletter(dk, id, sub, now, reason, ttl)
  redis.call('HSET', dk, 'state', 'dead', 'died', now, 'dead_reason', reason)
  redis.call('ZREM', p .. 'wh:q', id)
  redis.call('ZADD', p .. 'wh:dead', now, id)
  redis.call('ZREMRANGEBYSCORE', p .. 'wh:dead', '-inf', now - ttl)
  redis.call('PEXPIRE', dk, ttl)
  index(sub, id, now + ttl, now)
end
`

// enqueueScript: ARGV prefix, id, sub, body, now, due.
// Returns 1 queued, 0 duplicate id, -1 no enabled endpoint.
var enqueueScript = redis.NewScript(`
local p, id, sub = ARGV[1], ARGV[2], ARGV[3]
` + luaIndex + `
local dk = p .. 'wh:d:' .. id
if redis.call('EXISTS', dk) == 1 then return 0 end
if redis.call('HGET', p .. 'wh:ep:' .. sub, 'enabled') ~= '1' then return -1 end
redis.call('HSET', dk, 'sub', sub, 'body', ARGV[4], 'state', 'queued', 'attempts', 0, 'claim', 0, 'created', ARGV[5])
redis.call('ZADD', p .. 'wh:q', ARGV[6], id)
index(sub, id, '+inf', tonumber(ARGV[5]))
return 1
`)

// claimScript: ARGV prefix, now, leaseUntil, want, scan, perEndpoint,
// perHost, perSubscription, deferMin, deferSpread, postponeSpread,
// deadTTL, gcTTL, seed.
// Looks at up to scan due deliveries, oldest first, and admits up to want
// of them: an admitted delivery is due again at the end of its lease (so
// that a crashed claimer's work comes back), gets a new claim token (which
// fences later writes) and an entry in the in-flight sets of its endpoint
// URL, host and subscription. A delivery whose URL, host or subscription
// is at its limit is deferred by deferMin plus up to deferSpread, one
// behind an open circuit breaker to the end of the cool-down plus up to
// postponeSpread; neither counts as an attempt. Returns {more, records}:
// more is 1 when due deliveries may be left unseen, records are
// {'go', id, token, sub, url, eh, hh, secret, prev_secret, prev_until,
// body, attempts}, {'disabled', id} (dead-lettered: endpoint disabled) or
// {'host', sub, url} (the endpoint predates host keys: the caller sets
// its hh, the delivery stays due).
var claimScript = redis.NewScript(`
local p = ARGV[1]
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local want, scan = tonumber(ARGV[4]), tonumber(ARGV[5])
local limURL, limHost, limSub = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local deferMin, deferSpread, postponeSpread = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local deadTTL, gcTTL = tonumber(ARGV[12]), ARGV[13]
local seed = tonumber(ARGV[14])
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
local q = p .. 'wh:q'
local ids = redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, scan)
local out, got, more = {}, 0, 0
if #ids >= scan then more = 1 end
for _, id in ipairs(ids) do
  if got >= want then
    more = 1
    break
  end
  local dk = p .. 'wh:d:' .. id
  local d = redis.call('HMGET', dk, 'state', 'sub', 'body', 'attempts')
  if d[1] ~= 'queued' then
    redis.call('ZREM', q, id)
  else
    local sub = d[2]
    local e = redis.call('HMGET', p .. 'wh:ep:' .. sub, 'url', 'eh', 'hh', 'secret', 'prev_secret', 'prev_until', 'enabled')
    if not e[1] then
      redis.call('DEL', dk)
      redis.call('ZREM', q, id)
      redis.call('ZREM', p .. 'wh:s:' .. sub, id)
    elseif e[7] ~= '1' then
      deadletter(dk, id, sub, now, 'endpoint disabled', deadTTL)
      out[#out + 1] = {'disabled', id}
    elseif not e[3] then
      out[#out + 1] = {'host', sub, e[1]}
    else
      local open = tonumber(redis.call('HGET', p .. 'wh:cb:' .. e[2], 'open_until') or '0')
      if open > now then
        redis.call('ZADD', q, open + rnd(postponeSpread), id)
      else
        local bk, hk, sk = p .. 'wh:busy:' .. e[2], p .. 'wh:hbusy:' .. e[3], p .. 'wh:sbusy:' .. sub
        if inflight(bk) >= limURL or inflight(hk) >= limHost or inflight(sk) >= limSub then
          redis.call('ZADD', q, now + deferMin + rnd(deferSpread), id)
        else
          local tok = tostring(redis.call('HINCRBY', dk, 'claim', 1))
          redis.call('ZADD', q, lease, id)
          local m = id .. ':' .. tok
          for _, k in ipairs({bk, hk, sk}) do
            redis.call('ZADD', k, lease, m)
            redis.call('PEXPIRE', k, gcTTL)
          end
          got = got + 1
          out[#out + 1] = {'go', id, tok, sub, e[1], e[2], e[3], e[4], e[5] or '', e[6] or '0', d[3] or '', d[4] or '0'}
        end
      end
    end
  end
end
return {more, out}
`)

// setHostScript: ARGV prefix, sub, url, hh. Records the host key of an
// endpoint set before host keys existed, if its URL is still url.
var setHostScript = redis.NewScript(`
local ek = ARGV[1] .. 'wh:ep:' .. ARGV[2]
if redis.call('HGET', ek, 'url') ~= ARGV[3] then return 0 end
redis.call('HSET', ek, 'hh', ARGV[4])
return 1
`)

// finishScript: ARGV prefix, id, token, eh, hh, sub, now, outcome, next,
// status, error, url, breakerThreshold, breakerCooldown, holdUntil,
// deadTTL, doneTTL, gcTTL, slow.
// outcome is ok | retry | dead | gone | release; slow ('1') makes an ok
// outcome count toward the circuit breaker like a failure. Returns the
// outcome applied ('slow' for a slow ok), 'lost' when the claim was taken
// over, 'dropped' when the delivery was deleted meanwhile
// (DeleteEndpoint), or 'disabled' for a gone outcome that switched the
// endpoint off.
var finishScript = redis.NewScript(`
local p, id, tok, eh, hh, sub = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, outcome = tonumber(ARGV[7]), ARGV[8]
` + luaIndex + luaDeadLetter + `
local dk = p .. 'wh:d:' .. id
local q = p .. 'wh:q'
local m = id .. ':' .. tok
redis.call('ZREM', p .. 'wh:busy:' .. eh, m)
redis.call('ZREM', p .. 'wh:hbusy:' .. hh, m)
redis.call('ZREM', p .. 'wh:sbusy:' .. sub, m)
local d = redis.call('HMGET', dk, 'claim', 'state', 'sub')
if not d[2] then return 'dropped' end
if d[1] ~= tok or d[2] ~= 'queued' then return 'lost' end
if outcome == 'release' then
  redis.call('ZADD', q, now, id)
  return 'release'
end
redis.call('HINCRBY', dk, 'attempts', 1)
redis.call('HSET', dk, 'last_at', now, 'last_status', ARGV[10], 'last_error', ARGV[11], 'url', ARGV[12])
local cb = p .. 'wh:cb:' .. eh
-- trip counts a failed (or slow) attempt toward the breaker of the URL.
local function trip()
  local fails = redis.call('HINCRBY', cb, 'fails', 1)
  local open = tonumber(redis.call('HGET', cb, 'open_until') or '0')
  local newopen = open
  if fails >= tonumber(ARGV[13]) then newopen = math.max(newopen, now + tonumber(ARGV[14])) end
  newopen = math.max(newopen, tonumber(ARGV[15]))
  if newopen > open then
    redis.call('HSET', cb, 'open_until', newopen)
    -- wh:cbopen: endpoint hash -> open until, for counting open breakers.
    local ok = p .. 'wh:cbopen'
    redis.call('ZADD', ok, newopen, eh)
    redis.call('ZREMRANGEBYSCORE', ok, '-inf', '(' .. now)
  end
  redis.call('PEXPIRE', cb, ARGV[18])
end
if outcome == 'ok' then
  redis.call('HDEL', dk, 'body')
  redis.call('HSET', dk, 'state', 'done')
  redis.call('ZREM', q, id)
  redis.call('PEXPIRE', dk, ARGV[17])
  index(d[3], id, now + tonumber(ARGV[17]), now)
  if ARGV[19] == '1' then
    trip()
    return 'slow'
  end
  redis.call('DEL', cb)
  redis.call('ZREM', p .. 'wh:cbopen', eh)
  return 'ok'
end
if outcome == 'gone' then
  local ek = p .. 'wh:ep:' .. d[3]
  local e = redis.call('HMGET', ek, 'url', 'enabled')
  local res = 'gone'
  if e[1] == ARGV[12] and e[2] == '1' then
    redis.call('HSET', ek, 'enabled', '0', 'disabled_at', now, 'disabled_reason', '410 Gone')
    res = 'disabled'
  end
  deadletter(dk, id, d[3], now, 'endpoint answered 410 Gone', tonumber(ARGV[16]))
  return res
end
trip()
if outcome == 'retry' then
  redis.call('ZADD', q, ARGV[9], id)
  return 'retry'
end
deadletter(dk, id, d[3], now, 'attempts exhausted', tonumber(ARGV[16]))
return 'dead'
`)

// replayScript: ARGV prefix, id, now. Returns 1 requeued, 0 not found,
// -1 not a dead letter, -2 endpoint missing or disabled.
var replayScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
` + luaIndex + `
local dk = p .. 'wh:d:' .. id
local d = redis.call('HMGET', dk, 'state', 'sub')
if not d[1] then return 0 end
if d[1] ~= 'dead' then return -1 end
if redis.call('HGET', p .. 'wh:ep:' .. d[2], 'enabled') ~= '1' then return -2 end
redis.call('HSET', dk, 'state', 'queued', 'attempts', 0)
redis.call('HDEL', dk, 'died', 'dead_reason')
redis.call('PERSIST', dk)
redis.call('ZREM', p .. 'wh:dead', id)
redis.call('ZADD', p .. 'wh:q', ARGV[3], id)
index(d[2], id, '+inf', tonumber(ARGV[3]))
return 1
`)

// setEndpointScript: ARGV prefix, sub, url, eh, hh, secret (may be empty:
// keep the current one), now. Returns 1, or 0 when there is no secret to
// keep.
var setEndpointScript = redis.NewScript(`
local ek = ARGV[1] .. 'wh:ep:' .. ARGV[2]
if ARGV[6] == '' then
  if redis.call('HEXISTS', ek, 'secret') == 0 then return 0 end
else
  redis.call('HSET', ek, 'secret', ARGV[6])
  redis.call('HDEL', ek, 'prev_secret', 'prev_until')
end
redis.call('HSET', ek, 'url', ARGV[3], 'eh', ARGV[4], 'hh', ARGV[5], 'enabled', '1', 'updated', ARGV[7])
redis.call('HDEL', ek, 'disabled_at', 'disabled_reason')
return 1
`)

// rotateScript: ARGV prefix, sub, newSecret, prevUntil. Returns 1, or 0
// when the subscription has no endpoint.
var rotateScript = redis.NewScript(`
local ek = ARGV[1] .. 'wh:ep:' .. ARGV[2]
local old = redis.call('HGET', ek, 'secret')
if not old then return 0 end
redis.call('HSET', ek, 'secret', ARGV[3], 'prev_secret', old, 'prev_until', ARGV[4])
return 1
`)

// deleteScript: ARGV prefix, sub, now, limit.
// Removes the subscription's endpoint, its expired in-flight entries, and
// up to limit of its delivery records (queued, dead or done) with their
// queue and dead-letter entries. Returns how many records are left to
// remove (call again until 0). Attempts in flight find their record gone
// when they finish, and drop their outcome.
var deleteScript = redis.NewScript(`
local p, sub = ARGV[1], ARGV[2]
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local ek = p .. 'wh:ep:' .. sub
local e = redis.call('HMGET', ek, 'eh', 'hh')
redis.call('DEL', ek)
if e[1] then redis.call('ZREMRANGEBYSCORE', p .. 'wh:busy:' .. e[1], '-inf', now) end
if e[2] then redis.call('ZREMRANGEBYSCORE', p .. 'wh:hbusy:' .. e[2], '-inf', now) end
redis.call('ZREMRANGEBYSCORE', p .. 'wh:sbusy:' .. sub, '-inf', now)
local sk = p .. 'wh:s:' .. sub
local ids = redis.call('ZRANGE', sk, 0, limit - 1)
for _, id in ipairs(ids) do
  local dk = p .. 'wh:d:' .. id
  local owner = redis.call('HGET', dk, 'sub')
  if not owner or owner == sub then
    redis.call('DEL', dk)
    redis.call('ZREM', p .. 'wh:q', id)
    redis.call('ZREM', p .. 'wh:dead', id)
  end
  redis.call('ZREM', sk, id)
end
return redis.call('ZCARD', sk)
`)
