"""Wiring the audit log from the settings: one place that builds a writer (with
its registry entry and checkpoints) for the service and for the CLI."""

from __future__ import annotations

import asyncio

from config.settings import Settings, key_bytes
from gateway.audit import AuditWriter
from gateway.audit_proof import LogReport, verify_log
from gateway.audit_recover import recover_orphans
from gateway.audit_tracker import ChainTracker
from gateway.clock import Clock, SystemClock
from gateway.crypto import BlindIndex
from gateway.keyring import AuditSecrets, KeyRing
from gateway.store.base import AuditStore


def audit_secrets(settings: Settings) -> AuditSecrets:
    return AuditSecrets.from_master(key_bytes(settings.keys.audit))


def open_keyring(settings: Settings, store: AuditStore) -> KeyRing:
    return KeyRing(store, audit_secrets(settings))


async def verify_audit_log(settings: Settings, store: AuditStore) -> LogReport:
    """``audit verify``: the store's registry and checkpoints first, then the files."""
    secrets = audit_secrets(settings)
    chains = await store.list_audit_chains()
    stored = await store.list_audit_checkpoints()
    return await asyncio.to_thread(
        verify_log, settings.audit.dir, secrets.chain_key, secrets.signer.public, chains, stored
    )


def open_audit_writer(
    settings: Settings,
    store: AuditStore,
    instance_id: str,
    *,
    kind: str = "gateway",
    clock: Clock | None = None,
) -> AuditWriter:
    """A writer for chain ``instance_id``; call ``start()`` (which registers it)."""
    clock = clock or SystemClock()
    secrets = audit_secrets(settings)
    conf = settings.audit
    tracker = ChainTracker(
        store,
        conf.dir,
        instance_id,
        secrets.signer,
        clock,
        kind=kind,
        every_records=conf.checkpoint_records,
        every_seconds=conf.checkpoint_seconds,
    )
    return AuditWriter(
        conf.dir,
        instance_id=instance_id,
        chain_key=secrets.chain_key,
        fsync=conf.fsync,
        clock=clock,
        tracker=tracker,
        keys=KeyRing(store, secrets),
        index=BlindIndex(key_bytes(settings.keys.index)),
    )


async def recover_crashed_chains(
    settings: Settings, store: AuditStore, instance_id: str, clock: Clock
) -> list[str]:
    """Close the chains of this host's crashed processes (a gateway's start)."""
    secrets = audit_secrets(settings)
    return await recover_orphans(
        store,
        settings.audit.dir,
        instance_id,
        chain_key=secrets.chain_key,
        signer=secrets.signer,
        clock=clock,
    )
