"""The connection of the Redis store: one pool, errors mapped to
:class:`~gateway.errors.StoreUnavailable`, and the durability check at start.

Redis acknowledges a write once it is in memory. Whether an acknowledged
acceptance (a 202) survives a crash depends on the server's persistence: only
``appendonly yes`` with ``appendfsync always`` writes it to disk before the
answer. :meth:`RedisConnection.check_durability` reads those settings at
start and warns otherwise; ``store.require_durable`` makes it a refusal.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from gateway.crypto import BlindIndex, FieldCipher
from gateway.errors import StoreUnavailable
from gateway.store.redis_keys import RedisKeys
from gateway.store.redis_mux import RedisMux, multiplexable
from gateway.store.redis_packing import connection_options

T = TypeVar("T")
ScriptCall = tuple[AsyncScript, Sequence[str], Sequence[Any]]  # script, keys, args

log = logging.getLogger("lendsms.store.redis")


class RedisConnection:
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
    ) -> None:
        self.cipher = cipher
        self.index = index
        self.keys = RedisKeys(prefix, shards)
        self.require_durable = require_durable
        self.redis: Redis
        if cluster:  # follows MOVED/ASK; same commands, routed by each call's first key
            self.redis = cast(
                Redis,
                RedisCluster.from_url(
                    url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    decode_responses=True,
                ),
            )
        else:
            self.redis = Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
                health_check_interval=30,
                **connection_options(url),
            )
        self.cluster = cluster
        # the acceptance path's scripts share one pipelined connection (redis_mux.py)
        self._mux = None if cluster or not multiplexable(url) else RedisMux(url, timeout=timeout)
        self._scripts: list[AsyncScript] = []
        self._closed = False

    def _script(self, source: str) -> AsyncScript:
        script = self.redis.register_script(source)
        self._scripts.append(script)
        return script

    async def _call(self, awaitable: Awaitable[T]) -> T:
        if self._closed:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited: say so to nobody
            raise StoreUnavailable("store is closed")
        try:
            return await awaitable
        except (RedisError, OSError) as exc:  # connection, timeout, script, OOM, readonly
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}") from exc

    async def _hot(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """A script on the acceptance path: over the multiplexed connection
        when there is one, else through redis-py."""
        if self._mux is None:
            return await self._call(script(keys=keys, args=args))
        return await self._call(self._mux.evalsha(script, keys, args))

    async def open(self) -> None:
        await self.ping()
        await self.check_durability()
        # loaded up front (on every primary of a Cluster): a script queued in a
        # pipeline cannot load itself when the server does not know it
        await self._load_scripts()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._mux is not None:
            await self._mux.close()
        await self.redis.aclose()

    async def ping(self) -> None:
        await self._call(self.redis.ping())

    async def _config(self, name: str) -> str | None:
        try:
            answer: dict[Any, Any] = await self.redis.config_get(name)
        except ResponseError:  # CONFIG renamed or disabled (managed Redis)
            return None
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}") from exc
        return answer.get(name)

    async def check_durability(self) -> bool:
        """True when an acknowledged write is on disk; logs a warning (no URL,
        no secret) when it is not or cannot be told, and raises
        StoreUnavailable then if ``require_durable``."""
        appendonly = await self._config("appendonly")
        fsync = await self._config("appendfsync")
        if appendonly is None or fsync is None:
            problem = "could not read the Redis persistence settings (CONFIG GET refused)"
        elif appendonly != "yes":
            problem = "Redis runs with appendonly no: an accepted message can be lost in a crash"
        elif fsync != "always":
            problem = (
                f"Redis runs with appendfsync {fsync}: the last writes before a crash "
                "(accepted messages) can be lost"
            )
        else:
            return True
        if self.require_durable:
            raise StoreUnavailable(f"store.require_durable: {problem}")
        log.warning("store durability: %s", problem)
        return False

    async def rewrite_aof(self) -> bool:
        """Start an AOF rewrite when the AOF is on, so overwritten values (old
        ciphertext) leave the file; True when one was started."""
        if await self._config("appendonly") != "yes":
            return False
        try:
            await self.redis.bgrewriteaof()
        except ResponseError:  # one is already running: it picks up the new state
            return False
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}") from exc
        return True

    async def _run_scripts(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Several scripts in one round trip (a pipeline); on a Cluster, where
        redis-py refuses scripts in pipelines, side by side."""
        if not calls:
            return []
        if self._closed:
            raise StoreUnavailable("store is closed")
        if self.cluster:
            runs = [script(keys=keys, args=args) for script, keys, args in calls]
            return list(await self._call(asyncio.gather(*runs)))
        answers = await self._evalsha(calls)
        if any(isinstance(a, NoScriptError) for a in answers):
            if not all(isinstance(a, NoScriptError) for a in answers):
                raise StoreUnavailable("redis: NoScriptError")  # some ran: no blind retry
            await self._load_scripts()  # the server lost its script cache (restart)
            answers = await self._evalsha(calls)
        for answer in answers:
            if isinstance(answer, Exception):
                raise StoreUnavailable(f"redis: {answer.__class__.__name__}") from answer
        return answers

    async def _evalsha(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """EVALSHA of the scripts loaded at open, in one pipeline (redis-py's
        own script support in pipelines costs a SCRIPT EXISTS round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return list(await self._call(pipe.execute(raise_on_error=False)))

    async def _load_scripts(self) -> None:
        for script in self._scripts:
            await self._call(self.redis.script_load(script.script))

    async def _pipeline(self, *calls: tuple[str, tuple[Any, ...]]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for name, args in calls:
            getattr(pipe, name)(*args)
        return await self._call(pipe.execute())
