"""The send queue of the Redis store: per shard a Redis Stream read by the
consumer group ``dispatch`` (the consumer is the dispatcher's ``owner``), a
sorted set of what is due later, and the leases of the pending entries — the
layout and the Lua are in gateway/store/redis_stream.py.

Leases and due times are the caller's clock, as in SQLite, so a lease taken
over from a dead worker behaves exactly alike there and here: once
``lease_until`` has passed, the next :meth:`claim_due` gets the entry, with
status ``sending`` when an attempt was recorded — the dispatcher asks the
provider before anything is resent (DESIGN.md invariant 9).

:meth:`claim_due` is two pipelined round trips whatever the number of shards:
one script per shard (:data:`~gateway.store.redis_stream.PEEK`) moves what is
due into the Stream and answers the candidates — entries not yet delivered
and pending entries whose lease has passed — with their due times; the oldest
``limit`` across shards are then taken by one script per shard that has some
(:data:`~gateway.store.redis_stream.CLAIM`: ``XCLAIM`` of the expired ones,
``XREADGROUP`` of new ones). Both check each entry again, and the group hands
an entry to one consumer only, so two dispatchers never hold the same message.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import UTC, datetime

from redis.commands.core import AsyncScript

from gateway.models import Status
from gateway.store.base import QueueItem
from gateway.store.redis_codec import RedisMessageReader, ts
from gateway.store.redis_conn import ScriptCall

_PROMOTE = 500  # at most this many messages per shard move from later to the Stream per claim


class RedisQueue(RedisMessageReader):
    _peek: AsyncScript
    _claim: AsyncScript

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> Sequence[QueueItem]:
        if limit <= 0:
            return []
        t = ts(now)
        tags = self.keys.tags()
        peeked = await self._run_scripts(
            [
                (self._peek, [f"{tag}:q", f"{tag}:z", f"{tag}:pl"], [tag, t, limit, _PROMOTE])
                for tag in tags
            ]
        )
        candidates = heapq.nsmallest(
            limit,
            (
                (float(flat[i + 2]), shard, i, str(flat[i]), str(flat[i + 1]))
                for shard, flat in enumerate(peeked)
                for i in range(0, len(flat), 3)
            ),
        )
        fresh: dict[int, int] = {}  # shard -> how many new entries to read
        expired: dict[int, list[str]] = {}  # shard -> ids to take over
        for _, shard, _, kind, mid in candidates:
            if kind == "n":
                fresh[shard] = fresh.get(shard, 0) + 1
            else:
                expired.setdefault(shard, []).append(mid)
        calls: list[ScriptCall] = []
        for shard in sorted(fresh.keys() | expired.keys()):
            tag = tags[shard]
            args = [tag, t, owner, ts(lease_until), fresh.get(shard, 0), *expired.get(shard, [])]
            hashes = [f"{tag}:m:{mid}" for mid in expired.get(shard, [])]
            calls.append((self._claim, [f"{tag}:q", f"{tag}:pl", *hashes], args))
        held = [
            (float(flat[i + 3]), n, i, QueueItem(flat[i], Status(flat[i + 1]), int(flat[i + 2])))
            for n, flat in enumerate(await self._run_scripts(calls))
            for i in range(0, len(flat), 4)
        ]
        return [item for *_, item in sorted(held, key=lambda h: h[:3])]

    async def queue_depth(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for tag in self.keys.tags():
            pipe.hgetall(f"{tag}:qn")
        out: dict[str, int] = {}
        for counts in await self._call(pipe.execute()):
            for status, n in counts.items():
                out[status] = out.get(status, 0) + int(n)
        return {status: n for status, n in out.items() if n > 0}

    async def oldest_due(self, now: datetime) -> datetime | None:
        t = ts(now)
        pipe = self.redis.pipeline(transaction=False)
        for tag in self.keys.tags():
            pipe.zrangebyscore(f"{tag}:dq", "-inf", t, start=0, num=1, withscores=True)
        firsts = [rows[0][1] for rows in await self._call(pipe.execute()) if rows]
        return None if not firsts else datetime.fromtimestamp(min(firsts), UTC)

    async def last_attempt_provider(self, message_id: str) -> str | None:
        tag = self.keys.message_tag(message_id)
        line = await self._call(self.redis.lindex(f"{tag}:at:{message_id}", -1))
        return None if line is None else str(line).split("|", 2)[1]
