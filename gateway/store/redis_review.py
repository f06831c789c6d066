"""The compliance-review queue and the reviewer registry in the Redis store
(the port: :mod:`gateway.store.review`; the semantics of sqlite_review.py,
whose cursor format it shares).

Per shard, ``<tag>:rv:held`` and ``<tag>:rv:blocked`` hold the messages in
those statuses and ``<tag>:rva`` every message accepted held or blocked (for
the summary counts), scored by creation time; the scripts that change a status
keep them in step. A listing reads the ids in its time range from every shard
in one round trip, filters on the unsealed columns (client, purpose,
findings) and opens only the page it returns. Reviewers live in the meta hash
``rvr`` (name -> JSON; passwords only as scrypt hashes); their sign-out
instants (web sessions issued at or before one are refused) in the sorted set
``rvs`` under the same hash tag (name scored by the instant), apart from the
record ``put_reviewer`` replaces and only ever moved forward (``ZADD GT``).
``get_reviewer`` reads both in one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.models import Status
from gateway.store.redis_codec import RedisMessageReader, dt, ts
from gateway.store.review import (
    ReviewCount,
    Reviewer,
    ReviewPage,
    ReviewQuery,
    ReviewSource,
    StoredReviewer,
)
from gateway.store.sqlite_review import decode_cursor, encode_cursor

_COLUMNS = ("client_id", "purpose", "findings", "status")


def _stopping(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f.get("action") in ("hold", "block")]


def _by_content(findings: list[dict[str, Any]]) -> bool:
    return any(f.get("kind") in ("content", "pii") for f in _stopping(findings))


def _matches(query: ReviewQuery, row: list[str | None]) -> bool:
    client, purpose, raw, _ = row
    if client is None or raw is None:
        return False
    if query.clients is not None and client not in query.clients:
        return False
    if query.purpose is not None and purpose != query.purpose:
        return False
    findings = json.loads(raw)
    if query.source is ReviewSource.CONTENT and not _by_content(findings):
        return False
    if query.source is ReviewSource.POLICY and _by_content(findings):
        return False
    return query.category is None or any(f.get("category") == query.category for f in findings)


def _reviewer(name: str, row: str, signed_out: float | None) -> tuple[Reviewer, str]:
    can_reveal, clients, password_hash, created, disabled = json.loads(row)
    reviewer = Reviewer(
        name=name,
        can_reveal=bool(can_reveal),
        clients=tuple(clients),
        created_at=dt(created),
        disabled_at=None if disabled is None else dt(disabled),
        signed_out_at=None if signed_out is None else datetime.fromtimestamp(signed_out, UTC),
    )
    return reviewer, password_hash


class RedisReview(RedisMessageReader):
    async def _range(self, names: Sequence[str], low: str, high: str) -> list[tuple[float, str]]:
        """(created_at, id) of the members of ``<tag>:<name>`` in [low, high] on
        every shard, newest first (then id descending)."""
        pipe = self.redis.pipeline(transaction=False)
        for tag in self.keys.tags():
            for name in names:
                pipe.zrangebyscore(f"{tag}:{name}", low, high, withscores=True)
        found = {(score, mid) for rows in await self._call(pipe.execute()) for mid, score in rows}
        return sorted(found, reverse=True)

    async def _columns(self, ids: Sequence[str]) -> list[list[str | None]]:
        pipe = self.redis.pipeline(transaction=False)
        for mid in ids:
            pipe.hmget(self.keys.message(mid), *_COLUMNS)
        return list(await self._call(pipe.execute())) if ids else []

    async def list_for_review(self, query: ReviewQuery) -> ReviewPage:
        if not query.statuses or query.limit < 1:
            return ReviewPage((), None)
        cursor = None if query.cursor is None else decode_cursor(query.cursor)
        low = "-inf" if query.after is None else ts(query.after)
        bounds = [b for b in (cursor and cursor[0], query.before and query.before.timestamp()) if b]
        high = repr(min(bounds)) if bounds else "+inf"  # inclusive: the strict tests follow
        names = [f"rv:{s}" for s in sorted(str(s) for s in query.statuses)]
        entries = [
            e
            for e in await self._range(names, low, high)
            if (cursor is None or e < cursor)
            and (query.before is None or e[0] < query.before.timestamp())
        ]
        page: list[tuple[float, str]] = []
        chunk = max(query.limit * 2, 100)
        for start in range(0, len(entries), chunk):
            part = entries[start : start + chunk]
            rows = await self._columns([mid for _, mid in part])
            wanted = {str(s) for s in query.statuses}
            page += [
                e
                for e, row in zip(part, rows, strict=True)
                if row[3] in wanted and _matches(query, row)
            ]
            if len(page) > query.limit:
                break
        shown = page[: query.limit]
        messages = [m for m in await self._load_many([mid for _, mid in shown]) if m is not None]
        more = len(page) > query.limit
        return ReviewPage(messages, encode_cursor(*shown[-1]) if more and shown else None)

    async def review_counts(
        self, clients: frozenset[str] | None, since: datetime, until: datetime
    ) -> Sequence[ReviewCount]:
        if clients is not None and not clients:
            return []
        entries = await self._range(["rva"], ts(since), f"({ts(until)}")
        rows = await self._columns([mid for _, mid in entries])
        counts: dict[tuple[str, str, str], set[str]] = {}
        for (created, mid), (client, _, raw, status) in zip(entries, rows, strict=True):
            if client is None or raw is None or status is None:
                continue
            if clients is not None and client not in clients:
                continue
            day = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")
            categories = {str(f.get("category") or "") for f in _stopping(json.loads(raw))}
            for category in categories or {""}:
                counts.setdefault((day, status, category), set()).add(mid)
        return [ReviewCount(d, Status(s), c, len(ids)) for (d, s, c), ids in sorted(counts.items())]

    # -- reviewers ------------------------------------------------------------
    async def put_reviewer(self, reviewer: Reviewer, password_hash: str, *, create: bool) -> None:
        disabled = None if reviewer.disabled_at is None else ts(reviewer.disabled_at)
        row = json.dumps(
            [
                reviewer.can_reveal,
                list(reviewer.clients),
                password_hash,
                ts(reviewer.created_at),
                disabled,
            ]
        )
        key, signouts = self.keys.meta("rvr"), self.keys.meta("rvs")
        if create:
            if not await self._call(self.redis.hsetnx(key, reviewer.name, row)):
                raise ValueError("a reviewer with this name exists")
            if reviewer.signed_out_at is not None:
                await self._sign_out(reviewer.name, reviewer.signed_out_at)
            return
        # one round trip; the sign-out first, so a write cut short in between
        # ends the sessions without having changed the record (fails closed)
        pipe = self.redis.pipeline(transaction=False)
        if reviewer.signed_out_at is not None:
            pipe.zadd(signouts, {reviewer.name: reviewer.signed_out_at.timestamp()}, gt=True)
        pipe.hset(key, reviewer.name, row)
        await self._call(pipe.execute())

    async def _sign_out(self, name: str, at: datetime) -> None:
        await self._call(self.redis.zadd(self.keys.meta("rvs"), {name: at.timestamp()}, gt=True))

    async def end_reviewer_sessions(self, name: str, at: datetime) -> bool:
        # reviewers are never deleted: a name seen here stays
        if not await self._call(self.redis.hexists(self.keys.meta("rvr"), name)):
            return False
        await self._sign_out(name, at)
        return True

    async def get_reviewer(self, name: str) -> StoredReviewer | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.meta("rvr"), name)
        pipe.zscore(self.keys.meta("rvs"), name)
        row, signed_out = await self._call(pipe.execute())
        return None if row is None else StoredReviewer(*_reviewer(name, str(row), signed_out))

    async def list_reviewers(self) -> Sequence[Reviewer]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.meta("rvr"))
        pipe.zrange(self.keys.meta("rvs"), 0, -1, withscores=True)
        rows, scored = await self._call(pipe.execute())
        signouts = {str(n): float(at) for n, at in scored}
        return [_reviewer(str(n), str(rows[n]), signouts.get(str(n)))[0] for n in sorted(rows)]
