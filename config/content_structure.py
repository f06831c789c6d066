"""``structure.toml`` of a lexicon folder: the structural rules with their ids,
sources and wording, overlaid with the pack's ``[content]`` options::

    [signature]                      # 【signature】 rules (Chinese carriers)
    rule = "cn.structure.signature"
    source = "…"
    authority_rule = "cn.structure.signature_authority"
    authority_source = "…"
    authority_terms = \"\"\"…\"\"\"       # 【…法院】 etc.: impersonation
    min_chars = 2
    max_chars = 16

    [instructions.unsubscribe]       # a required line; the pack says block or append
    rule = "…"   source = "…"   category = "unsubscribe"
    purposes = ["marketing"]
    missing = "block"                # default, overridden by [content] unsubscribe = …
                                     # ("require" means block)
    optional = false                 # true: the pack may switch it off (= "off")
    append_text = "拒收请回复R"
    markers = \"\"\"…\"\"\"               # any of these counts as present

    [links]            rule, source, category, tlds
    [length]           rule, source, category, max_segments
    [contact_amounts]  rule, source, category   (money figures to a contact)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from config.content_lexicon import Lines, check_names, parse_terms, read_toml
from config.content_model import Instruction, SignatureRules, SimpleRule, Structure
from config.settings import PURPOSES

__all__ = ["load_structure"]

_TOP: Final = frozenset({"signature", "instructions", "links", "length", "contact_amounts"})
_MISSING: Final = ("block", "append")


def load_structure(path: Path, options: dict[str, Any], pack: Lines, after: int) -> Structure:
    """``options`` is the pack's ``[content]`` table (``pack``/``after`` locate it)."""
    if not path.exists():
        raise pack.error("lexicons", f"{path} is missing", after)
    data, lines = read_toml(path)
    for key in sorted(set(data) - _TOP):
        raise lines.error(key, f"{key}: unknown table (known: {', '.join(sorted(_TOP))})")
    signature = _signature(data.get("signature"), lines)
    required = options.get("signature_required", signature is not None)
    if not isinstance(required, bool):
        raise pack.error("signature_required", "signature_required must be true or false", after)
    if required and signature is None:
        raise pack.error("signature_required", f"{path} has no [signature] table", after)
    if signature is not None and signature.required != required:
        signature = SignatureRules(**{**_fields(signature), "required": required})
    instructions = _instructions(data.get("instructions", {}), lines, options, pack, after)
    length = data.get("length")
    max_segments = options.get("max_segments", _get(length, "max_segments", 0))
    if not isinstance(max_segments, int) or isinstance(max_segments, bool) or max_segments < 0:
        raise pack.error("max_segments", "max_segments must be a whole number >= 0", after)
    links = _simple(data.get("links"), "links", lines)
    tlds: tuple[str, ...] = ()
    if links is not None:
        raw = data["links"].get("tlds")
        if not isinstance(raw, str) or not raw.split():
            raise lines.error("tlds", "links.tlds: a space-separated list of top-level domains")
        tlds = tuple(raw.lower().split())
    return Structure(
        signature=signature,
        instructions=instructions,
        links=links,
        link_tlds=tlds,
        length=_simple(length, "length", lines, extra={"max_segments"}),
        max_segments=max_segments,
        contact_amounts=_simple(data.get("contact_amounts"), "contact_amounts", lines),
    )


def _get(table: Any, key: str, default: Any) -> Any:
    return table.get(key, default) if isinstance(table, dict) else default


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def _need_str(table: dict[str, Any], key: str, where: str, lines: Lines) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise lines.error(f"[{where}]", f"{where}.{key} is required (a string)")
    return value.strip()


def _simple(
    table: Any, where: str, lines: Lines, extra: frozenset[str] | set[str] = frozenset()
) -> SimpleRule | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise lines.error(where, f"{where} must be a table")
    known = {"rule", "source", "category", "tlds", *extra} if where == "links" else {
        "rule", "source", "category", *extra}  # fmt: skip
    for key in sorted(set(table) - known):
        raise lines.error(key, f"{where}.{key}: unknown key")
    return SimpleRule(
        _need_str(table, "rule", where, lines),
        _need_str(table, "source", where, lines),
        _need_str(table, "category", where, lines),
    )


def _signature(table: Any, lines: Lines) -> SignatureRules | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise lines.error("signature", "signature must be a table")
    after = lines.find("[signature]") or 0
    terms = parse_terms(table.get("authority_terms"), lines, "authority_terms", after)
    low, high = table.get("min_chars", 2), table.get("max_chars", 16)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= 40):
        raise lines.error("min_chars", "min_chars/max_chars: 1 <= min <= max <= 40", after)
    return SignatureRules(
        required=True,
        rule=_need_str(table, "rule", "signature", lines),
        source=_need_str(table, "source", "signature", lines),
        authority_rule=_need_str(table, "authority_rule", "signature", lines),
        authority_source=_need_str(table, "authority_source", "signature", lines),
        authority_terms=tuple(t for t, _, _ in terms),
        min_chars=low,
        max_chars=high,
    )


def _instructions(
    raw: Any, lines: Lines, options: dict[str, Any], pack: Lines, pack_after: int
) -> tuple[Instruction, ...]:
    if not isinstance(raw, dict):
        raise lines.error("instructions", "instructions must be [instructions.NAME] tables")
    out: list[Instruction] = []
    for name, table in raw.items():
        where = f"instructions.{name}"
        after = lines.find(f"[{where}]") or 0
        if not isinstance(table, dict):
            raise lines.error(name, f"{where} must be a table", after)
        missing = options.get(name, table.get("missing", "block"))
        optional = table.get("optional", False) is True
        if missing == "require":
            missing = "block"
        if missing == "off" and optional:
            continue
        if missing not in _MISSING:
            extra = " (or require = block, or off)" if optional else ""
            raise pack.error(name, f"content.{name} must be block or append{extra}", pack_after)
        purposes = check_names(lines, "purposes", table.get("purposes"), PURPOSES, after)
        markers = parse_terms(table.get("markers"), lines, "markers", after)
        out.append(
            Instruction(
                rule=_need_str(table, "rule", where, lines),
                source=_need_str(table, "source", where, lines),
                category=_need_str(table, "category", where, lines),
                purposes=purposes,
                missing=str(missing),
                append_text=_need_str(table, "append_text", where, lines),
                markers=tuple(m for m, _, _ in markers),
            )
        )
    for key in ("unsubscribe", "opt_out", "debt_collector_disclosure"):
        if key in options and key not in raw:
            raise pack.error(key, f"content.{key}: the lexicon folder has no such rule", pack_after)
    return tuple(out)
