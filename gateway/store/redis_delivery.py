"""Receipts, attempt counts and webhook secrets in the Redis store (see
:class:`gateway.store.delivery.DeliveryStore`). A receipt holds ids, a state
and a carrier code: nothing personal. Receipts live in the shard of their
(provider, provider message id), in one hash per shard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from gateway.models import Message
from gateway.store.redis_codec import RedisMessageReader, ts


class RedisDelivery(RedisMessageReader):
    async def find_message_by_provider_id(
        self, provider: str, provider_message_id: str
    ) -> Message | None:
        field = f"{provider}\x00{provider_message_id}"
        pipe = self.redis.pipeline(transaction=False)
        for tag in self.keys.tags():
            pipe.hget(f"{tag}:pm", field)
        ids = [mid for mid in await self._call(pipe.execute()) if mid is not None]
        found = [
            m
            for m in await self._load_many(ids)
            if m is not None
            and m.provider == provider
            and m.provider_message_id == provider_message_id
        ]
        return max(found, key=lambda m: m.created_at, default=None)

    async def record_receipt(
        self,
        provider: str,
        provider_message_id: str | None,
        message_id: str | None,
        state: str,
        code: str | None,
        at: datetime,
    ) -> bool:
        key = provider_message_id or f"id:{message_id}"
        tag = self.keys.receipt_tag(provider, key)
        field = "\x00".join((provider, key, state, code or ""))
        row = json.dumps([message_id, ts(at)])
        return bool(await self._call(self.redis.hsetnx(f"{tag}:rc", field, row)))

    async def attempts_by_provider(self, message_id: str) -> Mapping[str, int]:
        tag = self.keys.message_tag(message_id)
        lines = await self._call(self.redis.lrange(f"{tag}:at:{message_id}", 0, -1))
        out: dict[str, int] = {}
        for line in lines:
            name = str(line).split("|", 2)[1]
            out[name] = out.get(name, 0) + 1
        return out

    async def get_webhook_secret(self, client_id: str) -> str | None:
        sealed = await self._call(self.redis.hget(self.keys.meta("cw"), client_id))
        return None if sealed is None else self.cipher.open(str(sealed), aad=b"wh")
