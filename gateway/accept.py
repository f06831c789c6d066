"""The acceptance of one message, in DESIGN.md's order:

1. claim the idempotency key (a concurrent duplicate waits, then replays);
2. run the pipeline (filters, policy; reservations);
3. write the decision to the audit log (durable);
4. commit message, queue entry and idempotency record in one transaction;
5. if 3 or 4 fails: give reservations back, write a compensating audit
   record where 3 succeeded, answer 503. Nothing was sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from config.settings import Settings
from gateway.audit import AuditUnavailable, AuditWriter
from gateway.audit_records import decision_entry
from gateway.clock import Clock, rfc3339
from gateway.errors import (
    Blocked,
    CapExceeded,
    IdempotencyConflict,
    Problem,
    StoreUnavailable,
    Unavailable,
)
from gateway.metrics import Metrics
from gateway.models import ApiKey, Client, Decision, Event, Message, Status
from gateway.pipeline import Draft, Pipeline
from gateway.ratelimit import ClientRateLimiter
from gateway.schemas import SendRequest, mask_phone
from gateway.store.base import ClaimState, IdempotencyRecord, Store

log = logging.getLogger("lendsms.accept")

_STATUS_FOR = {
    Decision.QUEUE: Status.QUEUED,
    Decision.SCHEDULE: Status.SCHEDULED,
    Decision.HOLD: Status.HELD,
    Decision.BLOCK: Status.BLOCKED,
}
IDEMPOTENCY_LEASE = 30.0  # seconds a crashed first request holds its key
IDEMPOTENCY_WAIT = 35.0  # how long a duplicate waits for the first to finish


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False
    message_id: str | None = None


def new_message_id(now: datetime, shard_seed: str | None = None) -> str:
    """Time-ordered and unguessable: 12 hex digits of milliseconds, 16 random.
    With ``shard_seed`` (client and Idempotency-Key) the last two of those are
    ``crc32(seed) & 0xff``, so the Redis store keeps the message and its
    idempotency record under one hash tag (gateway/store/redis_keys.py)."""
    tail = secrets.token_hex(8)
    if shard_seed is not None:
        tail = f"{tail[:14]}{zlib.crc32(shard_seed.encode()) & 0xFF:02x}"
    return f"msg_{int(now.timestamp() * 1000):012x}{tail}"


def accepted_body(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "status": str(m.status),
        "to_masked": m.to_masked,
        "body": m.body,
        "segments": m.segments,
        "encoding": m.encoding,
        "findings": [f.to_json() for f in m.findings],
        "scheduled_at": rfc3339(m.scheduled_at) if m.scheduled_at else None,
    }


class Acceptor:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        audit: AuditWriter,
        pipeline: Pipeline,
        clock: Clock,
        metrics: Metrics,
        limiter: ClientRateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter or ClientRateLimiter()
        self.store = store
        self.audit = audit
        self.pipeline = pipeline
        self.clock = clock
        self.metrics = metrics
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def submit(
        self, key: ApiKey, client: Client, request: SendRequest, idem: tuple[str, str] | None
    ) -> Answer:
        """``idem`` is (Idempotency-Key, request hash) when the client sent a key."""
        if idem is None:
            return await self._accept(key, client, request, None)
        lock_key = (client.id, idem[0])
        lock = self._locks.setdefault(lock_key, asyncio.Lock())
        try:
            async with lock:
                return await self._with_key(key, client, request, idem)
        finally:
            if not lock.locked() and self._locks.get(lock_key) is lock:
                del self._locks[lock_key]

    async def _with_key(
        self, key: ApiKey, client: Client, request: SendRequest, idem: tuple[str, str]
    ) -> Answer:
        idem_key, req_hash = idem
        deadline = time.monotonic() + IDEMPOTENCY_WAIT
        delay = 0.01
        while True:
            claim = await self.store.claim_idempotency(
                client.id, idem_key, req_hash, self.clock.now(), IDEMPOTENCY_LEASE
            )
            if claim.state is not ClaimState.CLAIMED and claim.request_hash != req_hash:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used with a different request body"
                )
            if claim.state is ClaimState.DONE:
                assert claim.status_code is not None and claim.response is not None  # noqa: S101
                return Answer(
                    claim.status_code,
                    claim.response,
                    replayed=True,
                    message_id=claim.response.get("id"),
                )
            if claim.state is ClaimState.CLAIMED:
                break
            if time.monotonic() > deadline:  # another process holds it for too long
                raise Unavailable(
                    "a request with this Idempotency-Key is still in progress",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        try:
            return await self._accept(key, client, request, idem)
        except BaseException:
            # 400/429/503 and crashes are not kept: the client may retry with the key
            await asyncio.shield(self._release(client.id, idem_key))
            raise

    async def _release(self, client_id: str, idem_key: str) -> None:
        try:
            await self.store.release_idempotency(client_id, idem_key)
        except StoreUnavailable:
            log.warning("could not release an idempotency claim; it expires by itself")

    async def _accept(
        self, key: ApiKey, client: Client, request: SendRequest, idem: tuple[str, str] | None
    ) -> Answer:
        self.limiter.check(client.id, client.rate)
        now = self.clock.now()
        draft = Draft(
            request=request,
            client=client,
            now=now,
            body=request.text,
            message_id=new_message_id(now, None if idem is None else f"{client.id}\x00{idem[0]}"),
        )
        try:
            await self.pipeline.run(draft)
        except BaseException as exc:
            await asyncio.shield(draft.compensate())
            if isinstance(exc, CapExceeded):
                rule = str(exc.extra.get("rule", "unknown"))
                self.metrics.cap_rejections.labels(rule).inc()
                self.metrics.count_message(client.id, request.purpose, "capped")
            raise
        message = self._message(draft, now)
        status_code = 422 if message.status is Status.BLOCKED else 202
        body = self._answer_body(message)
        record = None
        if idem is not None:
            record = IdempotencyRecord(
                key=idem[0],
                request_hash=idem[1],
                status_code=status_code,
                response=body,
                expires_at=now + timedelta(seconds=self.settings.messages.idempotency_ttl),
            )
        # audit -> commit must complete together even if the client goes away
        await asyncio.shield(self._make_durable(draft, message, key, record))
        self.metrics.count_message(client.id, request.purpose, str(message.status))
        self.metrics.count_findings(message.findings)
        return Answer(status_code, body, message_id=message.id)

    def _message(self, draft: Draft, now: datetime) -> Message:
        req = draft.request
        status = _STATUS_FOR[draft.decision]
        send_at = draft.send_at if draft.decision is Decision.SCHEDULE else None
        start = send_at or now
        ttl = self.settings.messages.ttl[req.purpose]
        segments = draft.segments
        assert segments is not None  # noqa: S101 - the pipeline always counts
        return Message(
            id=draft.message_id or new_message_id(now),
            client_id=draft.client.id,
            to=req.to,
            to_masked=req.to_masked or mask_phone(req.to),
            region=req.region,
            borrower_id=req.borrower_id,
            purpose=req.purpose,
            recipient_role=req.recipient_role,
            text=req.text,
            body=draft.body,
            segments=segments.segments,
            encoding=segments.encoding,
            findings=tuple(draft.findings),
            status=status,
            created_at=now,
            updated_at=now,
            scheduled_at=send_at,
            expires_at=start + timedelta(seconds=ttl),
            reference=req.reference,
            callback_url=req.callback_url,
            events=(Event(at=now, status=status, detail=_event_detail(draft)),),
            template=req.template,
            params=dict(req.params) if req.template else None,
        )

    @staticmethod
    def _answer_body(message: Message) -> dict[str, Any]:
        if message.status is Status.BLOCKED:
            return Blocked(
                "the message breaks the client's policy and will not be sent",
                extra={
                    "id": message.id,
                    "status": "blocked",
                    "findings": [f.to_json() for f in message.findings],
                },
            ).body()
        return accepted_body(message)

    async def _make_durable(
        self, draft: Draft, message: Message, key: ApiKey, record: IdempotencyRecord | None
    ) -> None:
        audited = False
        try:
            await self._audit(message, key)
            audited = True
            due = None
            if message.status in (Status.QUEUED, Status.SCHEDULED):
                due = message.scheduled_at or message.created_at
            await self.store.commit_acceptance(message, record, due)
        except (AuditUnavailable, StoreUnavailable) as exc:
            await draft.compensate()
            if audited:
                await self._compensating_record(message, type(exc).__name__)
            log.error("message not made durable", extra={"reason": type(exc).__name__})
            raise Unavailable(
                "the gateway cannot make the message durable now; nothing was sent",
                headers={"Retry-After": "5"},
            ) from exc
        if message.status in (Status.BLOCKED,):
            await draft.compensate()

    async def _audit(self, message: Message, key: ApiKey) -> None:
        # the writer's on_append hook times every append and counts failures
        entry = decision_entry(message, key.id, self.audit.index)
        await self.audit.append(
            "accepted",
            message_id=message.id,
            clear=entry.clear,
            sealed=entry.sealed,
            owner=entry.owner,
        )

    async def _compensating_record(self, message: Message, reason: str) -> None:
        try:
            await self.audit.append(
                "aborted",
                message_id=message.id,
                clear={"client": message.client_id, "reason": reason},
            )
        except AuditUnavailable:
            log.error("compensating audit record failed", extra={"reason": reason})


def _event_detail(draft: Draft) -> str | None:
    rules = sorted({f.rule for f in draft.findings if str(f.action) in ("block", "hold")})
    if draft.decision is Decision.SCHEDULE and draft.send_at is not None:
        return f"scheduled for {rfc3339(draft.send_at)}"
    return ("rules: " + ", ".join(rules)) if rules else None


__all__ = ["Acceptor", "Answer", "Problem", "accepted_body", "new_message_id"]
