"""The ``lendsms`` command line."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import POLICY_PACKS, Settings, SettingsError, load_settings
from gateway import __version__
from gateway.models import SCOPES, Client

EXIT_USAGE = 2
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_SIGNATURE_FORBIDDEN = set("【】[]")


class CliError(Exception):
    """A one-line error for the user; exit status 1."""


# ------------------------------------------------------------------- init


CONFIG_TEMPLATE = """\
# lendsms settings, written by `lendsms init` on {date}.
# Relative paths are relative to this file's folder. Every key can be
# overridden from the environment: LENDSMS_<SECTION>__<KEY>.

[server]
host = "127.0.0.1"
port = 8080

[store]
backend = "sqlite"
path = "var/lendsms.db"

[audit]
dir = "var/audit"
fsync = "batch"

[keys]
# 32 random bytes each, base64. Keep them secret and backed up: without
# them stored numbers, texts and audit records cannot be read.
data = "file:secrets/data.key"
index = "file:secrets/index.key"
audit = "file:secrets/audit.key"

# The development stand-in for a carrier: one JSON line per SMS.
[providers.outbox]
type = "outbox"
path = "var/outbox.jsonl"

[[routes]]
providers = ["outbox"]
"""


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    config = target / "lendsms.toml"
    secrets_dir = target / "secrets"
    key_files = [secrets_dir / f"{name}.key" for name in ("data", "index", "audit")]
    existing = [p for p in (config, *key_files) if p.exists()]
    if existing:
        raise CliError(f"{existing[0]} already exists; init never overwrites (use another --dir)")
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets_dir.chmod(0o700)  # also when the folder was already there
    (target / "var").mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in key_files:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(CONFIG_TEMPLATE.format(date=datetime.now(UTC).date().isoformat()))
    print(f"wrote {config}")
    print(f"wrote {len(key_files)} secret keys under {secrets_dir} (mode 0600)")
    print("next: lendsms clients add ID, lendsms keys create --client ID --scope send,")
    print(f"      lendsms serve --config {config}")
    return 0


# ------------------------------------------------------------------ serve


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.supervisor import run_serve

    return run_serve(args)  # one process, or a supervisor of --workers (gateway/supervisor.py)


# ------------------------------------------------------- clients and keys


def _run_with_store(
    settings: Settings, body: Callable[[Any, Any], Awaitable[int]], *, audited: bool = False
) -> int:
    from gateway.app import new_instance_id, open_audit, open_store

    async def main() -> int:
        store = open_store(settings)
        await store.open()
        audit = None
        try:
            if audited:
                audit = open_audit(settings, "cli-" + new_instance_id(), store, kind="cli")
                await audit.start()
            return await body(store, audit)
        finally:
            if audit is not None:
                await audit.close()
            await store.close()

    return asyncio.run(main())


def _check_client_args(args: argparse.Namespace) -> None:
    if args.policy is not None and args.policy not in POLICY_PACKS:
        raise CliError(f"--policy must be one of {', '.join(POLICY_PACKS)}")
    for name in args.signature or ():
        if not 2 <= len(name) <= 20 or _SIGNATURE_FORBIDDEN & set(name) or not name.strip():
            raise CliError("--signature takes the name without brackets, 2 to 20 characters")
    for domain in args.link_domain or ():
        if not _DOMAIN.fullmatch(domain):
            raise CliError(f"--link-domain {domain!r} is not a lower-case domain name")
    if args.rate is not None and not 0 < args.rate <= 100_000:
        raise CliError("--rate must be between 0 and 100000 messages per second")


def _read_secret_file(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    if len(value) < 16:
        raise CliError("the webhook secret must be at least 16 characters")
    return value


def cmd_clients(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.action == "list":

        async def show(store: Any, _: Any) -> int:
            for c in await store.list_clients():
                sigs = ",".join(c.signatures) or "-"
                print(f"{c.id}\tpolicy={c.policy}\tsignatures={sigs}\trate={c.rate or '-'}")
            return 0

        return _run_with_store(settings, show)
    if not _CLIENT_ID.fullmatch(args.id):
        raise CliError("client id: 1-64 of a-z, 0-9, _ and -, starting with a letter or digit")
    _check_client_args(args)
    secret = _read_secret_file(args.webhook_secret_file)

    async def put(store: Any, _: Any) -> int:
        current = await store.get_client(args.id)
        if args.action == "add" and current is not None:
            raise CliError(f"client {args.id} already exists (use clients update)")
        if args.action == "update" and current is None:
            raise CliError(f"no client {args.id} (use clients add)")
        base = current or Client(id=args.id, policy=settings.messages.default_policy)
        client = Client(
            id=args.id,
            policy=args.policy or base.policy,
            signatures=tuple(args.signature) if args.signature is not None else base.signatures,
            rate=args.rate if args.rate is not None else base.rate,
            link_domains=(
                tuple(args.link_domain) if args.link_domain is not None else base.link_domains
            ),
        )
        await store.put_client(client, webhook_secret=secret, create=args.action == "add")
        print(f"{(args.action == 'add' and 'added') or 'updated'} client {client.id} "
              f"(policy {client.policy})")  # fmt: skip
        return 0

    return _run_with_store(settings, put)


def cmd_keys(args: argparse.Namespace) -> int:
    from gateway.auth import new_key

    settings = load_settings(args.config)
    if args.action == "list":

        async def show(store: Any, _: Any) -> int:
            for k in await store.list_keys():
                state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                print(f"{k.id}\tclient={k.client_id}\tscopes={','.join(sorted(k.scopes))}"
                      f"\tcreated={k.created_at:%Y-%m-%d}\t{state}")  # fmt: skip
            return 0

        return _run_with_store(settings, show)

    if args.action == "revoke":

        async def revoke(store: Any, audit: Any) -> int:
            # check first, so the audit log never records the revocation of a
            # key that does not exist or was already revoked
            stored = await store.get_key(args.key_id)
            if stored is None or stored.key.revoked_at is not None:
                raise CliError(f"no active key {args.key_id}")
            await audit.append("key_revoked", message_id=None, clear={"key_id": args.key_id})
            if not await store.revoke_key(args.key_id, datetime.now(UTC)):
                raise CliError(f"no active key {args.key_id}")
            print(f"revoked {args.key_id}")
            return 0

        return _run_with_store(settings, revoke, audited=True)

    scopes = frozenset(args.scope)
    if not scopes <= SCOPES:
        raise CliError(f"--scope must be among {', '.join(sorted(SCOPES))}")

    async def create(store: Any, audit: Any) -> int:
        if await store.get_client(args.client) is None:
            raise CliError(f"no client {args.client} (lendsms clients add {args.client})")
        made = new_key(args.client, scopes, datetime.now(UTC))
        await store.add_key(made.key, made.secret_hash)
        await audit.append(
            "key_created",
            message_id=None,
            clear={
                "key_id": made.key.id,
                "client": args.client,
                "scopes": ",".join(sorted(scopes)),
            },
        )
        print(f"created key {made.key.id} for client {args.client} "
              f"(scopes {','.join(sorted(scopes))}); it is shown once:")  # fmt: skip
        print(made.token)
        return 0

    return _run_with_store(settings, create, audited=True)


# ----------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lendsms",
        description="lendsms: a secure SMS gateway for consumer lenders.",
        epilog="--config defaults to $LENDSMS_CONFIG, then ./lendsms.toml.",
    )
    p.add_argument("--version", action="version", version=f"lendsms {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", metavar="F", help="settings file (TOML)")
        return sp

    sp = sub.add_parser("init", help="write a working embedded-default setup",
                        description="Write DIR/lendsms.toml (SQLite store, outbox provider) and "
                        "fresh secret keys under DIR/secrets. Never overwrites.")  # fmt: skip
    sp.add_argument("--dir", default=".", help="where to write (default: .)")
    sp.set_defaults(func=cmd_init)

    sp = with_config(sub.add_parser("serve", help="run the HTTP service and dispatcher",
                                    description="Serve the HTTP API; the dispatcher runs in "
                                    "the same process unless --no-dispatch. With --workers N, "
                                    "N processes share the port."))  # fmt: skip
    sp.add_argument("--host", help="listen address (overrides server.host)")
    sp.add_argument("--port", type=int, help="listen port (overrides server.port)")
    sp.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    from gateway.supervisor import worker_count
    from gateway.worker import add_worker_command

    sp.add_argument("--workers", type=worker_count, default=1, metavar="N",
                    help="HTTP processes sharing the port (SO_REUSEPORT); 0 or auto: one "
                    "per CPU (default 1)")  # fmt: skip
    sp.add_argument("--no-dispatch", action="store_true",
                    help="serve HTTP only; `lendsms worker` processes dispatch")  # fmt: skip
    sp.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    sp.set_defaults(func=cmd_serve)
    add_worker_command(sub, with_config)

    clients = sub.add_parser("clients", help="manage lending clients (the registry in the store)")
    csub = clients.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("add", "update"):
        sp = with_config(csub.add_parser(action, help=f"{action} a client"))
        sp.add_argument("id", help="client id (a-z, 0-9, _ and -)")
        sp.add_argument("--policy", help=f"policy pack: {', '.join(POLICY_PACKS)}")
        sp.add_argument(
            "--signature",
            action="append",
            metavar="NAME",
            help="an SMS signature without brackets, e.g. 安心消费金融 (repeatable)",
        )
        sp.add_argument("--rate", type=float, metavar="PER_SECOND", help="throughput limit")
        sp.add_argument(
            "--link-domain",
            action="append",
            metavar="DOMAIN",
            help="a domain links may point to (repeatable)",
        )
        sp.add_argument("--webhook-secret-file", metavar="F",
                        help="file holding the secret that signs status webhooks")  # fmt: skip
    sp = with_config(csub.add_parser("list", help="list clients"))
    clients.set_defaults(func=cmd_clients)

    keys = sub.add_parser("keys", help="manage API keys (stored hashed)")
    ksub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    sp = with_config(ksub.add_parser("create", help="create a key; printed once, on the last line"))
    sp.add_argument("--client", required=True, help="the client the key acts for")
    sp.add_argument("--scope", required=True, action="append",
                    help=f"one of {', '.join(sorted(SCOPES))} (repeatable)")  # fmt: skip
    with_config(ksub.add_parser("list", help="list keys (never the secrets)"))
    sp = with_config(ksub.add_parser("revoke", help="revoke a key at once"))
    sp.add_argument("key_id", metavar="KEY_ID", help="the id shown by keys list")
    keys.set_defaults(func=cmd_keys)

    from gateway.cli_audit import add_audit_commands, add_key_commands

    add_key_commands(ksub, with_config)
    add_audit_commands(sub, with_config)

    from gateway.cli_policy import add_policy_commands

    add_policy_commands(sub)

    from gateway.cli_reviewers import add_reviewer_commands

    add_reviewer_commands(sub, with_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"lendsms: settings: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"lendsms: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run as ``python -m gateway.cli``, this file is ``__main__``, a second copy
    # of the module: the subcommand modules raise ``gateway.cli.CliError``, so
    # run the ``main`` of that module to catch it.
    from gateway.cli import main as _main

    sys.exit(_main())
