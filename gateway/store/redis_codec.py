"""A message as the Redis store keeps it: one hash with the columns of the
SQLite ``messages`` row (personal fields sealed with the same cipher and
associated data, lookups by the same blind-index hashes), and its events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.crypto import BlindIndex, FieldCipher
from gateway.models import Event, Finding, Message, Status
from gateway.store.redis_conn import RedisConnection
from gateway.store.sqlite import SEALED_FIELDS


def ts(when: datetime) -> str:
    return repr(when.timestamp())


def dt(value: str) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def seal_message(cipher: FieldCipher, m: Message) -> str:
    """As SqliteStore seals a row's personal fields (same fields, same aad)."""
    fields = {name: getattr(m, name) for name in SEALED_FIELDS}
    fields["params"] = None if m.params is None else dict(m.params)
    return cipher.seal_json(fields, aad=f"msg:{m.id}".encode())


def message_fields(m: Message, cipher: FieldCipher, index: BlindIndex) -> dict[str, str]:
    fields = {
        "client_id": m.client_id,
        "to_hash": index.digest("phone", m.to),
        "borrower_hash": index.digest("borrower", f"{m.client_id}\x00{m.borrower_id}"),
        "region": m.region,
        "purpose": m.purpose,
        "recipient_role": m.recipient_role,
        "sealed": seal_message(cipher, m),
        "segments": str(m.segments),
        "encoding": m.encoding,
        "findings": json.dumps([f.to_json() for f in m.findings]),
        "status": str(m.status),
        "created_at": ts(m.created_at),
        "updated_at": ts(m.updated_at),
        "expires_at": ts(m.expires_at),
        "attempts": "0",
    }
    if m.scheduled_at is not None:
        fields["scheduled_at"] = ts(m.scheduled_at)
    return fields


def event_line(at: str, status: Status | str, detail: str | None) -> str:
    return f"{at}|{status}" if detail is None else f"{at}|{status}|{detail}"


def _event(line: str) -> Event:
    parts = line.split("|", 2)
    return Event(
        at=dt(parts[0]), status=Status(parts[1]), detail=parts[2] if len(parts) > 2 else None
    )


def message_from(
    message_id: str, row: Mapping[str, str], events: Sequence[str], cipher: FieldCipher
) -> Message:
    sealed = cipher.open_json(row["sealed"], aad=f"msg:{message_id}".encode())
    scheduled = row.get("scheduled_at")
    return Message(
        id=message_id,
        client_id=row["client_id"],
        region=row["region"],
        purpose=row["purpose"],
        recipient_role=row["recipient_role"],
        segments=int(row["segments"]),
        encoding=row["encoding"],
        findings=tuple(Finding.from_json(f) for f in json.loads(row["findings"])),
        status=Status(row["status"]),
        created_at=dt(row["created_at"]),
        updated_at=dt(row["updated_at"]),
        scheduled_at=None if scheduled is None else dt(scheduled),
        expires_at=dt(row["expires_at"]),
        provider=row.get("provider"),
        provider_message_id=row.get("provider_message_id"),
        attempts=int(row.get("attempts", "0")),
        events=tuple(_event(e) for e in events),
        **{name: sealed.get(name) for name in SEALED_FIELDS},
    )


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    """HGETALL as a script answers it (a flat list) as a dict."""
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


class RedisMessageReader(RedisConnection):
    async def _load_many(self, ids: Sequence[str]) -> list[Message | None]:
        """Messages by id in one round trip (None where there is none)."""
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for message_id in ids:
            tag = self.keys.message_tag(message_id)
            pipe.hgetall(f"{tag}:m:{message_id}")
            pipe.lrange(f"{tag}:ev:{message_id}", 0, -1)
        answers = await self._call(pipe.execute())
        out: list[Message | None] = []
        for i, message_id in enumerate(ids):
            row, events = answers[2 * i], answers[2 * i + 1]
            out.append(message_from(message_id, row, events, self.cipher) if row else None)
        return out

    async def get_message(self, message_id: str) -> Message | None:
        return (await self._load_many([message_id]))[0]
