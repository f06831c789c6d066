"""``lendsms reviewers``: the people who sign in to the ``/review`` page.

A password comes from ``--password-file`` or standard input (never the
command line, where it would sit in the shell history and ``ps``); only its
scrypt hash is stored. Every change is written to the audit log first, with
the operating-system user who made it (no record, no change).

``signout NAME`` ends every web session of NAME at once, on every replica
(for a cookie that may have been stolen); a new password and ``disable`` do
the same (``update --enable`` does not bring old sessions back)."""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import load_settings
from gateway.audit import AuditUnavailable
from gateway.cli import CliError, _run_with_store
from gateway.cli_audit import WithConfig, actor
from gateway.review.passwords import PasswordError, check_strength, hash_password_async
from gateway.store.review import Reviewer

MAX_NAME = 64


def check_name(name: str) -> str:
    if not 0 < len(name) <= MAX_NAME or name != name.strip():
        raise CliError(f"NAME: 1-{MAX_NAME} characters, no leading or trailing spaces")
    if not all(c.isprintable() for c in name):
        raise CliError("NAME: printable characters only")
    return name


def read_password(path: str | None) -> str:
    """From the file, else standard input (a prompt when it is a terminal)."""
    if path is not None:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the password file: {type(exc).__name__}") from None
    elif sys.stdin.isatty():
        raw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != raw:
            raise CliError("the passwords differ")
    else:
        raw = sys.stdin.readline()
    password = raw.rstrip("\r\n")
    try:
        check_strength(password)
    except PasswordError as exc:
        raise CliError(str(exc)) from None
    return password


async def _check_clients(store: Any, clients: tuple[str, ...]) -> None:
    for client_id in clients:
        if await store.get_client(client_id) is None:
            raise CliError(f"no client {client_id} (lendsms clients add {client_id})")


async def _audit(audit: Any, event: str, reviewer: Reviewer) -> None:
    try:
        await audit.append(
            event,
            message_id=None,
            clear={
                "actor": actor(),
                "reviewer": reviewer.name,
                "can_reveal": int(reviewer.can_reveal),
                "clients": ",".join(reviewer.clients) or "*",
                "disabled": int(reviewer.disabled_at is not None),
            },
        )
    except AuditUnavailable as exc:
        raise CliError(
            f"cannot record this change in the audit log ({exc}); nothing changed"
        ) from None


def _describe(r: Reviewer) -> str:
    state = f"disabled {r.disabled_at:%Y-%m-%d}" if r.disabled_at else "active"
    clients = ",".join(r.clients) or "*"
    reveal = "yes" if r.can_reveal else "no"
    created = f"{r.created_at:%Y-%m-%d}"
    return f"{r.name}\tclients={clients}\tcan_reveal={reveal}\tcreated={created}\t{state}"


def cmd_reviewers(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.action == "list":

        async def show(store: Any, _: Any) -> int:
            for r in await store.list_reviewers():
                print(_describe(r))
            return 0

        return _run_with_store(settings, show)
    name = check_name(args.name)
    if args.action == "disable":
        return _run_with_store(settings, lambda s, a: _disable(s, a, name), audited=True)
    if args.action == "signout":
        return _run_with_store(settings, lambda s, a: _signout(s, a, name), audited=True)
    new_password = args.action == "add" or args.password_file or args.password_stdin
    password = read_password(args.password_file) if new_password else None
    return _run_with_store(settings, lambda s, a: _put(s, a, args, name, password), audited=True)


async def _put(store: Any, audit: Any, args: argparse.Namespace, name: str,
               password: str | None) -> int:  # fmt: skip
    current = await store.get_reviewer(name)
    if args.action == "add" and current is not None:
        raise CliError(f"reviewer {name} already exists (use reviewers update)")
    if args.action == "update" and current is None:
        raise CliError(f"no reviewer {name} (use reviewers add)")
    clients = tuple(dict.fromkeys(args.client)) if args.client is not None else None
    await _check_clients(store, clients or ())
    if current is None:
        reviewer = Reviewer(name, bool(args.can_reveal), clients or (), datetime.now(UTC))
    else:
        base = current.reviewer
        reviewer = replace(
            base,
            can_reveal=base.can_reveal if args.can_reveal is None else args.can_reveal,
            clients=base.clients if clients is None else clients,
            disabled_at=None if args.enable else base.disabled_at,
            # a new password ends every session (signed in with the old one)
            signed_out_at=datetime.now(UTC) if password is not None else None,
        )
    if password is not None:
        hashed = await hash_password_async(password)
    elif current is not None:
        hashed = current.password_hash
    else:  # add always reads a password
        raise CliError("a password is required")
    await _audit(audit, "reviewer_added" if current is None else "reviewer_updated", reviewer)
    try:
        await store.put_reviewer(reviewer, hashed, create=current is None)
    except ValueError:
        raise CliError(f"reviewer {name} already exists (use reviewers update)") from None
    print(f"{'added' if current is None else 'updated'} reviewer: {_describe(reviewer)}")
    if current is not None and password is not None:
        print(f"new password: every session of {name} has ended")
    return 0


async def _disable(store: Any, audit: Any, name: str) -> int:
    current = await store.get_reviewer(name)
    if current is None or current.reviewer.disabled_at is not None:
        raise CliError(f"no active reviewer {name}")
    now = datetime.now(UTC)
    reviewer = replace(current.reviewer, disabled_at=now, signed_out_at=now)
    await _audit(audit, "reviewer_disabled", reviewer)
    await store.put_reviewer(reviewer, current.password_hash, create=False)
    print(f"disabled reviewer {name}; every session of theirs has ended")
    return 0


async def _signout(store: Any, audit: Any, name: str) -> int:
    current = await store.get_reviewer(name)
    if current is None:
        raise CliError(f"no reviewer {name} (lendsms reviewers list)")
    now = datetime.now(UTC)
    await _audit(audit, "reviewer_signed_out", replace(current.reviewer, signed_out_at=now))
    if not await store.end_reviewer_sessions(name, now):
        raise CliError(f"no reviewer {name} (lendsms reviewers list)")
    since = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    print(f"signed out reviewer {name}: every session started before {since} has ended,"
          " on every replica")  # fmt: skip
    return 0


def add_reviewer_commands(sub: Any, with_config: WithConfig) -> None:
    reviewers = sub.add_parser("reviewers", help="manage compliance reviewers (the /review page)")
    rsub = reviewers.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("add", "add a reviewer"), ("update", "change a reviewer")):
        sp = with_config(rsub.add_parser(action, help=text, description=(
            "The password (12+ characters) is read from --password-file, else from"
            " standard input." + (" update keeps it unless one of them is given."
                                  if action == "update" else ""))))  # fmt: skip
        sp.add_argument("name", metavar="NAME", help="the reviewer's name (their sign-in)")
        reveal = sp.add_mutually_exclusive_group()
        reveal.add_argument(
            "--can-reveal",
            dest="can_reveal",
            action="store_true",
            default=None,
            help="may reveal original texts (audited)",
        )
        reveal.add_argument(
            "--no-can-reveal",
            dest="can_reveal",
            action="store_false",
            help=argparse.SUPPRESS if action == "add" else "may not reveal",
        )
        sp.add_argument(
            "--client",
            action="append",
            metavar="ID",
            help="a client the reviewer sees (repeatable; default: all)",
        )
        sp.add_argument("--password-file", metavar="F", help="file holding the password")
        sp.add_argument(
            "--password-stdin",
            action="store_true",
            help=argparse.SUPPRESS
            if action == "add"
            else "read a new password from standard input",
        )
        sp.add_argument(
            "--enable",
            action="store_true",
            help=argparse.SUPPRESS if action == "add" else "enable a disabled one",
        )
    sp = with_config(rsub.add_parser("disable", help="disable a reviewer (audited)"))
    sp.add_argument("name", metavar="NAME")
    sp = with_config(rsub.add_parser(
        "signout", help="end every web session of a reviewer now (audited)",
        description="Ends every /review session of NAME at once, on every replica, e.g."
        " when a session cookie may have been stolen. NAME can sign in again."))  # fmt: skip
    sp.add_argument("name", metavar="NAME")
    with_config(rsub.add_parser("list", help="list reviewers (never passwords)"))
    reviewers.set_defaults(func=cmd_reviewers)
