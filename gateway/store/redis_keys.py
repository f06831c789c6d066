"""Key names of the Redis store.

Every key starts with a hash tag, so the keys one script touches share one
Redis Cluster slot:

* ``{<prefix>:s<k>}`` — shard ``k`` of ``shards``: a message's hash, events and
  attempts, its queue entry, the idempotency record it was accepted under, and
  the per-shard indexes (borrower, provider message id, review, receipts);
* ``{<prefix>:meta}`` — clients, API keys, reviewers and the audit registry;
* ``{<prefix>:wh}`` — the queue of client status webhooks (see
  gateway/store/redis_delivery.py): one slot, so a claim is one script.

A message's shard comes from the last two hex digits of its id, which
:func:`gateway.accept.new_message_id` derives from ``crc32(client\\0key)`` when
the request carried an Idempotency-Key: the record of that key lives in the
same shard, so an acceptance is one script on one slot.
"""

from __future__ import annotations

import hashlib
import zlib


def seed_byte(seed: str) -> int:
    return zlib.crc32(seed.encode("utf-8")) & 0xFF


def id_byte(message_id: str) -> int:
    """The byte an id's shard is taken from: its last two hex digits (ids from
    new_message_id), else a checksum of the whole id."""
    tail = message_id[-2:]
    if len(tail) == 2 and all(c in "0123456789abcdef" for c in tail):
        return int(tail, 16)
    return seed_byte(message_id)


class RedisKeys:
    __slots__ = ("meta_tag", "prefix", "shards")

    def __init__(self, prefix: str, shards: int) -> None:
        if not 1 <= shards <= 256:
            raise ValueError("shards must be between 1 and 256")
        self.prefix = prefix
        self.shards = shards
        self.meta_tag = f"{{{prefix}:meta}}"

    def tag(self, shard: int) -> str:
        return f"{{{self.prefix}:s{shard}}}"

    def tags(self) -> list[str]:
        return [self.tag(k) for k in range(self.shards)]

    def message_tag(self, message_id: str) -> str:
        return self.tag(id_byte(message_id) % self.shards)

    def message(self, message_id: str) -> str:
        return f"{self.message_tag(message_id)}:m:{message_id}"

    def moving(self, message_id: str) -> list[str]:
        """Every key a script that changes the message's status may touch (its
        hash first), declared as the script's KEYS so that Redis Cluster
        routes it and checks that they share one slot."""
        tag = self.message_tag(message_id)
        return [
            f"{tag}:m:{message_id}", f"{tag}:ev:{message_id}", f"{tag}:at:{message_id}",
            f"{tag}:q", f"{tag}:z", f"{tag}:pl", f"{tag}:dq", f"{tag}:qn", f"{tag}:pm",
            f"{tag}:rva", f"{tag}:rv:held", f"{tag}:rv:blocked",
        ]  # fmt: skip

    def idempotency(self, client_id: str, key: str) -> str:
        seed = f"{client_id}\x00{key}"
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
        return f"{self.tag(seed_byte(seed) % self.shards)}:i:{digest}"

    def receipt_tag(self, provider: str, key: str) -> str:
        return self.tag(seed_byte(f"{provider}\x00{key}") % self.shards)

    def meta(self, name: str) -> str:
        return f"{self.meta_tag}:{name}"

    def webhooks(self) -> list[str]:
        """The webhook queue's keys, all under one tag: jobs, attempts and due
        times, lease owners, and the sorted set of when each job is claimable."""
        tag = f"{{{self.prefix}:wh}}"
        return [f"{tag}:j", f"{tag}:a", f"{tag}:o", f"{tag}:z"]
