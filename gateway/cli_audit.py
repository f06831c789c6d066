"""``lendsms audit …`` and ``lendsms keys rotate-audit``, registered into the
parser by :func:`gateway.cli.build_parser`.

Every command that decrypts (``show``, ``export``) or searches (``find``)
writes its own audit record, durably, before it prints anything (DESIGN.md
invariant 8); when that record cannot be written, nothing is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from config.settings import Settings, key_bytes, load_settings
from gateway.audit import AuditUnavailable, AuditWriter
from gateway.audit_read import Scan, accepted_with, between, for_message, opened, scan
from gateway.audit_setup import open_keyring, verify_audit_log
from gateway.cli import CliError, _run_with_store
from gateway.clock import rfc3339
from gateway.crypto import BlindIndex
from gateway.errors import Invalid, StoreUnavailable
from gateway.keyring import MissingKey
from gateway.schemas import parse_phone

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def run_audited(settings: Settings, body: Callable[[Any, Any], Awaitable[int]]) -> int:
    """Run ``body(store, audit)`` with this process's own audit chain open."""
    try:
        return _run_with_store(settings, body, audited=True)
    except (StoreUnavailable, AuditUnavailable) as exc:
        raise CliError(f"the store or the audit log is unavailable ({exc})") from None


def actor() -> str:
    """Who runs the command, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


async def audited(
    audit: AuditWriter,
    event: str,
    message_id: str | None,
    clear: Mapping[str, str | int | None],
    reason: str | None,
) -> None:
    """Record this access before anything is shown (invariant 8)."""
    try:
        await audit.append(
            event,
            message_id=message_id,
            clear={"actor": actor(), **clear},
            sealed={"reason": reason} if reason else None,
        )
    except AuditUnavailable as exc:
        raise CliError(
            f"cannot record this access in the audit log ({exc}); nothing shown"
        ) from None


async def print_opened(found: Scan, settings: Settings, store: Any) -> None:
    keys = open_keyring(settings, store)
    try:
        out = [await opened(record, keys) for record in found.records]
    except MissingKey as exc:
        raise CliError(
            f"{exc}; restore it, or the records sealed under it stay unreadable"
        ) from None
    for record in out:
        print(json.dumps(record, ensure_ascii=False))
    if found.unreadable:
        print(f"lendsms: {found.unreadable} unreadable lines skipped (run lendsms audit verify)",
              file=sys.stderr)  # fmt: skip


# ------------------------------------------------------------------- verify


def cmd_verify(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)

    async def run(store: Any, _: Any) -> int:
        report = await verify_audit_log(settings, store)
        if not report.ok:
            first, *rest = report.flaws
            print(f"FAILED: first bad record: {first}")
            for flaw in rest:
                print(f"also: {flaw}")
            return 1
        print(f"ok: {report.records} records, {report.checkpoints} checkpoints")
        for note in report.notes:
            print(f"note: {note}")
        return 0

    return _run_with_store(settings, run)


# ------------------------------------------------------------- show and find


def cmd_show(args: argparse.Namespace) -> int:
    if not _ID.fullmatch(args.message_id):
        raise CliError("MESSAGE_ID: 1-64 of A-Z, a-z, 0-9, _ and -")
    settings = load_settings(args.config)

    async def run(store: Any, audit: AuditWriter) -> int:
        found = await asyncio.to_thread(scan, settings.audit.dir, for_message(args.message_id))
        if not found.records:
            raise CliError(f"no audit records for message {args.message_id}")
        clear: dict[str, str | int | None] = {"command": "show", "records": len(found.records)}
        await audited(audit, "audit_revealed", args.message_id, clear, args.reason)
        await print_opened(found, settings, store)
        return 0

    return run_audited(settings, run)


def cmd_find(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    index = BlindIndex(key_bytes(settings.keys.index))
    e164 = None
    if args.to is not None:
        try:
            e164, _ = parse_phone(args.to, args.region)
        except Invalid:
            raise CliError("--to: not a valid mobile number (E.164, or give --region)") from None

    async def run(store: Any, audit: AuditWriter) -> int:
        if e164 is not None:
            field, hashes = "to_hash", {index.phone(e164)}
        else:
            clients = [args.client] if args.client else [c.id for c in await store.list_clients()]
            field, hashes = "borrower_hash", {index.borrower(c, args.borrower) for c in clients}
        found = await asyncio.to_thread(scan, settings.audit.dir, accepted_with(field, hashes))
        clear: dict[str, str | int | None] = {
            "command": "find",
            "by": field,
            "matches": len(found.records),
        }
        await audited(audit, "audit_searched", None, clear, args.reason)
        for r in found.records:
            c = r["clear"]
            print(f"{r['message_id']}\t{r['ts']}\tclient={c.get('client')}\t"
                  f"status={c.get('status')}\tpurpose={c.get('purpose')}")  # fmt: skip
        return 0

    return run_audited(settings, run)


# ------------------------------------------------------------------- export


def parse_when(value: str, flag: str) -> datetime:
    """An RFC 3339 time, or a date (midnight UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{flag}: give a date (2026-11-28) or an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_export(args: argparse.Namespace) -> int:
    since = parse_when(args.since, "--since") if args.since else None
    until = parse_when(args.until, "--until") if args.until else None
    if since and until and since >= until:
        raise CliError("--since must be before --until")
    settings = load_settings(args.config)

    async def run(store: Any, audit: AuditWriter) -> int:
        found = await asyncio.to_thread(scan, settings.audit.dir, between(since, until))
        clear: dict[str, str | int | None] = {
            "command": "export",
            "since": rfc3339(since) if since else None,
            "until": rfc3339(until) if until else None,
            "records": len(found.records),
        }
        await audited(audit, "audit_exported", None, clear, args.reason)
        await print_opened(found, settings, store)
        return 0

    return run_audited(settings, run)


# ------------------------------------------------------------------- parser


def add_audit_commands(sub: Any, with_config: WithConfig) -> None:
    audit = sub.add_parser("audit", help="verify, read, export and prune the audit log")
    asub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    sp = with_config(
        asub.add_parser(
            "verify",
            help="prove the audit log untampered, or name the first bad record",
            description="Check every chain's records, links and signed checkpoints, and the "
            "chain registry in the store. Exit 0 with 'ok: N records, M checkpoints', or 1.",
        )
    )
    sp.set_defaults(func=cmd_verify)

    sp = with_config(asub.add_parser("show", help="decrypt one message's records (audited)"))
    sp.add_argument("message_id", metavar="MESSAGE_ID")
    sp.add_argument("--reason", help="why you look (kept sealed in the audit record)")
    sp.set_defaults(func=cmd_show)

    sp = with_config(asub.add_parser("find", help="messages to a number or a borrower (audited)"))
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--to", metavar="NUMBER", help="E.164, or national with --region")
    who.add_argument("--borrower", metavar="ID", help="the client's borrower id")
    sp.add_argument("--region", help="region of a national --to number, e.g. CN")
    sp.add_argument("--client", help="with --borrower: only this client (default: all)")
    sp.add_argument("--reason", help="why you look (kept sealed in the audit record)")
    sp.set_defaults(func=cmd_find)

    sp = with_config(
        asub.add_parser(
            "export",
            help="decrypted JSON Lines of a time range, for a regulator (audited)",
            description="Every record with SINCE <= ts < UNTIL, its sealed fields opened, one "
            'JSON object a line on stdout (fields of erased borrowers read "erased").',
        )
    )
    sp.add_argument("--since", metavar="WHEN", help="date or RFC 3339 time (default: the start)")
    sp.add_argument("--until", metavar="WHEN", help="date or RFC 3339 time (default: now)")
    sp.add_argument("--reason", help="why (kept sealed in the audit record)")
    sp.set_defaults(func=cmd_export)
    add_admin_commands(asub, with_config)


def add_admin_commands(asub: Any, with_config: WithConfig) -> None:
    from gateway.cli_audit_admin import add_erase, add_prune

    add_prune(asub, with_config)
    add_erase(asub, with_config)


def add_key_commands(ksub: Any, with_config: WithConfig) -> None:
    from gateway.cli_audit_admin import add_rotate

    add_rotate(ksub, with_config)
