"""Signed checkpoints of an audit chain's head.

A checkpoint states that record ``seq``, whose mac is ``mac``, was the durable
head of chain ``instance`` at ``ts``. It is signed with Ed25519 under a key
derived from the audit master key (its public half alone checks a signature),
appended to ``checkpoints-<instance>.ckpt`` beside the segments, and copied
to the store, one JSON object a line::

    {"instance": ..., "seq": 1200, "mac": "…", "ts": "…", "reason": "count", "sig": "…"}

``reason`` is why it was taken: ``count`` (every N records), ``time`` (every N
seconds), ``close`` (the chain's writer shut down cleanly; nothing may follow
it), ``recovered`` (the same, signed by the next gateway to start on the host
after the writer's process crashed: :mod:`gateway.audit_recover`) or
``pruned`` (``audit prune`` removed the records up to ``seq``; the chain now
starts at ``seq + 1`` with ``prev`` = ``mac``). A checkpoint of seq 0 has the
GENESIS mac.

Because the signature covers the head, a tail cut off after a checkpoint, or a
rewritten record at a checkpointed seq, shows in ``audit verify``; the copy in
the store catches a checkpoint file that was cut or deleted with the tail.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.crypto import SigningKey, signature_valid

REASONS: Final = ("count", "time", "close", "recovered", "pruned")
CLOSING: Final = ("close", "recovered")
CHECKPOINT_NAME = re.compile(r"checkpoints-(?P<instance>[A-Za-z0-9_-]{1,64})\.ckpt")
_DOMAIN: Final = b"lendsms-audit-checkpoint-v1\n"
_FIELDS: Final = ("instance", "seq", "mac", "ts", "reason")
_MAC = re.compile(r"[0-9a-f]{64}")
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_OPEN: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    instance: str
    seq: int
    mac: str
    ts: str
    reason: str
    sig: str

    def signed_bytes(self) -> bytes:
        body = [self.instance, self.seq, self.mac, self.ts, self.reason]
        return _DOMAIN + _JSON.encode(body).encode("ascii")

    def line(self) -> str:
        """The JSON line (without its newline) for the file and the store."""
        return _JSON.encode({name: getattr(self, name) for name in (*_FIELDS, "sig")})

    def valid(self, public: bytes) -> bool:
        return signature_valid(public, self.signed_bytes(), self.sig)

    def __str__(self) -> str:
        return f"checkpoint {self.reason} at seq {self.seq} ({self.ts})"


def sign_checkpoint(
    key: SigningKey, instance: str, seq: int, mac: str, ts: str, reason: str
) -> Checkpoint:
    if reason not in REASONS:
        raise ValueError(f"checkpoint reason must be one of {', '.join(REASONS)}")
    unsigned = Checkpoint(instance, seq, mac, ts, reason, "")
    return Checkpoint(instance, seq, mac, ts, reason, key.sign(unsigned.signed_bytes()))


def parse_checkpoint(raw: str | bytes) -> Checkpoint | None:
    """A checkpoint of the right shape (not yet checked against its signature)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {*_FIELDS, "sig"}:
        return None
    shape_ok = (
        isinstance(data["instance"], str)
        and type(data["seq"]) is int
        and data["seq"] >= 0
        and isinstance(data["mac"], str)
        and _MAC.fullmatch(data["mac"]) is not None
        and isinstance(data["ts"], str)
        and data["reason"] in REASONS
        and isinstance(data["sig"], str)
    )
    if not shape_ok:
        return None
    return Checkpoint(**{name: data[name] for name in (*_FIELDS, "sig")})


def checkpoint_path(directory: Path, instance: str) -> Path:
    return Path(directory) / f"checkpoints-{instance}.ckpt"


def checkpoint_instances(directory: Path) -> list[str]:
    """Instances that have a checkpoint file in ``directory``."""
    found = []
    for path in Path(directory).glob("checkpoints-*.ckpt"):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match:
            found.append(match["instance"])
    return sorted(found)


@dataclass(frozen=True, slots=True)
class CheckpointLine:
    number: int
    checkpoint: Checkpoint | None  # None: not a checkpoint
    complete: bool  # ends with a newline


def read_checkpoint_file(path: Path) -> Iterator[CheckpointLine]:
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            yield CheckpointLine(number, parse_checkpoint(raw), raw.endswith(b"\n"))


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line and fsync (blocking: run it in a thread)."""
    fd = os.open(path, _OPEN, 0o600)
    try:
        size = os.fstat(fd).st_size
        data = (checkpoint.line() + "\n").encode("ascii")
        try:
            if os.write(fd, data) != len(data):  # one write: O_APPEND keeps a line whole
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # leave no half line behind
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
