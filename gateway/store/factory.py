"""The one place that turns settings into a store backend (the gateway and
every CLI command that opens the store come through here)."""

from __future__ import annotations

from config.settings import StoreSettings
from gateway.crypto import BlindIndex, FieldCipher
from gateway.store.base import Store


def make_store(settings: StoreSettings, cipher: FieldCipher, index: BlindIndex) -> Store:
    """The backend ``settings.backend`` names; no I/O until ``open()``."""
    if settings.backend == "redis":
        from gateway.store.redis_store import RedisStore

        return RedisStore(
            settings.redis_url.get(),
            cipher,
            index,
            prefix=settings.redis_prefix,
            shards=settings.redis_shards,
            require_durable=settings.require_durable,
            cluster=settings.redis_cluster,
            lookup_cache_seconds=settings.lookup_cache_seconds,
        )
    from gateway.store.sqlite import SqliteStore

    return SqliteStore(settings.path, cipher, index)
