"""Audit key and retention management: ``lendsms keys rotate-audit``,
``lendsms audit prune`` and ``lendsms audit erase``. Each leaves its own
audit record."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from config.settings import key_bytes, load_settings
from gateway.audit import AuditWriter
from gateway.audit_prune import prune
from gateway.audit_setup import audit_secrets, open_keyring, verify_audit_log
from gateway.cli import CliError
from gateway.cli_audit import WithConfig, actor, run_audited
from gateway.clock import rfc3339
from gateway.crypto import BlindIndex
from gateway.errors import StoreUnavailable
from gateway.policy.service import open_backend
from gateway.store.base import BorrowerErasure
from gateway.store.sqlite_erase import ERASED_DETAIL

# --------------------------------------------------------------- rotate-audit


def cmd_rotate_audit(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)

    async def run(store: Any, audit: AuditWriter) -> int:
        key_id = await open_keyring(settings, store).rotate()
        await audit.append(
            "audit_key_rotated", message_id=None, clear={"key_id": key_id, "actor": actor()}
        )
        print(f"audit key {key_id} is now current; running gateways use it from their next start")
        return 0

    return run_audited(settings, run)


# ---------------------------------------------------------------------- prune


def cmd_prune(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    minimum = settings.audit.min_retention_days
    if args.older_than < minimum:
        raise CliError(
            f"--older-than {args.older_than} is below audit.min_retention_days ({minimum}); "
            "nothing pruned"
        )
    signer = audit_secrets(settings).signer
    folder = settings.audit.dir

    async def run(store: Any, audit: AuditWriter) -> int:
        report = await verify_audit_log(settings, store)
        if not report.ok:
            raise CliError(f"the audit log does not verify ({report.flaws[0]}); nothing pruned")
        now = datetime.now(UTC)
        cutoff = now - timedelta(days=args.older_than)
        cuts = await prune(
            folder, report, cutoff, audit=audit, store=store, signer=signer, now=now, actor=actor()
        )
        for cut in cuts:
            print(f"pruned {cut.instance}: records {cut.first_seq}-{cut.last_seq} "
                  f"({len(cut.segments)} segments, newest {rfc3339(cut.newest)})")  # fmt: skip
        total = sum(c.records for c in cuts)
        print(f"pruned {total} records from {len(cuts)} chains, all older than "
              f"{args.older_than} days")  # fmt: skip
        return 0

    return run_audited(settings, run)


# ---------------------------------------------------------------------- erase


def cmd_erase(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    owner = BlindIndex(key_bytes(settings.keys.index)).borrower(args.client, args.borrower)

    async def run(store: Any, audit: AuditWriter) -> int:
        destroyed = await open_keyring(settings, store).erase(owner)
        done: BorrowerErasure = await store.erase_borrower(args.client, owner, datetime.now(UTC))
        who = actor()
        for message_id in done.cancelled:  # moved by the store, recorded like any cancel
            await audit.append(
                "cancelled", message_id=message_id,
                clear={"client": args.client, "actor": who, "detail": ERASED_DETAIL},
            )  # fmt: skip
        await audit.append(
            "audit_erased",
            message_id=None,
            clear={"actor": who, "client": args.client, "borrower_hash": owner,
                   "keys": ",".join(sorted(destroyed)) or None,
                   "messages": len(done.messages), "cancelled": len(done.cancelled),
                   "answers": done.answers},
        )  # fmt: skip
        released = await _release_caps(settings, args.client, done.cancelled)
        print(f"erased {len(destroyed)} audit keys of a borrower of client {args.client}; "
              "their sealed fields now read as erased")  # fmt: skip
        print(f"erased {len(done.messages)} stored messages ({len(done.cancelled)} not yet sent "
              f"now cancelled) and {done.answers} stored idempotency answers")  # fmt: skip
        if done.cancelled and not released:
            print("note: the contact-policy store did not answer; the cancelled messages' "
                  "cap reservations lapse with their windows", file=sys.stderr)  # fmt: skip
        if not done.flushed:
            print("note: a running gateway holds the store's write-ahead log; the old pages "
                  "are overwritten at its next checkpoint", file=sys.stderr)  # fmt: skip
        return 0

    return run_audited(settings, run)


async def _release_caps(settings: Any, client: str, message_ids: Sequence[str]) -> bool:
    """Give the cap reservations of messages that will never be sent back (as a
    client's cancel does). False when the contact-policy store did not answer."""
    if not message_ids:
        return True
    backend = open_backend(settings.policy)
    try:
        await backend.open()
        for message_id in message_ids:
            await backend.release(client, message_id)
    except StoreUnavailable:  # PolicyUnavailable: over-counting until the window passes
        return False
    finally:
        with contextlib.suppress(StoreUnavailable):
            await backend.close()
    return True


# --------------------------------------------------------------------- parser


def add_rotate(ksub: Any, with_config: WithConfig) -> None:
    sp = with_config(
        ksub.add_parser(
            "rotate-audit",
            help="start a new audit data key generation",
            description="New audit records are sealed under a new key id from each writer's "
            "next start; records under older keys stay readable while those keys are kept.",
        )
    )
    sp.set_defaults(func=cmd_rotate_audit)


def add_prune(asub: Any, with_config: WithConfig) -> None:
    sp = with_config(
        asub.add_parser(
            "prune",
            help="remove whole segments older than DAYS (signed record of what went)",
            description="Refuses DAYS below audit.min_retention_days (default 1825) and a log "
            "that does not verify. Only closed segments at the start of a chain go.",
        )
    )
    sp.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    sp.set_defaults(func=cmd_prune)


def add_erase(asub: Any, with_config: WithConfig) -> None:
    sp = with_config(
        asub.add_parser(
            "erase",
            help="erase one borrower: audit keys (crypto-shredding) and stored messages",
            description="For a deletion request (PIPL, GDPR): the borrower's sealed audit "
            "fields become unreadable for good (the chain and verify are unaffected); their "
            "stored messages and idempotency answers read [erased], and those not yet sent "
            "are cancelled.",
        )
    )
    sp.add_argument("--client", required=True, help="the client (lender)")
    sp.add_argument("--borrower", required=True, metavar="ID", help="the client's borrower id")
    sp.set_defaults(func=cmd_erase)
