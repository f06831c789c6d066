"""Command packing with hiredis for redis-py's asyncio client.

redis-py's asyncio connections parse answers with hiredis when it is installed
but pack every command in Python (about 8x slower for an acceptance's script
calls with their keys and arguments). :class:`HiredisConnection` packs with
``hiredis.pack_command``: the same bytes (str as UTF-8, int and float as their
repr); anything hiredis refuses (and multi-word command names) goes through
redis-py's own packer, which raises its usual errors.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import Connection
from redis.utils import HIREDIS_AVAILABLE

if HIREDIS_AVAILABLE:
    import hiredis


class HiredisConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0] if args else None
        if isinstance(first, str) and " " not in first:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # bool, None, ...: redis-py's packer says why
                pass
        return super().pack_command(*args)


def connection_options(url: str) -> dict[str, Any]:
    """Extra ``Redis.from_url`` options for ``url``: the hiredis packer for
    plain TCP connections (TLS and Unix sockets keep their own classes)."""
    if HIREDIS_AVAILABLE and url.startswith("redis://"):
        return {"connection_class": HiredisConnection}
    return {}
