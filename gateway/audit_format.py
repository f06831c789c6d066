"""The audit record format: field order, canonical bytes, the mac chain, the
associated data of sealed fields, and segment names. Pure: no I/O but listing
a folder's segment names.

One record per line, fields in this order::

    seq, ts, instance, event, message_id, clear, sealed, prev, mac

``clear`` holds non-personal fields (client, key id, blind-index hashes);
``sealed`` is a :class:`~gateway.crypto.FieldCipher` token of the JSON of
everything personal (its header names the data key), with ``seq``,
``instance``, ``event`` and ``message_id`` as associated data
(:func:`sealed_aad`), so a sealed blob cannot be moved to another record.
``mac`` is the hex HMAC-SHA256, under the chain key, of the canonical JSON of
all other fields (:func:`record_mac`); ``prev`` is the previous record's
``mac`` (64 zeros before the first record of a chain). A line is exactly
:func:`canonical_line` of its record: any other bytes are an alteration.

The layout is described in :mod:`gateway.audit`; the file work is
:mod:`gateway.audit_segment`, reading chains back :mod:`gateway.audit_verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from gateway.crypto import constant_time_equals

GENESIS: Final = "0" * 64
FIELDS: Final = ("seq", "ts", "instance", "event", "message_id", "clear", "sealed", "prev")
_ALL_FIELDS: Final = frozenset((*FIELDS, "mac"))
_MAC_DOMAIN: Final = b"lendsms-audit-v1\n"
SEGMENT_NAME = re.compile(r"audit-(?P<instance>[A-Za-z0-9_-]{1,64})-(?P<first>\d{12})\.jsonl")
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def segment_name(instance_id: str, first_seq: int) -> str:
    return f"audit-{instance_id}-{first_seq:012d}.jsonl"


def segment_paths(directory: Path, instance_id: str) -> list[Path]:
    """The instance's segments, oldest first."""
    found = []
    for path in Path(directory).glob(f"audit-{instance_id}-*.jsonl"):
        match = SEGMENT_NAME.fullmatch(path.name)
        if match and match["instance"] == instance_id:
            found.append((int(match["first"]), path))
    return [path for _, path in sorted(found)]


_str = json.encoder.encode_basestring_ascii  # what _JSON does with a str (C when built)


def _scalar(value: str | int | None) -> str:
    """One JSON scalar exactly as :data:`_JSON` writes it."""
    if value is None or value is True or value is False:
        return "null" if value is None else ("true" if value else "false")
    return int.__repr__(value) if isinstance(value, int) else _str(value)


def first_seq(path: Path) -> int:
    """The seq a segment's name says it starts at (0 for another name)."""
    match = SEGMENT_NAME.fullmatch(path.name)
    return int(match["first"]) if match else 0


def unpruned(segments: list[Path], base_seq: int) -> list[Path]:
    """``segments`` (in order) without those that hold only records up to
    ``base_seq``: left behind by a prune that stopped half-way."""
    return [p for i, p in enumerate(segments)
            if i + 1 == len(segments) or first_seq(segments[i + 1]) > base_seq + 1]  # fmt: skip


def sealed_aad(seq: int, instance: str, event: str, message_id: str | None) -> bytes:
    """The associated data that binds a record's sealed blob to the record: the
    JSON array ``[seq, instance, event, message_id]``."""
    return f"[{int(seq)},{_str(instance)},{_str(event)},{_scalar(message_id)}]".encode("ascii")


def record_body(
    seq: int,
    ts: str,
    instance: str,
    event: str,
    message_id: str | None,
    clear: Mapping[str, str | int | None],
    sealed: str | None,
    prev: str,
) -> bytes:
    """``canonical()`` of a record without its mac, byte for byte, built without
    a generic encoder (the writer's hot path). ``clear`` must be sorted."""
    fields = ",".join(f"{_str(k)}:{_scalar(v)}" for k, v in clear.items())
    return (
        f'{{"seq":{int(seq)},"ts":{_str(ts)},"instance":{_str(instance)},"event":{_str(event)},'
        f'"message_id":{_scalar(message_id)},"clear":{{{fields}}},"sealed":{_scalar(sealed)},'
        f'"prev":{_str(prev)}}}'
    ).encode("ascii")


def canonical(body: Mapping[str, Any]) -> bytes:
    return _JSON.encode(body).encode("ascii")


def mac_of(chain_key: bytes, data: bytes) -> str:
    return hmac.new(chain_key, _MAC_DOMAIN + data, hashlib.sha256).hexdigest()


def record_mac(chain_key: bytes, record: Mapping[str, Any]) -> str:
    """The mac a record should carry (over every field but ``mac``)."""
    body = {name: record[name] for name in FIELDS}
    body["clear"] = dict(sorted(record["clear"].items()))
    return mac_of(chain_key, canonical(body))


def canonical_line(record: Mapping[str, Any]) -> bytes:
    """The exact bytes the writer puts on disk for ``record`` (newline included).
    Anything else on a line is an alteration, even where the JSON means the same."""
    body = {name: record[name] for name in (*FIELDS, "mac")}
    body["clear"] = dict(sorted(record["clear"].items()))
    return canonical(body) + b"\n"


def parse_record(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def check_record(record: dict[str, Any], chain_key: bytes) -> str | None:
    """Why a parsed record is not well-formed and authentic, or None."""
    if set(record) != _ALL_FIELDS:
        return "missing or unexpected fields"
    types_ok = (
        type(record["seq"]) is int
        and isinstance(record["clear"], dict)
        and isinstance(record["prev"], str)
        and isinstance(record["mac"], str)
    )
    if not types_ok:
        return "malformed field"
    try:
        expected = record_mac(chain_key, record)
    except (TypeError, ValueError):
        return "malformed field"
    if not constant_time_equals(expected, record["mac"]):
        return "mac mismatch (record altered or wrong key)"
    return None


def clear_fields(clear: Mapping[str, str | int | None] | None) -> dict[str, str | int | None]:
    out: dict[str, str | int | None] = {}
    for key, value in sorted((clear or {}).items()):
        if not isinstance(key, str) or not (value is None or isinstance(value, str | int)):
            raise TypeError("clear fields must map str to str, int or None")
        out[key] = value
    return out
