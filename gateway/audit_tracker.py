"""The live side of a chain's proofs: :class:`ChainTracker` registers a chain in
the store when its writer starts, signs a checkpoint of the durable head every
``every_records`` records or ``every_seconds`` seconds and when the writer
closes, writes each to the file beside the segments and copies it to the store.

A checkpoint that cannot be written is logged (file name and errno only) and
the appends go on: the log stays verifiable, only less tightly pinned. A
checkpoint the store could not take is copied again with the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from pathlib import Path

from gateway.audit import AuditUnavailable
from gateway.audit_checkpoint import Checkpoint, append_checkpoint, checkpoint_path, sign_checkpoint
from gateway.audit_format import GENESIS
from gateway.clock import Clock, rfc3339
from gateway.crypto import SigningKey
from gateway.errors import StoreUnavailable
from gateway.store.base import AuditChain, AuditStore

log = logging.getLogger("gateway.audit")


class ChainTracker:
    """Registry entry and checkpoints for one chain; plugged into an
    :class:`~gateway.audit.AuditWriter` as its ``tracker``."""

    def __init__(
        self,
        store: AuditStore,
        directory: Path,
        instance: str,
        signer: SigningKey,
        clock: Clock,
        *,
        kind: str = "gateway",
        every_records: int = 1000,
        every_seconds: float = 60.0,
    ) -> None:
        if every_records < 1 or every_seconds <= 0:
            raise ValueError("checkpoint intervals must be positive")
        self.store, self.instance, self.kind = store, instance, kind
        self.path = checkpoint_path(directory, instance)
        self._signer, self._clock = signer, clock
        self._every_records, self._every_seconds = every_records, every_seconds
        self._head: tuple[int, str] = (0, GENESIS)
        self._last_seq = -1  # seq of the last checkpoint; -1 before the first
        self._due = asyncio.Event()
        self._lock = asyncio.Lock()
        self._uncopied: list[Checkpoint] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0  # checkpoints taken (for tests and the bench)

    # -- life cycle (called by the writer) ---------------------------------------

    async def register(self) -> None:
        chain = AuditChain(
            self.instance, self.kind, socket.gethostname(), os.getpid(), self._clock.now()
        )
        try:
            await self.store.register_audit_chain(chain)
        except StoreUnavailable as exc:
            raise AuditUnavailable("cannot register the audit chain in the store") from exc

    def begin(self, seq: int, mac: str) -> None:
        """The writer's segment is open with durable head (seq, mac)."""
        self._head = (seq, mac)
        if self._last_seq < 0:
            self._last_seq = seq  # a continued chain was checkpointed when it closed
        self._stopping = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def advanced(self, seq: int, mac: str) -> None:
        """Records up to ``seq`` are durable."""
        self._head = (seq, mac)
        if seq - self._last_seq >= self._every_records:
            self._due.set()

    async def finish(self) -> None:
        """Stop the timer, sign the closing checkpoint, mark the chain closed."""
        self._stopping = True
        self._due.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        await self.checkpoint("close")
        with contextlib.suppress(StoreUnavailable):
            await self.store.close_audit_chain(self.instance, self._clock.now())

    # -- checkpoints -----------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._due.wait(), self._every_seconds)
                by_count = True
            except TimeoutError:
                by_count = False
            self._due.clear()
            if self._stopping:
                return
            behind = self._head[0] - self._last_seq
            if by_count and behind >= self._every_records:
                await self.checkpoint("count")
            elif not by_count and behind > 0:
                await self.checkpoint("time")

    async def checkpoint(self, reason: str) -> Checkpoint:
        """Sign the current durable head now; write it beside the segments and
        copy it to the store (failures are logged, never raised)."""
        async with self._lock:
            seq, mac = self._head
            self._last_seq = max(self._last_seq, seq)
            cp = sign_checkpoint(
                self._signer, self.instance, seq, mac, rfc3339(self._clock.now()), reason
            )
            try:
                await asyncio.to_thread(append_checkpoint, self.path, cp)
            except OSError as exc:
                why = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
                log.error("audit: cannot write a checkpoint to %s (%s)", self.path.name, why)
            self._uncopied.append(cp)
            await self._copy()
            self.written += 1
            return cp

    async def _copy(self) -> None:
        while self._uncopied:
            cp = self._uncopied[0]
            try:
                await self.store.add_audit_checkpoint(cp.instance, cp.seq, cp.line())
            except StoreUnavailable:
                log.warning(
                    "audit: %d checkpoints not yet copied to the store", len(self._uncopied)
                )
                return
            self._uncopied.pop(0)
