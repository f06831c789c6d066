"""The shared store on Redis (``store.backend = "redis"``): the same contract
as :class:`gateway.store.sqlite.SqliteStore`, for gateway replicas that share
one Redis (or Redis Cluster: see gateway/store/redis_keys.py for the hash
tags, gateway/store/redis_scripts.py for the data layout).

Every change of a message is one Lua script on its shard — atomic, one round
trip. Personal fields are sealed with the field cipher exactly as in SQLite;
lookups use blind-index hashes. What "durable" means here depends on the
server's persistence, which :meth:`open` checks (redis_conn.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.crypto import BlindIndex, FieldCipher
from gateway.errors import StoreUnavailable, TransitionError
from gateway.models import ApiKey, Client, Message, Status
from gateway.store.base import ClaimState, IdempotencyClaim, IdempotencyRecord, StoredKey
from gateway.store.lookup_cache import LookupCache
from gateway.store.redis_audit import RedisAudit
from gateway.store.redis_codec import (
    dt,
    event_line,
    message_fields,
    message_from,
    pairs,
    ts,
)
from gateway.store.redis_delivery import RedisDelivery
from gateway.store.redis_erase import RedisErasure
from gateway.store.redis_invalidation import InvalidationListener
from gateway.store.redis_queue import RedisQueue
from gateway.store.redis_review import RedisReview
from gateway.store.redis_scripts import (
    ADD_KEY,
    BEGIN_ATTEMPT,
    COMMIT,
    ERASE,
    IDEM_CLAIM,
    IDEM_PUT,
    IDEM_RELEASE,
    IDEM_SCRUB,
    PUT_CLIENT,
    REVOKE_KEY,
    TRANSITION,
)
from gateway.store.redis_stream import CLAIM, PEEK

_KEEP_MS = 86_400_000  # idempotency records outlive their expiry by a day (clock skew)


class RedisStore(RedisQueue, RedisAudit, RedisDelivery, RedisErasure, RedisReview):
    def __init__(
        self,
        url: str,
        cipher: FieldCipher,
        index: BlindIndex,
        *,
        prefix: str = "lendsms",
        shards: int = 16,
        require_durable: bool = False,
        timeout: float = 5.0,
        cluster: bool = False,
        lookup_cache_seconds: float = 0.0,
    ) -> None:
        super().__init__(
            url,
            cipher,
            index,
            prefix=prefix,
            shards=shards,
            require_durable=require_durable,
            timeout=timeout,
            cluster=cluster,
        )
        register = self._script
        self._commit = register(COMMIT)
        self._transition = register(TRANSITION)
        self._begin = register(BEGIN_ATTEMPT)
        self._idem_claim = register(IDEM_CLAIM)
        self._idem_release = register(IDEM_RELEASE)
        self._idem_put = register(IDEM_PUT)
        self._idem_scrub = register(IDEM_SCRUB)
        self._put_client = register(PUT_CLIENT)
        self._add_key = register(ADD_KEY)
        self._revoke_key = register(REVOKE_KEY)
        self._peek = register(PEEK)
        self._claim = register(CLAIM)
        self._erase = register(ERASE)
        self._register_audit_scripts()
        self._register_webhook_scripts()
        # API keys and clients: cached while the invalidation channel is up
        self._keys_cache: LookupCache[StoredKey] = LookupCache(lookup_cache_seconds)
        self._clients_cache: LookupCache[Client] = LookupCache(lookup_cache_seconds)
        self._inval_channel = self.keys.meta("inval")
        self._listener: InvalidationListener | None = None
        if lookup_cache_seconds > 0:
            self._keys_cache.suspend()
            self._clients_cache.suspend()
            self._listener = InvalidationListener(
                url,
                self._inval_channel,
                timeout=timeout,
                on_message=self._invalidate,
                on_up=self._caches_up,
                on_down=self._caches_down,
            )

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        await super().close()

    @property
    def caching(self) -> bool:
        """True while keys and clients are served from the cache (the
        invalidation channel is subscribed)."""
        return self._keys_cache.enabled

    def _invalidate(self, message: str) -> None:
        kind, _, name = message.partition(":")
        if kind == "k":
            self._keys_cache.drop(name)
        elif kind == "c":
            self._clients_cache.drop(name)

    def _caches_up(self) -> None:
        self._keys_cache.resume()
        self._clients_cache.resume()

    def _caches_down(self) -> None:
        self._keys_cache.suspend()
        self._clients_cache.suspend()

    def _listen(self) -> None:
        if self._listener is not None and not self._closed:
            self._listener.start()

    # -- clients and keys -----------------------------------------------------
    async def put_client(self, client: Client, *, webhook_secret: str | None, create: bool) -> None:
        row = json.dumps(
            [client.policy, list(client.signatures), client.rate, list(client.link_domains)],
            ensure_ascii=False,
        )
        secret = "" if webhook_secret is None else self.cipher.seal(webhook_secret, aad=b"wh")
        now = ts(datetime.now(UTC))
        keys = [self.keys.meta("c"), self.keys.meta("cw"), self.keys.meta("ct")]
        args = [client.id, row, secret, now, "1" if create else "0", self._inval_channel]
        try:
            answer = await self._call(self._put_client(keys=keys, args=args))
        finally:
            self._clients_cache.drop(client.id)
        if answer == "exists":
            raise ValueError(f"client {client.id} already exists")
        if answer == "missing":
            raise ValueError(f"no client {client.id}")

    @staticmethod
    def _client(client_id: str, row: str, has_secret: bool) -> Client:
        policy, signatures, rate, domains = json.loads(row)
        return Client(
            id=client_id,
            policy=policy,
            signatures=tuple(signatures),
            rate=rate,
            link_domains=tuple(domains),
            has_webhook_secret=has_secret,
        )

    async def get_client(self, client_id: str) -> Client | None:
        self._listen()
        return await self._clients_cache.load(client_id, self._read_client)

    async def _read_client(self, client_id: str) -> Client | None:
        row, secret = await self._pipeline(
            ("hget", (self.keys.meta("c"), client_id)),
            ("hexists", (self.keys.meta("cw"), client_id)),
        )
        return None if row is None else self._client(client_id, row, bool(secret))

    async def list_clients(self) -> Sequence[Client]:
        rows, secrets = await self._pipeline(
            ("hgetall", (self.keys.meta("c"),)), ("hkeys", (self.keys.meta("cw"),))
        )
        with_secret = set(secrets)
        return [self._client(cid, rows[cid], cid in with_secret) for cid in sorted(rows)]

    async def add_key(self, key: ApiKey, secret_hash: str) -> None:
        created = ts(key.created_at)
        row = json.dumps([key.client_id, sorted(key.scopes), secret_hash, created])
        keys = [self.keys.meta("c"), self.keys.meta("k"), self.keys.meta("ko")]
        answer = await self._call(
            self._add_key(keys=keys, args=[key.id, key.client_id, row, created])
        )
        if answer == "missing":
            raise ValueError(f"no client {key.client_id}")
        if answer == "exists":  # SQLite: a primary-key violation
            raise StoreUnavailable("redis: the key id exists")

    @staticmethod
    def _key(key_id: str, row: str, revoked: str | None) -> tuple[ApiKey, str]:
        client_id, scopes, secret_hash, created = json.loads(row)
        key = ApiKey(
            id=key_id,
            client_id=client_id,
            scopes=frozenset(scopes),
            created_at=dt(created),
            revoked_at=None if revoked is None else dt(revoked),
        )
        return key, secret_hash

    async def get_key(self, key_id: str) -> StoredKey | None:
        self._listen()
        return await self._keys_cache.load(key_id, self._read_key)

    async def _read_key(self, key_id: str) -> StoredKey | None:
        row, revoked = await self._pipeline(
            ("hget", (self.keys.meta("k"), key_id)), ("hget", (self.keys.meta("kr"), key_id))
        )
        if row is None:
            return None
        key, secret_hash = self._key(key_id, row, revoked)
        return StoredKey(key, secret_hash)

    async def list_keys(self) -> Sequence[ApiKey]:
        order, rows, revoked = await self._pipeline(
            ("zrange", (self.keys.meta("ko"), 0, -1)),
            ("hgetall", (self.keys.meta("k"),)),
            ("hgetall", (self.keys.meta("kr"),)),
        )
        return [self._key(k, rows[k], revoked.get(k))[0] for k in order if k in rows]

    async def revoke_key(self, key_id: str, when: datetime) -> bool:
        keys = [self.keys.meta("k"), self.keys.meta("kr")]
        args = [key_id, ts(when), self._inval_channel]
        try:
            return bool(await self._call(self._revoke_key(keys=keys, args=args)))
        finally:
            self._keys_cache.drop(key_id)

    # -- idempotency ----------------------------------------------------------
    async def claim_idempotency(
        self, client_id: str, key: str, request_hash: str, now: datetime, lease_seconds: float
    ) -> IdempotencyClaim:
        t = now.timestamp()
        ttl = int(lease_seconds * 1000) + _KEEP_MS
        answer = await self._hot(
            self._idem_claim,
            [self.keys.idempotency(client_id, key)],
            [request_hash, repr(t), repr(t + lease_seconds), ttl],
        )
        state = ClaimState(answer[0])
        if state is ClaimState.DONE:
            response = self.cipher.open_json(answer[3], aad=f"idem:{client_id}".encode())
            return IdempotencyClaim(state, answer[1], int(answer[2]), response)
        return IdempotencyClaim(state, answer[1])

    async def release_idempotency(self, client_id: str, key: str) -> None:
        await self._hot(self._idem_release, [self.keys.idempotency(client_id, key)], [])

    # -- messages -------------------------------------------------------------
    async def commit_acceptance(
        self, message: Message, idempotency: IdempotencyRecord | None, due_at: datetime | None
    ) -> None:
        m = message
        fields = message_fields(m, self.cipher, self.index)
        status = str(m.status)
        due = "" if due_at is None else ts(due_at)
        if due and m.status in (Status.QUEUED, Status.SCHEDULED):  # waits in the queue
            fields.update(due=due, lease="0", owner="", qs=status)
        tag = self.keys.message_tag(m.id)
        keys = [*self.keys.moving(m.id), f"{tag}:b:{fields['borrower_hash']}"]
        idem_ttl: int | str = ""
        row: list[str] = []
        if idempotency is not None:
            record = self.keys.idempotency(m.client_id, idempotency.key)
            sealed = self.cipher.seal_json(idempotency.response, aad=f"idem:{m.client_id}".encode())
            row = [
                "rh", idempotency.request_hash, "sc", str(idempotency.status_code),
                "resp", sealed, "exp", ts(idempotency.expires_at),
            ]  # fmt: skip
            span = idempotency.expires_at.timestamp() - m.created_at.timestamp()
            ttl = max(int(span * 1000), 0) + _KEEP_MS
            fields["idem"] = record
            if record.startswith(tag):  # ids from new_message_id: one script, one slot
                idem_ttl = ttl
                keys.append(record)
            else:
                # another shard (an id not made from the key): the record first,
                # so that a crash in between can never give a second message
                await self._hot(self._idem_put, [record], [ttl, *row])
                row = []
        events = [event_line(ts(e.at), e.status, e.detail) for e in m.events]
        flat = [x for kv in fields.items() for x in kv]
        args = [
            tag, m.id, status, due, ts(m.updated_at), fields["created_at"],
            fields["borrower_hash"], idem_ttl,
            len(flat), *flat, len(events), *events, len(row), *row,
        ]  # fmt: skip
        answer = await self._hot(self._commit, keys, args)
        if answer == "exists":  # SQLite: a primary-key violation
            raise StoreUnavailable("redis: the message id exists")

    def _moved(self, message_id: str, answer: list[Any]) -> Message:
        code = str(answer[0])
        if code == "nokey":
            raise KeyError(message_id)
        if code.startswith("expect:"):
            raise TransitionError(f"{message_id}: status is {code[7:]}, not one expected")
        if code.startswith("deny:"):
            raise TransitionError(f"{message_id}: {code[5:]} -> this status is not allowed")
        return message_from(message_id, pairs(answer[1]), answer[2], self.cipher)

    async def transition(
        self,
        message_id: str,
        new: Status,
        now: datetime,
        *,
        detail: str | None = None,
        expect: frozenset[Status] | None = None,
        due_at: datetime | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
    ) -> Message:
        extra: list[str] = []
        if provider is not None:
            extra += ["provider", provider]
        if provider_message_id is not None:
            extra += ["provider_message_id", provider_message_id]
        if new == Status.SCHEDULED and due_at is not None:
            extra += ["scheduled_at", ts(due_at)]
        args = [
            self.keys.message_tag(message_id),
            message_id,
            str(new),
            ts(now),
            "" if detail is None else f"={detail}",
            "" if expect is None else ",".join(sorted(str(s) for s in expect)) or ",",
            "" if due_at is None else ts(due_at),
            *extra,
        ]
        answer = await self._hot(self._transition, self.keys.moving(message_id), args)
        return self._moved(message_id, answer)

    async def begin_attempt(
        self, message_id: str, provider: str, now: datetime, owner: str, lease_until: datetime
    ) -> Message:
        args = [
            self.keys.message_tag(message_id), message_id, provider, ts(now), owner,
            ts(lease_until),
        ]  # fmt: skip
        answer = await self._hot(self._begin, self.keys.moving(message_id), args)
        return self._moved(message_id, answer)
