"""The send queue of the Redis store in Lua: a Redis Stream with a consumer
group per shard, and a sorted set for what is due later.

Per shard (one hash tag, one Cluster slot):

* ``<tag>:q`` — a Stream of the messages that are due (ready to send, or being
  sent), one entry each (fields ``m`` id, ``due``), read by the consumer group
  ``dispatch``; the consumer is the dispatcher's ``owner``. The entry id is
  the message hash's ``sid``. Created (``XGROUP CREATE ... MKSTREAM``) by the
  first ``XADD`` on the shard, so a shard that never queued has no key.
* ``<tag>:z`` — the messages due later (scheduled, quiet hours, retry back-off)
  scored by due time; :data:`PEEK` moves those due at the caller's ``now``
  into the Stream (``XADD``).
* ``<tag>:pl`` — the entries in the group's pending entries list (delivered,
  not acknowledged), scored by when they can be taken over: the later of the
  due time and the lease (the message hash's ``lease``).

Leases and due times are the caller's clock, as in SQLite (and the fake
clocks of the tests). A dead consumer's entry is therefore taken over with
``XCLAIM <q> dispatch <owner> 0 <sid> JUSTID`` inside the script that has just
read the lease from the hash and found it passed on the caller's clock — not
with ``XAUTOCLAIM``, whose min-idle-time is the Redis server's clock: idle time
says nothing about a lease the caller's clock set (a lease renewed by
:data:`BEGIN_ATTEMPT` on a slow clock, a fake clock 30 s ahead), so it could
hand out live work or keep dead work. ``:pl`` finds the candidates in
O(log n) instead of walking the pending entries list on every claim.

An entry leaves with ``XACK`` + ``XDEL`` in the same script that moves its
message out of the queue (a sent, failed, cancelled or erased message leaves
no entry and no pending entry); the Stream is never trimmed by length, which
could drop unacknowledged entries.
"""

from __future__ import annotations

GROUP = "dispatch"

# Local functions used by the scripts that move messages (redis_scripts.PRELUDE).
QUEUE_LUA = r"""
local GROUP = 'dispatch'

-- the message's entry leaves the Stream (acked, deleted) and the later set
local function entry_drop(tag, id, mkey)
  local sid = redis.call('HGET', mkey, 'sid')
  if sid then
    local q = tag .. ':q'
    redis.call('XACK', q, GROUP, sid)
    redis.call('XDEL', q, sid)
    redis.call('HDEL', mkey, 'sid')
  end
  redis.call('ZREM', tag .. ':pl', id)
  redis.call('ZREM', tag .. ':z', id)
end

local function entry_add(tag, id, mkey, due)
  local q = tag .. ':q'
  if redis.call('EXISTS', q) == 0 then
    redis.call('XGROUP', 'CREATE', q, GROUP, '0', 'MKSTREAM')
  end
  redis.call('HSET', mkey, 'sid', redis.call('XADD', q, '*', 'm', id, 'due', due))
end

-- keeps the queue in step with a status: queued/scheduled wait (in the Stream
-- when due at now, else in the later set) with no lease; sending keeps the
-- entry; any other status drops it
local function queue_set(tag, id, mkey, new, due, now)
  local qs = redis.call('HGET', mkey, 'qs')
  if new == 'queued' or new == 'scheduled' then
    entry_drop(tag, id, mkey)
    if tonumber(due) <= tonumber(now) then
      entry_add(tag, id, mkey, due)
    else
      redis.call('ZADD', tag .. ':z', due, id)
    end
    redis.call('ZADD', tag .. ':dq', due, id)
    redis.call('HSET', mkey, 'due', due, 'lease', '0', 'owner', '', 'qs', new)
    if qs then redis.call('HINCRBY', tag .. ':qn', qs, -1) end
    redis.call('HINCRBY', tag .. ':qn', new, 1)
  elseif new == 'sending' then
    if qs and qs ~= 'sending' then
      redis.call('ZREM', tag .. ':dq', id)
      redis.call('HINCRBY', tag .. ':qn', qs, -1)
      redis.call('HINCRBY', tag .. ':qn', 'sending', 1)
      redis.call('HSET', mkey, 'qs', 'sending')
    end
  elseif qs then
    entry_drop(tag, id, mkey)
    redis.call('ZREM', tag .. ':dq', id)
    redis.call('HINCRBY', tag .. ':qn', qs, -1)
    redis.call('HDEL', mkey, 'qs', 'due', 'lease', 'owner')
  end
end

-- the lease of a queued message moves to owner; its pending entry (if it was
-- delivered) too, which also resets the entry's idle time
local function lease_set(tag, id, mkey, owner, lease)
  local m = redis.call('HMGET', mkey, 'due', 'sid')
  redis.call('HSET', mkey, 'lease', lease, 'owner', owner)
  if m[2] and #redis.call('XCLAIM', tag .. ':q', GROUP, owner, 0, m[2], 'JUSTID') == 1 then
    redis.call('ZADD', tag .. ':pl', math.max(tonumber(m[1]), tonumber(lease)), id)
  end
end
"""

# KEYS: the shard's Stream, later set, pending leases (message hashes are
# built from the tag: same slot). ARGV: tag, now, n,
# promote (at most this many due messages move from the later set to the
# Stream). Answers kind, id, due for up to n entries not yet delivered
# (kind 'n', Stream order) and up to n pending entries whose lease has passed
# at now (kind 'p'). Reads nothing into the group: claiming is CLAIM.
PEEK = (
    QUEUE_LUA
    + r"""
local tag, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local q, z, pl = KEYS[1], KEYS[2], KEYS[3]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])) do
  local mkey = tag .. ':m:' .. id
  redis.call('ZREM', z, id)
  local due = redis.call('HGET', mkey, 'due')
  if due and redis.call('HEXISTS', mkey, 'qs') == 1 then entry_add(tag, id, mkey, due) end
end
local out = {}
if redis.call('EXISTS', q) == 1 then
  local last = nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', q)) do
    for i = 1, #g, 2 do
      if g[i] == 'name' and g[i + 1] ~= GROUP then break end
      if g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
  end
  if last then
    for _, e in ipairs(redis.call('XRANGE', q, '(' .. last, '+', 'COUNT', n)) do
      out[#out + 1] = 'n'
      out[#out + 1] = e[2][2]
      out[#out + 1] = e[2][4]
    end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', pl, '-inf', ARGV[2], 'LIMIT', 0, n)) do
  local m = redis.call('HMGET', tag .. ':m:' .. id, 'due', 'lease', 'sid')
  if not m[3] then
    redis.call('ZREM', pl, id)
  elseif tonumber(m[1]) <= now and tonumber(m[2]) < now then
    out[#out + 1] = 'p'
    out[#out + 1] = id
    out[#out + 1] = m[1]
  end
end
return out
"""
)

# KEYS: the shard's Stream, pending leases, the hashes of the ids to take over
# (those of entries XREADGROUP delivers are built from the tag, same slot).
# ARGV: tag, now, owner, lease_until,
# k, then ids of pending entries to take over. Takes over those whose lease
# has passed at now (XCLAIM, checked against the hash in this script), then
# reads up to k new entries into the group for owner (XREADGROUP ... >).
# Answers id, status, attempts, due for each entry owner now holds.
CLAIM = (
    QUEUE_LUA
    + r"""
local tag, now, owner, lease, k = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local q, pl = KEYS[1], KEYS[2]
local out = {}
local FIELDS = {'qs', 'due', 'lease', 'status', 'attempts', 'sid', 'owner'}
local function hold(id, m)
  redis.call('HSET', tag .. ':m:' .. id, 'lease', lease, 'owner', owner)
  redis.call('ZADD', pl, math.max(tonumber(m[2]), tonumber(lease)), id)
  out[#out + 1] = id
  out[#out + 1] = m[4]
  out[#out + 1] = m[5]
  out[#out + 1] = m[2]
end
-- a consumer whose last entry was taken over is forgotten (a dead dispatcher)
local function forget(consumer)
  if consumer and consumer ~= '' and consumer ~= owner
      and #redis.call('XPENDING', q, GROUP, '-', '+', 1, consumer) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', q, GROUP, consumer)
  end
end
for i = 6, #ARGV do
  local id = ARGV[i]
  local m = redis.call('HMGET', tag .. ':m:' .. id, unpack(FIELDS))
  if m[1] and m[6] and tonumber(m[2]) <= now and tonumber(m[3]) < now then
    if #redis.call('XCLAIM', q, GROUP, owner, 0, m[6], 'JUSTID') == 1 then
      hold(id, m)
      forget(m[7])
    else
      redis.call('ZREM', pl, id)  -- not pending: XREADGROUP delivers it
    end
  end
end
if k > 0 and redis.call('EXISTS', q) == 1 then
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, owner, 'COUNT', k, 'STREAMS', q, '>')
  for _, e in ipairs(read and read[1][2] or {}) do
    local sid, id = e[1], e[2][2]
    local m = redis.call('HMGET', tag .. ':m:' .. id, unpack(FIELDS))
    if not m[1] or m[6] ~= sid then  -- no longer waiting: acked away
      redis.call('XACK', q, GROUP, sid)
      redis.call('XDEL', q, sid)
    elseif tonumber(m[2]) <= now and tonumber(m[3]) < now then
      hold(id, m)
    else
      -- leased already (an attempt began before any claim): the holder's; or
      -- not due on this caller's clock: pending, taken over once it is
      if m[7] ~= '' and tonumber(m[3]) >= now then
        redis.call('XCLAIM', q, GROUP, m[7], 0, sid, 'JUSTID')
      end
      redis.call('ZADD', pl, math.max(tonumber(m[2]), tonumber(m[3])), id)
    end
  end
end
return out
"""
)
