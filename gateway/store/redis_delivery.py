"""Receipts, attempt counts, webhook secrets and the webhook queue in the Redis
store (see :class:`gateway.store.delivery.DeliveryStore`). A receipt holds ids, a
state and a carrier code: nothing personal. Receipts live in the shard of their
(provider, provider message id), in one hash per shard.

The webhook queue lives under its own hash tag (``RedisKeys.webhooks``), so every
script below touches one Cluster slot:

* ``:j`` — job id → JSON ``[message id, client id, sealed URL and body]`` (sealed
  as in SQLite, :func:`gateway.store.sqlite_delivery.seal_webhook`);
* ``:a`` — job id → ``<attempts>|<due>|<message id>``;
* ``:o`` — job id → the owner holding its lease (absent when not leased);
* ``:z`` — job id scored by when it can be claimed: its due time, or while it is
  leased, the end of the lease. A claim takes what scores at most ``now`` and
  scores it ``lease_until`` in the same script, so two owners never hold one job
  and a dead owner's job comes back once its lease has passed;
* ``:mj:<message id>`` — the ids of the message's jobs, so that erasure finds
  them (:meth:`RedisDelivery.erase_webhooks`). Kept by the scripts that add and
  remove jobs (finish, and the claim's cleanup of a half-written job, which
  reads the message id from ``:j`` or from the third part of ``:a``); a set
  whose last id is removed is gone.

Due times and leases are the caller's clock, as in SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from redis.commands.core import AsyncScript

from gateway.models import Message
from gateway.store.delivery import WebhookBacklog, WebhookJob
from gateway.store.redis_codec import RedisMessageReader, ts
from gateway.store.sqlite_delivery import opened_webhooks, seal_webhook

# The Lua below shares: the prefix of the per-message index sets (``KEYS[1]`` is
# ``<tag>:j``, so the sets sit under the same tag) and the message id of a job,
# read from whichever half of it is there.
_WEBHOOK_LUA = r"""
local mj = string.sub(KEYS[1], 1, -2) .. 'mj:'
local function message_of(id)
  local job = redis.call('HGET', KEYS[1], id)
  if job then return cjson.decode(job)[1] end
  local ad = redis.call('HGET', KEYS[2], id)
  if ad then return string.match(ad, '^[^|]*|[^|]*|(.+)$') end
  return nil
end
local function forget(id)
  local mid = message_of(id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  if mid then redis.call('SREM', mj .. mid, id) end
end
"""

# KEYS j a o z; ARGV id job attempts|due|message due message
WEBHOOK_ENQUEUE = (
    _WEBHOOK_LUA
    + r"""
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('SADD', mj .. ARGV[5], ARGV[1])
return 1
"""
)

# ARGV now limit owner lease_until -> flat [id, job, attempts|due|message, ...]
WEBHOOK_CLAIM = (
    _WEBHOOK_LUA
    + r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local job = redis.call('HGET', KEYS[1], id)
  local ad = redis.call('HGET', KEYS[2], id)
  if job and ad then
    redis.call('ZADD', KEYS[4], ARGV[4], id)
    redis.call('HSET', KEYS[3], id, ARGV[3])
    out[#out + 1] = id
    out[#out + 1] = job
    out[#out + 1] = ad
  else  -- a half-written job: nothing to send
    forget(id)
  end
end
return out
"""
)

# ARGV id owner attempts|due due -> 1, or 0 when owner does not hold the job
WEBHOOK_RETRY = (
    _WEBHOOK_LUA
    + r"""
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. '|' .. message_of(ARGV[1]))
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 1
"""
)

# ARGV id
WEBHOOK_FINISH = (
    _WEBHOOK_LUA
    + r"""
forget(ARGV[1])
return 1
"""
)

# ARGV message ids -> how many jobs were deleted
WEBHOOK_ERASE = (
    _WEBHOOK_LUA
    + r"""
local n = 0
for _, mid in ipairs(ARGV) do
  for _, id in ipairs(redis.call('SMEMBERS', mj .. mid)) do
    if redis.call('HDEL', KEYS[1], id) + redis.call('HDEL', KEYS[2], id) > 0 then n = n + 1 end
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
  end
  redis.call('DEL', mj .. mid)
end
return n
"""
)


class RedisDelivery(RedisMessageReader):
    _wh_enqueue: AsyncScript
    _wh_claim: AsyncScript
    _wh_retry: AsyncScript
    _wh_finish: AsyncScript
    _wh_erase: AsyncScript

    def _register_webhook_scripts(self) -> None:
        self._wh_enqueue = self._script(WEBHOOK_ENQUEUE)
        self._wh_claim = self._script(WEBHOOK_CLAIM)
        self._wh_retry = self._script(WEBHOOK_RETRY)
        self._wh_finish = self._script(WEBHOOK_FINISH)
        self._wh_erase = self._script(WEBHOOK_ERASE)

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

    # -- client status webhooks -----------------------------------------------
    async def enqueue_webhook(self, job: WebhookJob) -> None:
        row = json.dumps([job.message_id, job.client_id, seal_webhook(self.cipher, job)])
        due = ts(job.due)
        args = [job.id, row, f"{job.attempts}|{due}|{job.message_id}", due, job.message_id]
        await self._call(self._wh_enqueue(keys=self.keys.webhooks(), args=args))

    async def claim_webhooks(
        self, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> Sequence[WebhookJob]:
        if limit <= 0:
            return []
        args: list[str | int] = [ts(now), limit, owner, ts(lease_until)]
        flat = await self._call(self._wh_claim(keys=self.keys.webhooks(), args=args))
        rows = []
        for i in range(0, len(flat), 3):
            job_id, row, ad = str(flat[i]), json.loads(flat[i + 1]), str(flat[i + 2])
            attempts, due = ad.split("|")[:2]
            rows.append((job_id, row[0], row[1], row[2], int(attempts), float(due)))
        return sorted(opened_webhooks(self.cipher, rows), key=lambda j: j.due)

    async def finish_webhook(self, job_id: str) -> None:
        await self._call(self._wh_finish(keys=self.keys.webhooks(), args=[job_id]))

    async def retry_webhook(self, job_id: str, owner: str, due: datetime, attempts: int) -> bool:
        at = ts(due)
        args = [job_id, owner, f"{attempts}|{at}", at]
        return bool(await self._call(self._wh_retry(keys=self.keys.webhooks(), args=args)))

    async def erase_webhooks(self, message_ids: Sequence[str]) -> int:
        """Delete every job queued for these messages (erasure); how many there were."""
        if not message_ids:
            return 0
        keys = self.keys.webhooks()
        return int(await self._call(self._wh_erase(keys=keys, args=list(message_ids))))

    async def webhook_backlog(self, now: datetime) -> WebhookBacklog:
        z = self.keys.webhooks()[3]
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(z)
        pipe.zcount(z, "-inf", ts(now))
        pipe.zrangebyscore(z, "-inf", ts(now), start=0, num=1, withscores=True)
        pending, due, first = await self._call(pipe.execute())
        oldest = datetime.fromtimestamp(float(first[0][1]), UTC) if first else None
        return WebhookBacklog(pending=int(pending), due=int(due), oldest_due=oldest)
