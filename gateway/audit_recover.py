"""Closing the chains of processes that crashed.

Every process writes its own chain, so a crashed gateway's chain is never
continued, and the torn line a crash mid-write may have left at its end would
stay there. When a gateway starts, it looks in the registry for chains of
this host that were never closed and whose process is gone: the process id
is not running and no one holds the lock a live writer keeps on its segment.
For each, it cuts a torn last line (with a warning, as a restart of the same
chain would), signs a ``recovered`` checkpoint of the last whole record, and
marks the chain closed. From then on a cut tail of that chain is caught like
the tail of a cleanly closed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path

from gateway.audit_checkpoint import append_checkpoint, checkpoint_path, sign_checkpoint
from gateway.audit_format import GENESIS, segment_paths
from gateway.audit_segment import CorruptSegment, repair_tail
from gateway.clock import Clock, rfc3339
from gateway.crypto import SigningKey
from gateway.errors import StoreUnavailable
from gateway.store.base import AuditChain, AuditStore

log = logging.getLogger("gateway.audit")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _close_tail(segments: list[Path], chain_key: bytes) -> tuple[int, str] | None:
    """Blocking: lock the last segment (None if a live writer holds it), cut a
    torn line, and return the chain's last whole record (seq, mac)."""
    fd = os.open(segments[-1], os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        tail = repair_tail(fd, segments[-1].name, chain_key)
    finally:
        os.close(fd)
    for path in reversed(segments[:-1]):  # the last segment may be empty
        if tail is not None:
            break
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        try:
            tail = repair_tail(fd, path.name, chain_key)
        finally:
            os.close(fd)
    return tail or (0, GENESIS)


def orphaned(chains: list[AuditChain], me: str) -> list[AuditChain]:
    host = socket.gethostname()
    return [
        c
        for c in chains
        if c.closed_at is None and c.instance != me and c.host == host and not _running(c.pid)
    ]


async def recover_orphans(
    store: AuditStore,
    directory: Path,
    me: str,
    *,
    chain_key: bytes,
    signer: SigningKey,
    clock: Clock,
) -> list[str]:
    """Close the chains of crashed processes of this host; their instances.
    Never raises for one chain: what cannot be recovered is logged and left
    to ``audit verify``."""
    recovered = []
    try:
        chains = orphaned(list(await store.list_audit_chains()), me)
    except StoreUnavailable:
        log.warning("audit: cannot read the chain registry; no crashed chains recovered")
        return []
    for chain in chains:
        segments = segment_paths(directory, chain.instance)
        if not segments:
            continue  # nothing to close; verify reports a registered chain without segments
        try:
            tail = await asyncio.to_thread(_close_tail, segments, chain_key)
        except (OSError, CorruptSegment) as exc:
            log.error("audit: cannot recover chain %s (%s)", chain.instance, type(exc).__name__)
            continue
        if tail is None:
            continue  # a live writer holds it after all
        seq, mac = tail
        now = clock.now()
        cp = sign_checkpoint(signer, chain.instance, seq, mac, rfc3339(now), "recovered")
        with contextlib.suppress(OSError):
            await asyncio.to_thread(
                append_checkpoint, checkpoint_path(directory, chain.instance), cp
            )
        with contextlib.suppress(StoreUnavailable):
            await store.add_audit_checkpoint(cp.instance, cp.seq, cp.line())
            await store.close_audit_chain(chain.instance, now)
        log.warning("audit: closed chain %s of a crashed process at seq %d", chain.instance, seq)
        recovered.append(chain.instance)
    return recovered
