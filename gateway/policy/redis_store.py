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
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.retry import Retry

from gateway.policy.caps import CapCheck, CapDenied, PolicyUnavailable
from gateway.policy.gate import ContactGate
from gateway.policy.optouts import ContactState
from gateway.store.redis_mux import RedisMux, multiplexable
from gateway.store.redis_packing import connection_options

# The reservation, after a prelude that sets n (counters: KEYS[1..n]), record
# (the reservation record), base (the ARGV index before the first counter's
# four) and member, at, now. Per counter: calendar (1/0), lo or span, hi,
# limit. Answers {1} (reserved) or {0, index of the counter refused,
# milliseconds to wait}. The rolling check is gateway.policy.caps.over_limit,
# step for step.
_RESERVE_BODY = """
local day = 86400000
if redis.call('EXISTS', record) == 1 then return {1} end
for i = 1, n do
  local b = base + (i - 1) * 4
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
  local b = base + (i - 1) * 4
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

# KEYS: the counters, then the reservation record. ARGV: member, at, now, then
# the counters' four.
RESERVE = (
    """
local n = #KEYS - 1
local record, base = KEYS[n + 1], 3
local member, at, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
"""
    + _RESERVE_BODY
)

# The contact check and the reservation in one step (ContactPolicy.check_and_reserve).
# KEYS: the counters, the reservation record, the number's contact hash. ARGV:
# member, at, now, the consent field the purpose needs ('' none), k, the k
# opt-out fields that stop the purpose, then the counters' four. Answers
# {2, 'opt_out' | 'no_consent'} (nothing reserved) or as RESERVE.
CONTACT_RESERVE = (
    """
local n = #KEYS - 2
local record, contact = KEYS[n + 1], KEYS[n + 2]
local k = tonumber(ARGV[5])
for j = 1, k do
  if redis.call('HEXISTS', contact, ARGV[5 + j]) == 1 then return {2, 'opt_out'} end
end
if ARGV[4] ~= '' and redis.call('HEXISTS', contact, ARGV[4]) == 0 then
  return {2, 'no_consent'}
end
local base = 5 + k
local member, at, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
"""
    + _RESERVE_BODY
)

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
            **connection_options(url),
        )
        # the acceptance path's calls share one pipelined connection (redis_mux.py)
        self._mux = RedisMux(url, timeout=timeout) if multiplexable(url) else None
        self._reserve = self.redis.register_script(RESERVE)
        self._contact_reserve = self.redis.register_script(CONTACT_RESERVE)
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
        if self._mux is not None:
            await self._mux.close()
        await self.redis.aclose()

    async def ping(self) -> None:
        await self._call(self.redis.ping())

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise PolicyUnavailable(f"redis: {exc.__class__.__name__}") from exc

    async def _hot(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        if self._mux is None:
            return await self._call(script(keys=keys, args=args))
        return await self._call(self._mux.evalsha(script, keys, args))

    # -- caps -----------------------------------------------------------------
    def _cap_keys(self, check: CapCheck) -> list[str]:
        keys = [self._key(check.client, "cap", c.name) for c in check.counters]
        keys.append(self._key(check.client, "res", check.member))
        return keys

    @staticmethod
    def _cap_args(check: CapCheck) -> list[str | int]:
        args: list[str | int] = []
        for c in check.counters:
            args += [1 if c.calendar else 0, c.lo if c.calendar else c.span, c.hi, c.limit]
        return args

    @staticmethod
    def _denied(check: CapCheck, answer: list[Any]) -> CapDenied | None:
        if int(answer[0]) == 1:
            return None
        refused = check.counters[int(answer[1]) - 1]
        return CapDenied(refused.rule, refused.subject, int(answer[2]) / 1000)

    async def reserve(self, check: CapCheck) -> CapDenied | None:
        args = [check.member, check.at, check.now, *self._cap_args(check)]
        answer = await self._call(self._reserve(keys=self._cap_keys(check), args=args))
        return self._denied(check, answer)

    async def check_and_reserve(
        self, phone: str, gate: ContactGate, check: CapCheck
    ) -> str | CapDenied | None:
        """The contact check of ``gate`` for the number (its blind-index hash),
        then, when it passes, :meth:`reserve`: one script, one round trip (the
        keys share the client's hash tag). The refusing rule (``opt_out``,
        ``no_consent``), a :class:`CapDenied`, or None when reserved."""
        keys = [*self._cap_keys(check), self._key(check.client, "contact", phone)]
        stops = [f"o:{scope}" for scope in gate.opt_out_scopes]
        consent = "" if gate.consent is None else f"c:{gate.consent}"
        args: list[str | int] = [check.member, check.at, check.now, consent, len(stops), *stops]
        args += self._cap_args(check)
        answer = await self._hot(self._contact_reserve, keys, args)
        if int(answer[0]) == 2:
            return str(answer[1])
        return self._denied(check, answer)

    async def release(self, client: str, member: str) -> None:
        record = self._key(client, "res", member)
        counters = await self._call(self.redis.smembers(record))
        if counters:
            await self._call(self._release(keys=[record, *sorted(counters)], args=[member]))

    # -- opt-outs and consents ------------------------------------------------
    # one hash per (client, number): "o:<scope>" -> "<at>|<source>",
    # "c:<purpose>" -> "<at>|<sealed evidence>"
    async def state(self, client: str, phone: str) -> ContactState:
        key = self._key(client, "contact", phone)
        if self._mux is None:
            fields = await self._call(self.redis.hkeys(key))
        else:
            fields = await self._call(self._mux.execute("HKEYS", key))
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
