"""The invalidation channel of the lookup caches (gateway/store/lookup_cache.py)
on Redis.

The scripts that revoke a key or change a client ``PUBLISH`` the change
(``k:<key id>``, ``c:<client id>``) on ``{<prefix>:meta}:inval`` in the same
atomic step as the write, whichever process runs them. Every gateway process
listens on its own connection and drops the entry at once, so ``keys revoke``
takes effect on every replica within the publish latency.

Pub/sub delivers at most once, so the caches are used only while this process
is subscribed: before the subscription is confirmed and from the moment the
connection fails until it is back, every lookup goes to Redis. A connection
that dies without an error (a silent network partition) is not noticed until
the next health check; the entries' TTL bounds that case, so the worst-case
delay of a revocation is ``store.lookup_cache_seconds``. On a Redis Cluster
the channel works the same (a PUBLISH reaches the subscribers of every node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("lendsms.store.redis")

_POLL = 1.0  # seconds one read waits for a message
_HEALTH = 5  # seconds between the connection's health-check pings
_MAX_DELAY = 5.0  # seconds between reconnection attempts, at most


class InvalidationListener:
    def __init__(
        self,
        url: str,
        channel: str,
        *,
        timeout: float,
        on_message: Callable[[str], None],
        on_up: Callable[[], None],
        on_down: Callable[[], None],
    ) -> None:
        self.channel = channel
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            decode_responses=True,
            health_check_interval=_HEALTH,
        )
        self._on_message = on_message
        self._on_up = on_up
        self._on_down = on_down
        self._task: asyncio.Task[None] | None = None
        self._was_up = False
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        # the flag as well as the cancel: a read's own timeout can swallow a
        # cancellation that arrives at the same moment (redis-py, async_timeout)
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                log.warning("lookup-cache invalidation channel down (%s)", type(exc).__name__)
            if self._was_up:
                self._was_up, delay = False, 0.1
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)

    async def _listen(self) -> None:
        async with self._redis.pubsub() as pubsub:
            try:
                await pubsub.subscribe(self.channel)
                while not self._stopping:
                    message = await pubsub.get_message(timeout=_POLL)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._was_up = True
                        self._on_up()
                    elif message["type"] == "message":
                        self._on_message(str(message["data"]))
            finally:
                self._on_down()
