"""Erasing one borrower's personal data from the Redis store (see
:meth:`gateway.store.base.Store.erase_borrower`; the semantics of
gateway/store/sqlite_erase.py, whose helpers it uses).

Each message of the (client, borrower) is handled by one script on its shard:
its sealed fields are replaced by the erased ones, it moves to ``cancelled``
(detail ``erased``) when no provider had it yet, and the idempotency answer it
was accepted under is replaced by one with ``to_masked`` and ``body`` erased.
A borrower's messages may sit on several shards, so the erasure is atomic per
message rather than as a whole; running it again is harmless. The status
webhooks still queued for those messages are then deleted, in one script on the
webhook tag (gateway/store/redis_delivery.py).

Redis overwrites a value in memory; the old ciphertext stays in the
append-only file until it is rewritten. When the AOF is on, an AOF rewrite is
started (BGREWRITEAOF); ``flushed`` is True only when one was started — it
finishes in the background, and an RDB snapshot taken before still holds the
old values until it is replaced.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime

from redis.commands.core import AsyncScript

from gateway.models import ERASED
from gateway.store.base import BorrowerErasure
from gateway.store.redis_codec import RedisMessageReader, ts
from gateway.store.redis_conn import ScriptCall
from gateway.store.sqlite_erase import _IDEM_FIELDS, erased_fields


class RedisErasure(RedisMessageReader):
    _erase: AsyncScript
    _idem_scrub: AsyncScript

    @abstractmethod
    async def erase_webhooks(self, message_ids: Sequence[str]) -> int:
        """Provided by RedisDelivery: delete the jobs queued for these messages."""

    async def erase_borrower(
        self, client_id: str, borrower_hash: str, now: datetime
    ) -> BorrowerErasure:
        tags = self.keys.tags()
        pipe = self.redis.pipeline(transaction=False)
        for tag in tags:
            pipe.smembers(f"{tag}:b:{borrower_hash}")
        found = sorted({mid for members in await self._call(pipe.execute()) for mid in members})
        pipe = self.redis.pipeline(transaction=False)
        for mid in found:
            pipe.hmget(self.keys.message(mid), "client_id", "sealed", "idem")
        rows = await self._call(pipe.execute()) if found else []
        ids: list[str] = []
        scrubs: list[ScriptCall] = []  # answers on another shard than their message
        erases: list[ScriptCall] = []
        for mid, (owner, sealed, idem) in zip(found, rows, strict=True):
            if owner != client_id or sealed is None:
                continue
            ids.append(mid)
            aad = f"msg:{mid}".encode()
            fields = erased_fields(self.cipher.open_json(sealed, aad=aad))
            answer = await self._erased_answer(client_id, mid, idem)
            tag = self.keys.message_tag(mid)
            keys = self.keys.moving(mid)
            if idem and answer and not idem.startswith(tag):
                scrubs.append((self._idem_scrub, [idem], [answer]))
                answer = ""
            elif idem and answer:
                keys.append(idem)
            args = [tag, mid, self.cipher.seal_json(fields, aad=aad), ts(now), answer]
            erases.append((self._erase, keys, args))
        answers = sum(1 for _, keys, args in erases if args[4]) + len(scrubs)
        await self._run_scripts(scrubs)
        outcomes = await self._run_scripts(erases)
        cancelled = tuple(mid for mid, o in zip(ids, outcomes, strict=True) if o == "cancelled")
        # their queued status webhooks (sealed URL and body: reference, detail),
        # all in one script on the webhook tag, another slot than the messages'.
        # A crash before it leaves those jobs behind, sealed: delivery drops each
        # unsent when it next comes due (its message reads erased), as it did
        # before erasure removed them; erasing again removes them too.
        await self.erase_webhooks(ids)
        flushed = await self.rewrite_aof() if ids else False
        return BorrowerErasure(tuple(ids), cancelled, answers, flushed)

    async def _erased_answer(self, client_id: str, message_id: str, idem: str | None) -> str:
        """The stored idempotency answer of the message, sealed again with its
        personal fields erased ('' when there is none)."""
        if idem is None:
            return ""
        sealed = await self._call(self.redis.hget(idem, "resp"))
        if sealed is None:
            return ""
        aad = f"idem:{client_id}".encode()
        answer = self.cipher.open_json(str(sealed), aad=aad)
        if not isinstance(answer, dict) or answer.get("id") != message_id:
            return ""
        for name in _IDEM_FIELDS:
            if answer.get(name) is not None:
                answer[name] = ERASED
        return self.cipher.seal_json(answer, aad=aad)
