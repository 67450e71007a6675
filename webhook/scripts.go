package webhook

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the only writers of the delivery queue. Each
// takes the key prefix as ARGV[1] and builds the per-delivery, per-endpoint
// key names from it (on Redis Cluster, put a hash tag in the prefix, e.g.
// "{jobalert}:", so that every key lives in one slot). Times are Unix
// milliseconds of the service clock.

// luaDeadLetter moves the delivery at dk into the dead-letter set. It
// expects locals p, id, now, queue.
const luaDeadLetter = `
local function deadletter(dk, id, now, reason, ttl)
  redis.call('HSET', dk, 'state', 'dead', 'died', now, 'dead_reason', reason)
  redis.call('ZREM', p .. 'wh:q', id)
  redis.call('ZADD', p .. 'wh:dead', now, id)
  redis.call('ZREMRANGEBYSCORE', p .. 'wh:dead', '-inf', now - ttl)
  redis.call('PEXPIRE', dk, ttl)
end
`

// enqueueScript: ARGV prefix, id, sub, body, now, due.
// Returns 1 queued, 0 duplicate id, -1 no enabled endpoint.
var enqueueScript = redis.NewScript(`
local p, id, sub = ARGV[1], ARGV[2], ARGV[3]
local dk = p .. 'wh:d:' .. id
if redis.call('EXISTS', dk) == 1 then return 0 end
if redis.call('HGET', p .. 'wh:ep:' .. sub, 'enabled') ~= '1' then return -1 end
redis.call('HSET', dk, 'sub', sub, 'body', ARGV[4], 'state', 'queued', 'attempts', 0, 'claim', 0, 'created', ARGV[5])
redis.call('ZADD', p .. 'wh:q', ARGV[6], id)
return 1
`)

// claimScript: ARGV prefix, now, leaseUntil, n.
// Takes up to n due deliveries, pushes their due time to the end of the
// lease (so that a crashed claimer's work comes back) and returns
// {id1, token1, id2, token2, ...}; the token fences later writes.
var claimScript = redis.NewScript(`
local p = ARGV[1]
local q = p .. 'wh:q'
local ids = redis.call('ZRANGEBYSCORE', q, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local dk = p .. 'wh:d:' .. id
  if redis.call('HGET', dk, 'state') == 'queued' then
    redis.call('ZADD', q, ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = tostring(redis.call('HINCRBY', dk, 'claim', 1))
  else
    redis.call('ZREM', q, id)
  end
end
return out
`)

// beginScript: ARGV prefix, id, token, now, perEndpoint, leaseUntil,
// busyUntil, postponeJitter, deadTTL, gcTTL.
// Decides whether a claimed delivery is attempted now. Returns {verdict}
// or {'go', url, eh, secret, prev_secret, prev_until, body, attempts, sub}.
var beginScript = redis.NewScript(`
local p, id, tok = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[4])
` + luaDeadLetter + `
local dk = p .. 'wh:d:' .. id
local d = redis.call('HMGET', dk, 'claim', 'sub', 'state', 'body', 'attempts')
if d[1] ~= tok or d[3] ~= 'queued' then return {'lost'} end
local ek = p .. 'wh:ep:' .. d[2]
local e = redis.call('HMGET', ek, 'url', 'eh', 'secret', 'prev_secret', 'prev_until', 'enabled')
if not e[1] then
  redis.call('DEL', dk)
  redis.call('ZREM', p .. 'wh:q', id)
  return {'dropped'}
end
if e[6] ~= '1' then
  deadletter(dk, id, now, 'endpoint disabled', tonumber(ARGV[9]))
  return {'disabled'}
end
local open = tonumber(redis.call('HGET', p .. 'wh:cb:' .. e[2], 'open_until') or '0')
if open > now then
  redis.call('ZADD', p .. 'wh:q', open + tonumber(ARGV[8]), id)
  return {'postponed'}
end
local bk = p .. 'wh:busy:' .. e[2]
redis.call('ZREMRANGEBYSCORE', bk, '-inf', now)
if redis.call('ZCARD', bk) >= tonumber(ARGV[5]) then
  redis.call('ZADD', p .. 'wh:q', ARGV[7], id)
  return {'busy'}
end
redis.call('ZADD', bk, ARGV[6], id .. ':' .. tok)
redis.call('PEXPIRE', bk, ARGV[10])
return {'go', e[1], e[2], e[3], e[4] or '', e[5] or '0', d[4], d[5] or '0', d[2]}
`)

// finishScript: ARGV prefix, id, token, eh, now, outcome, next, status,
// error, url, breakerThreshold, breakerCooldown, holdUntil, deadTTL,
// doneTTL, gcTTL.
// outcome is ok | retry | dead | gone | release. Returns the outcome
// applied, 'lost' when the claim was taken over, or 'disabled' for a gone
// outcome that switched the endpoint off.
var finishScript = redis.NewScript(`
local p, id, tok, eh = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, outcome = tonumber(ARGV[5]), ARGV[6]
` + luaDeadLetter + `
local dk = p .. 'wh:d:' .. id
local q = p .. 'wh:q'
redis.call('ZREM', p .. 'wh:busy:' .. eh, id .. ':' .. tok)
local d = redis.call('HMGET', dk, 'claim', 'state', 'sub')
if d[1] ~= tok or d[2] ~= 'queued' then return 'lost' end
if outcome == 'release' then
  redis.call('ZADD', q, now, id)
  return 'release'
end
redis.call('HINCRBY', dk, 'attempts', 1)
redis.call('HSET', dk, 'last_at', now, 'last_status', ARGV[8], 'last_error', ARGV[9], 'url', ARGV[10])
local cb = p .. 'wh:cb:' .. eh
if outcome == 'ok' then
  redis.call('DEL', cb)
  redis.call('HDEL', dk, 'body')
  redis.call('HSET', dk, 'state', 'done')
  redis.call('ZREM', q, id)
  redis.call('PEXPIRE', dk, ARGV[15])
  return 'ok'
end
if outcome == 'gone' then
  local ek = p .. 'wh:ep:' .. d[3]
  local e = redis.call('HMGET', ek, 'url', 'enabled')
  local res = 'gone'
  if e[1] == ARGV[10] and e[2] == '1' then
    redis.call('HSET', ek, 'enabled', '0', 'disabled_at', now, 'disabled_reason', '410 Gone')
    res = 'disabled'
  end
  deadletter(dk, id, now, 'endpoint answered 410 Gone', tonumber(ARGV[14]))
  return res
end
local fails = redis.call('HINCRBY', cb, 'fails', 1)
local open = tonumber(redis.call('HGET', cb, 'open_until') or '0')
local newopen = open
if fails >= tonumber(ARGV[11]) then newopen = math.max(newopen, now + tonumber(ARGV[12])) end
newopen = math.max(newopen, tonumber(ARGV[13]))
if newopen > open then redis.call('HSET', cb, 'open_until', newopen) end
redis.call('PEXPIRE', cb, ARGV[16])
if outcome == 'retry' then
  redis.call('ZADD', q, ARGV[7], id)
  return 'retry'
end
deadletter(dk, id, now, 'attempts exhausted', tonumber(ARGV[14]))
return 'dead'
`)

// replayScript: ARGV prefix, id, now. Returns 1 requeued, 0 not found,
// -1 not a dead letter, -2 endpoint missing or disabled.
var replayScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
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
return 1
`)

// setEndpointScript: ARGV prefix, sub, url, eh, secret (may be empty: keep
// the current one), now. Returns 1, or 0 when there is no secret to keep.
var setEndpointScript = redis.NewScript(`
local ek = ARGV[1] .. 'wh:ep:' .. ARGV[2]
if ARGV[5] == '' then
  if redis.call('HEXISTS', ek, 'secret') == 0 then return 0 end
else
  redis.call('HSET', ek, 'secret', ARGV[5])
  redis.call('HDEL', ek, 'prev_secret', 'prev_until')
end
redis.call('HSET', ek, 'url', ARGV[3], 'eh', ARGV[4], 'enabled', '1', 'updated', ARGV[6])
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
