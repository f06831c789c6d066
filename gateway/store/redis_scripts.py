"""Lua scripts of the Redis store. Each runs atomically on one shard (one hash
tag, passed as ``ARGV[1]``): a message's hash ``<tag>:m:<id>``, its events
``<tag>:ev:<id>`` (``at|status[|detail]``), attempts ``<tag>:at:<id>``
(``n|provider|at|owner``) and the shard's indexes:

* the send queue — ``<tag>:q`` (a Stream read by the consumer group
  ``dispatch``), ``<tag>:z`` (due later) and ``<tag>:pl`` (pending leases): see
  gateway/store/redis_stream.py; ``<tag>:dq`` — due times of the queued and
  scheduled ones (the queue-age metric); ``<tag>:qn`` — entries per status;
* ``<tag>:b:<borrower hash>``, ``<tag>:pm`` (provider NUL provider message id
  -> id), ``<tag>:rv:<held|blocked>`` and ``<tag>:rva`` (ever stopped), scored
  by creation time.

Keys other than ``KEYS`` are built from the tag, so they share its slot.
Times are strings of float seconds (the caller's clock), compared in Lua as
doubles exactly as Python compares them. Scripts answer strings only (Redis
would truncate a Lua number).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.models import TERMINAL, TRANSITIONS, Status
from gateway.store.redis_stream import GROUP, QUEUE_LUA


def _lua_set(names: Iterable[Status]) -> str:
    return "{" + ", ".join(f"['{n}'] = true" for n in sorted(str(n) for n in names)) + "}"


_TABLES = (
    "local TR = {\n"
    + "".join(f"  ['{old}'] = {_lua_set(new)},\n" for old, new in TRANSITIONS.items())
    + "}\n"
    + f"local TERMINAL = {_lua_set(TERMINAL)}\n"
    + "local STOPPED = {['held'] = true, ['blocked'] = true}\n"
    + "local CANCELLABLE = {['queued'] = true, ['scheduled'] = true, ['held'] = true}\n"
)

PRELUDE = (
    _TABLES
    + QUEUE_LUA
    + r"""
local function review_set(tag, id, mkey, old, new)
  if old == new then return end
  if STOPPED[old] then redis.call('ZREM', tag .. ':rv:' .. old, id) end
  if STOPPED[new] then
    local created = redis.call('HGET', mkey, 'created_at')
    redis.call('ZADD', tag .. ':rv:' .. new, created, id)
    redis.call('ZADD', tag .. ':rva', created, id)
  end
end

local function index_provider(tag, id, mkey)
  local p = redis.call('HMGET', mkey, 'provider', 'provider_message_id')
  if p[1] and p[2] and p[1] ~= '' and p[2] ~= '' then
    redis.call('HSET', tag .. ':pm', p[1] .. '\0' .. p[2], id)
  end
end

-- detail: '' for none, '=' .. text for a text
local function move(tag, id, new, t, detail, expect, due, extra)
  local mkey = tag .. ':m:' .. id
  local old = redis.call('HGET', mkey, 'status')
  if not old then return 'nokey' end
  if expect ~= '' then
    local ok = false
    for s in string.gmatch(expect, '[^,]+') do
      if s == old then ok = true end
    end
    if not ok then return 'expect:' .. old end
  end
  if (old ~= new or TERMINAL[old]) and not TR[old][new] then return 'deny:' .. old end
  redis.call('HSET', mkey, 'status', new, 'updated_at', t)
  for i = 1, #extra, 2 do redis.call('HSET', mkey, extra[i], extra[i + 1]) end
  local ev = t .. '|' .. new
  if detail ~= '' then ev = ev .. '|' .. string.sub(detail, 2) end
  redis.call('RPUSH', tag .. ':ev:' .. id, ev)
  if due == '' then due = t end
  queue_set(tag, id, mkey, new, due, t)
  review_set(tag, id, mkey, old, new)
  if #extra > 0 then index_provider(tag, id, mkey) end
  return 'ok'
end

local function dump(tag, id)
  return {'ok', redis.call('HGETALL', tag .. ':m:' .. id),
          redis.call('LRANGE', tag .. ':ev:' .. id, 0, -1)}
end
"""
)

# KEYS: RedisKeys.moving, the borrower index [, the idempotency record]. ARGV:
# tag, id, status, due ('' for none), now, created, borrower hash, idem ttl (ms;
# '' when the record is not written here), then three counted lists: the
# message hash's field/value pairs (queue and idempotency fields included: the
# caller knows them), its events, the idempotency record's field/value pairs.
#
# The message is new, so this is queue_set and review_set of PRELUDE for a
# message that has no queue state yet, without PRELUDE: building its tables on
# every call was a third of the cost of the commonest write.
COMMIT = (
    r"""
local tag, id, mkey = ARGV[1], ARGV[2], KEYS[1]
if redis.call('EXISTS', mkey) == 1 then return 'exists' end
local status, due, now, created = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local i = 9
local n = tonumber(ARGV[i])
redis.call('HSET', mkey, unpack(ARGV, i + 1, i + n))
i = i + n + 1
n = tonumber(ARGV[i])
if n > 0 then redis.call('RPUSH', tag .. ':ev:' .. id, unpack(ARGV, i + 1, i + n)) end
i = i + n + 1
redis.call('SADD', tag .. ':b:' .. ARGV[7], id)
if due ~= '' and (status == 'queued' or status == 'scheduled') then
  if tonumber(due) <= tonumber(now) then
    local q = tag .. ':q'
    if redis.call('EXISTS', q) == 0 then
      redis.call('XGROUP', 'CREATE', q, '"""
    + GROUP
    + r"""', '0', 'MKSTREAM')
    end
    redis.call('HSET', mkey, 'sid', redis.call('XADD', q, '*', 'm', id, 'due', due))
  else
    redis.call('ZADD', tag .. ':z', due, id)
  end
  redis.call('ZADD', tag .. ':dq', due, id)
  redis.call('HINCRBY', tag .. ':qn', status, 1)
elseif status == 'held' or status == 'blocked' then
  redis.call('ZADD', tag .. ':rv:' .. status, created, id)
  redis.call('ZADD', tag .. ':rva', created, id)
end
if ARGV[8] ~= '' then
  local record = KEYS[#KEYS]
  n = tonumber(ARGV[i])
  redis.call('DEL', record)
  redis.call('HSET', record, unpack(ARGV, i + 1, i + n))
  redis.call('PEXPIRE', record, ARGV[8])
end
return 'ok'
"""
)

# KEYS: RedisKeys.moving. ARGV: tag, id, new, t, detail, expect, due, then
# extra field/value pairs.
TRANSITION = (
    PRELUDE
    + r"""
local tag, id = ARGV[1], ARGV[2]
local extra = {}
for i = 8, #ARGV do extra[#extra + 1] = ARGV[i] end
local r = move(tag, id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], extra)
if r ~= 'ok' then return {r} end
return dump(tag, id)
"""
)

# KEYS: RedisKeys.moving. ARGV: tag, id, provider, t, owner, lease_until
BEGIN_ATTEMPT = (
    PRELUDE
    + r"""
local tag, id, provider, t, owner, lease = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local mkey = tag .. ':m:' .. id
local n = tonumber(redis.call('HGET', mkey, 'attempts') or '0') + 1
local r = move(tag, id, 'sending', t, '=attempt ' .. n .. ' via ' .. provider,
  'queued,scheduled,sending', '', {'attempts', tostring(n), 'provider', provider})
if r ~= 'ok' then return {r} end
redis.call('RPUSH', tag .. ':at:' .. id, n .. '|' .. provider .. '|' .. t .. '|' .. owner)
if redis.call('HEXISTS', mkey, 'qs') == 1 then lease_set(tag, id, mkey, owner, lease) end
return dump(tag, id)
"""
)

# KEYS: record. ARGV: request hash, now, lease until, ttl ms.
IDEM_CLAIM = r"""
local r = redis.call('HMGET', KEYS[1], 'rh', 'sc', 'resp', 'lease', 'exp')
local now = tonumber(ARGV[2])
if r[1] and r[2] and tonumber(r[5]) > now then return {'done', r[1], r[2], r[3]} end
if r[1] and not r[2] and tonumber(r[4] or '0') > now then return {'in_flight', r[1]} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rh', ARGV[1], 'lease', ARGV[3], 'exp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'claimed', ARGV[1]}
"""

# KEYS: record. ARGV: ttl ms, then the record's field/value pairs. (An
# acceptance whose record lives on another shard than its message: see
# RedisStore.commit_acceptance.)
IDEM_PUT = r"""
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'ok'
"""

# KEYS: record. ARGV: the new sealed answer.
IDEM_SCRUB = r"""
if redis.call('HEXISTS', KEYS[1], 'resp') == 1 then
  redis.call('HSET', KEYS[1], 'resp', ARGV[1])
  return 1
end
return 0
"""

IDEM_RELEASE = r"""
if redis.call('HEXISTS', KEYS[1], 'rh') == 1 and redis.call('HEXISTS', KEYS[1], 'sc') == 0 then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: clients, webhook secrets, times. ARGV: id, row JSON, secret ('' none),
# now, create ('1'/'0'), the invalidation channel.
PUT_CLIENT = r"""
local id = ARGV[1]
local exists = redis.call('HEXISTS', KEYS[1], id) == 1
if ARGV[5] == '1' and exists then return 'exists' end
if ARGV[5] ~= '1' and not exists then return 'missing' end
redis.call('HSET', KEYS[1], id, ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], id, ARGV[3]) end
local created = ARGV[4]
if exists then created = string.match(redis.call('HGET', KEYS[3], id) or ARGV[4], '^[^|]*') end
redis.call('HSET', KEYS[3], id, created .. '|' .. ARGV[4])
redis.call('PUBLISH', ARGV[6], 'c:' .. id)
return 'ok'
"""

# KEYS: clients, keys, key order. ARGV: key id, client id, row JSON, created.
ADD_KEY = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 'missing' end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 'exists' end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 'ok'
"""

# KEYS: keys, revoked. ARGV: key id, when, the invalidation channel (every
# cache of the key, in every process, drops it: gateway/store/redis_invalidation.py).
REVOKE_KEY = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local revoked = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'k:' .. ARGV[1])
return revoked
"""

# KEYS: RedisKeys.moving [, the idempotency record when ARGV[5] is set]. ARGV:
# tag, id, new sealed fields, now, new sealed answer ('' none). Seals the
# message again, cancels it when it was not handed to a provider yet, and
# replaces the idempotency answer. Answers 'cancelled', 'kept' or 'nokey'.
ERASE = (
    PRELUDE
    + r"""
local tag, id, t = ARGV[1], ARGV[2], ARGV[4]
local mkey = tag .. ':m:' .. id
local status = redis.call('HGET', mkey, 'status')
if not status then return 'nokey' end
redis.call('HSET', mkey, 'sealed', ARGV[3])
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[#KEYS], 'resp') == 1 then
  redis.call('HSET', KEYS[#KEYS], 'resp', ARGV[5])
end
if CANCELLABLE[status] then
  move(tag, id, 'cancelled', t, '=erased', 'queued,scheduled,held', '', {})
  return 'cancelled'
end
return 'kept'
"""
)
