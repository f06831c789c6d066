"""The audit log's registry, checkpoint copies and wrapped data keys in the
Redis store (see :class:`gateway.store.base.AuditStore`), under the meta hash
tag. Nothing here is personal: instance ids, seqs, signatures, key ids,
blind-index hashes and keys wrapped under the key-encryption key.

Layout: ``ac`` (instance -> JSON of the chain), ``acc`` (instance -> closed
at), ``acp`` (set of checkpoint lines with their instance and seq), ``ak``
(key id -> JSON: generation, owner, created), ``akw`` (key id -> wrapped key,
deleted when destroyed), ``akd`` (key id -> destroyed at), ``ao`` (owner NUL
generation -> its live key id: the unique index of SQLite), ``aown:<owner>``
(the key ids of an owner), ``agl`` (rotation key ids in insertion order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from redis.commands.core import AsyncScript

from gateway.store.base import AuditChain, AuditDataKey
from gateway.store.redis_codec import dt, ts
from gateway.store.redis_conn import RedisConnection, ScriptCall

# KEYS: ak, akw, ao, agl, then aown:<owner> per key. ARGV: per key: id, owner
# ('' none), generation, row JSON, wrapped. INSERT OR IGNORE on the key id and
# on the live (owner, generation).
ADD_KEYS = r"""
for i = 1, #ARGV / 5 do
  local b = (i - 1) * 5
  local id, owner, gen = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local row, wrapped = ARGV[b + 4], ARGV[b + 5]
  if redis.call('HEXISTS', KEYS[1], id) == 0 then
    local og = owner .. '\0' .. gen
    if owner == '' or redis.call('HEXISTS', KEYS[3], og) == 0 then
      redis.call('HSET', KEYS[1], id, row)
      redis.call('HSET', KEYS[2], id, wrapped)
      if owner == '' then
        redis.call('RPUSH', KEYS[4], id)
      else
        redis.call('HSET', KEYS[3], og, id)
        redis.call('SADD', KEYS[4 + i], id)
      end
    end
  end
end
return 'ok'
"""

# KEYS: ak, akw, akd, ao, aown:<owner>. ARGV: owner, when.
DESTROY_KEYS = r"""
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    local row = cjson.decode(redis.call('HGET', KEYS[1], id))
    redis.call('HDEL', KEYS[2], id)
    redis.call('HSET', KEYS[3], id, ARGV[2])
    local og = ARGV[1] .. '\0' .. row[1]
    if redis.call('HGET', KEYS[4], og) == id then redis.call('HDEL', KEYS[4], og) end
    out[#out + 1] = id
  end
end
return out
"""

# KEYS: ao, ak, akw, akd. ARGV: owner NUL generation, per owner. The live key
# of each that has one: {id, row, wrapped, destroyed} ('' for none), in one
# round trip (the audit writer looks owners up on the acceptance path).
OWNER_KEYS = r"""
local out = {}
for i = 1, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  if id then
    out[#out + 1] = {id, redis.call('HGET', KEYS[2], id) or '',
      redis.call('HGET', KEYS[3], id) or '', redis.call('HGET', KEYS[4], id) or ''}
  end
end
return out
"""

# KEYS: ac, acc. ARGV: instance, row JSON.
REGISTER_CHAIN = r"""
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
return 'ok'
"""

# KEYS: ac, acc. ARGV: instance, when.
CLOSE_CHAIN = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 'ok'
"""


class RedisAudit(RedisConnection):
    _add_keys: AsyncScript
    _destroy_keys: AsyncScript
    _register_chain: AsyncScript
    _close_chain: AsyncScript
    _owner_keys: AsyncScript

    def _register_audit_scripts(self) -> None:
        register = self._script
        self._add_keys = register(ADD_KEYS)
        self._destroy_keys = register(DESTROY_KEYS)
        self._register_chain = register(REGISTER_CHAIN)
        self._close_chain = register(CLOSE_CHAIN)
        self._owner_keys = register(OWNER_KEYS)

    def _m(self, *names: str) -> list[str]:
        return [self.keys.meta(n) for n in names]

    # -- chains and checkpoints -------------------------------------------------
    async def register_audit_chain(self, chain: AuditChain) -> None:
        row = json.dumps([chain.kind, chain.host, chain.pid, ts(chain.started_at)])
        await self._call(
            self._register_chain(keys=self._m("ac", "acc"), args=[chain.instance, row])
        )

    async def close_audit_chain(self, instance: str, when: datetime) -> None:
        await self._call(self._close_chain(keys=self._m("ac", "acc"), args=[instance, ts(when)]))

    async def list_audit_chains(self) -> Sequence[AuditChain]:
        rows, closed = await self._pipeline(
            ("hgetall", (self.keys.meta("ac"),)), ("hgetall", (self.keys.meta("acc"),))
        )
        chains = []
        for instance, row in rows.items():
            kind, host, pid, started = json.loads(row)
            when = closed.get(instance)
            chains.append(
                AuditChain(
                    instance, kind, host, pid, dt(started), None if when is None else dt(when)
                )
            )
        return sorted(chains, key=lambda c: (c.started_at, c.instance))

    async def add_audit_checkpoint(self, instance: str, seq: int, line: str) -> None:
        row = json.dumps([instance, seq, line], ensure_ascii=False)
        await self._call(self.redis.sadd(self.keys.meta("acp"), row))

    async def list_audit_checkpoints(self) -> Sequence[str]:
        rows = [json.loads(r) for r in await self._call(self.redis.smembers(self.keys.meta("acp")))]
        return [str(r[2]) for r in sorted(rows, key=lambda r: (r[0], r[1], r[2]))]

    # -- data keys --------------------------------------------------------------
    async def _keys_by_id(self, ids: Sequence[str]) -> list[AuditDataKey | None]:
        if not ids:
            return []
        rows, wrapped, destroyed = await self._pipeline(
            ("hmget", (self.keys.meta("ak"), list(ids))),
            ("hmget", (self.keys.meta("akw"), list(ids))),
            ("hmget", (self.keys.meta("akd"), list(ids))),
        )
        out: list[AuditDataKey | None] = []
        for key_id, row, wrap, gone in zip(ids, rows, wrapped, destroyed, strict=True):
            if row is None:
                out.append(None)
                continue
            generation, owner, created = json.loads(row)
            out.append(
                AuditDataKey(
                    key_id, generation, owner, wrap, dt(created), None if gone is None else dt(gone)
                )
            )
        return out

    def _add_call(self, keys: Sequence[AuditDataKey]) -> ScriptCall:
        args: list[str] = []
        for k in keys:
            row = json.dumps([k.generation, k.owner, ts(k.created_at)])
            args += [k.key_id, k.owner or "", k.generation, row, k.wrapped or ""]
        owners = [self.keys.meta(f"aown:{k.owner}") for k in keys]
        return self._add_keys, [*self._m("ak", "akw", "ao", "agl"), *owners], args

    async def _add(self, keys: Sequence[AuditDataKey]) -> None:
        await self._hot(*self._add_call(keys))

    async def add_audit_key(self, key: AuditDataKey) -> AuditDataKey:
        await self._add(
            [AuditDataKey(key.key_id, key.generation, None, key.wrapped, key.created_at)]
        )
        found = (await self._keys_by_id([key.key_id]))[0]
        assert found is not None  # noqa: S101 - just inserted or already there
        return found

    async def get_audit_key(self, key_id: str) -> AuditDataKey | None:
        return (await self._keys_by_id([key_id]))[0]

    async def current_audit_generation(self) -> AuditDataKey | None:
        ids = await self._call(self.redis.lrange(self.keys.meta("agl"), 0, -1))
        keys = [
            (k.created_at, n, k)
            for n, k in enumerate(await self._keys_by_id([str(i) for i in ids]))
            if k
        ]
        return max(keys, key=lambda x: (x[0], x[1]))[2] if keys else None

    def _owner_keys_call(self, generation: str, owners: Sequence[str]) -> ScriptCall:
        fields = [f"{o}\x00{generation}" for o in owners]
        return self._owner_keys, self._m("ao", "ak", "akw", "akd"), fields

    @staticmethod
    def _live_owner_keys(rows: Sequence[Sequence[str]]) -> dict[str, AuditDataKey]:
        out: dict[str, AuditDataKey] = {}
        for key_id, row, wrapped, destroyed in rows:
            if not row or not wrapped:
                continue
            generation, owner, created = json.loads(row)
            if owner is not None:
                gone = dt(destroyed) if destroyed else None
                out[owner] = AuditDataKey(key_id, generation, owner, wrapped, dt(created), gone)
        return out

    async def owner_keys(self, generation: str, owners: Sequence[str]) -> dict[str, AuditDataKey]:
        if not owners:
            return {}
        return self._live_owner_keys(await self._hot(*self._owner_keys_call(generation, owners)))

    async def add_owner_keys(self, keys: Sequence[AuditDataKey]) -> dict[str, AuditDataKey]:
        """Adds the keys and reads back the live ones: one round trip."""
        if not keys:
            return {}
        by_generation: dict[str, list[str]] = {}
        for k in keys:
            by_generation.setdefault(k.generation, []).append(str(k.owner))
        lookups = [self._owner_keys_call(g, owners) for g, owners in by_generation.items()]
        if self._mux is not None:  # one connection: in order, with everyone's calls
            await self._add(keys)
            answers = [await self._hot(*lookup) for lookup in lookups]
        elif self.cluster:  # scripts side by side there: the insert must come first
            await self._add(keys)
            answers = await self._run_scripts(lookups)
        else:
            answers = (await self._run_scripts([self._add_call(keys), *lookups]))[1:]
        out: dict[str, AuditDataKey] = {}
        for rows in answers:
            out.update(self._live_owner_keys(rows))
        return out

    async def destroy_owner_keys(self, owner: str, when: datetime) -> list[str]:
        keys = [*self._m("ak", "akw", "akd", "ao"), self.keys.meta(f"aown:{owner}")]
        destroyed = await self._call(self._destroy_keys(keys=keys, args=[owner, ts(when)]))
        if destroyed:
            await self.rewrite_aof()
        return [str(i) for i in destroyed]
