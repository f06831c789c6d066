"""Redis adapter of the caps and opt-out ports, shared by gateway replicas.

Every key of one client carries the client's hash tag (``{client}``), so a
message's counters live in one Redis Cluster slot and one Lua script checks
and reserves all its windows in one round trip. Counters are sorted sets of
message ids scored by send time (ms); a reservation record (a set of the
counter keys) lets a release find them again. Times come from the gateway's
clock, passed in. Any connection problem is :class:`PolicyUnavailable`
(fail closed); redis-py reconnects by itself on the next call.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from gateway.policy.caps import CapCheck, CapDenied, PolicyUnavailable
from gateway.policy.optouts import ContactState

# KEYS: the counters, then the reservation record. ARGV: member, at, now, then
# per counter: calendar (1/0), lo or span, hi, limit. Answers {1} (reserved)
# or {0, index of the counter refused, milliseconds to wait}. The rolling
# check is gateway.policy.caps.over_limit, step for step.
RESERVE = """
local n = #KEYS - 1
local member, at, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local day = 86400000
local record = KEYS[n + 1]
if redis.call('EXISTS', record) == 1 then return {1} end
for i = 1, n do
  local b = 3 + (i - 1) * 4
  local calendar, a, hi, limit = ARGV[b + 1] == '1', tonumber(ARGV[b + 2]),
    tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  if calendar then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. (now - 2 * day))
    if redis.call('ZCOUNT', KEYS[i], a, '(' .. hi) >= limit then return {0, i, hi - now} end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. (now - a))
    local raw = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. (at - a), '(' .. (at + a),
      'WITHSCORES')
    local xs = {}
    for k = 2, #raw, 2 do xs[#xs + 1] = tonumber(raw[k]) end
    local first = 1
    for j = 1, #xs do
      while math.max(xs[j], at) - math.min(xs[first], at) >= a do first = first + 1 end
      if j - first + 1 >= limit then return {0, i, xs[first] + a - now} end
    end
  end
end
local keep = 0
for i = 1, n do
  local b = 3 + (i - 1) * 4
  local until_ms = at + tonumber(ARGV[b + 2])
  if ARGV[b + 1] == '1' then until_ms = tonumber(ARGV[b + 3]) end
  local ttl = until_ms + day - now
  redis.call('ZADD', KEYS[i], at, member)
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  if ttl > keep then keep = ttl end
  redis.call('SADD', record, KEYS[i])
end
redis.call('PEXPIRE', record, keep)
return {1}
"""

# KEYS: the reservation record, then its counters. ARGV: member.
RELEASE = """
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return redis.call('DEL', KEYS[1])
"""

_PLAIN_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class RedisPolicyStore:
    def __init__(self, url: str, *, prefix: str, timeout: float) -> None:
        self.prefix = prefix
        self.redis: Redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._reserve = self.redis.register_script(RESERVE)
        self._release = self.redis.register_script(RELEASE)

    def _key(self, client: str, *parts: str) -> str:
        tag = client
        if not _PLAIN_TAG.fullmatch(client):
            tag = hashlib.sha256(client.encode()).hexdigest()
        return f"{self.prefix}{{{tag}}}:" + ":".join(parts)

    async def open(self) -> None:
        """Nothing to open: the pool connects on first use (and the gateway
        starts even while Redis is down; requests fail closed until it is up)."""

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> None:
        await self._call(self.redis.ping())

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise PolicyUnavailable(f"redis: {exc.__class__.__name__}") from exc

    # -- caps -----------------------------------------------------------------
    async def reserve(self, check: CapCheck) -> CapDenied | None:
        keys = [self._key(check.client, "cap", c.name) for c in check.counters]
        keys.append(self._key(check.client, "res", check.member))
        args: list[str | int] = [check.member, check.at, check.now]
        for c in check.counters:
            args += [1 if c.calendar else 0, c.lo if c.calendar else c.span, c.hi, c.limit]
        answer = await self._call(self._reserve(keys=keys, args=args))
        if int(answer[0]) == 1:
            return None
        refused = check.counters[int(answer[1]) - 1]
        return CapDenied(refused.rule, refused.subject, int(answer[2]) / 1000)

    async def release(self, client: str, member: str) -> None:
        record = self._key(client, "res", member)
        counters = await self._call(self.redis.smembers(record))
        if counters:
            await self._call(self._release(keys=[record, *sorted(counters)], args=[member]))

    # -- opt-outs and consents ------------------------------------------------
    # one hash per (client, number): "o:<scope>" -> "<at>|<source>",
    # "c:<purpose>" -> "<at>|<sealed evidence>"
    async def state(self, client: str, phone: str) -> ContactState:
        fields = await self._call(self.redis.hkeys(self._key(client, "contact", phone)))
        return ContactState(
            frozenset(f[2:] for f in fields if f.startswith("o:")),
            frozenset(f[2:] for f in fields if f.startswith("c:")),
        )

    async def add_opt_out(
        self, client: str, phone: str, scope: str, at: datetime, source: str
    ) -> None:
        key = self._key(client, "contact", phone)
        await self._call(self.redis.hset(key, f"o:{scope}", f"{at.timestamp()}|{source}"))

    async def remove_opt_outs(self, client: str, phone: str) -> int:
        key = self._key(client, "contact", phone)
        fields = [f for f in await self._call(self.redis.hkeys(key)) if f.startswith("o:")]
        if not fields:
            return 0
        return int(await self._call(self.redis.hdel(key, *fields)))

    async def add_consent(
        self, client: str, phone: str, purpose: str, at: datetime, evidence: str
    ) -> None:
        key = self._key(client, "contact", phone)
        await self._call(self.redis.hset(key, f"c:{purpose}", f"{at.timestamp()}|{evidence}"))

    async def remove_consent(self, client: str, phone: str, purpose: str) -> bool:
        key = self._key(client, "contact", phone)
        return bool(await self._call(self.redis.hdel(key, f"c:{purpose}")))
