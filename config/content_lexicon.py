"""Lexicon files of a content pack: ``config/lexicons/<pack>/*.toml``.

One file per category (plus ``contexts.toml``)::

    category = "violence"          # the name findings carry
    number = 1                     # compliance.md §3 row
    title = "Violence / physical threat"

    [[rules]]
    id = "cn.violence.harm"        # unique within the pack
    action = "block"               # or "hold"
    source = "刑法 第二百九十三条之一 …"   # legal basis, evidence level
    pinyin = true                  # also match pinyin spellings (zuolao, zuo牢)
    allow_contexts = ["anti_fraud"]
    allowed_by = ["legal_action_authorized"]   # template attestations
    escalated_by = ["time_barred"] # these attestations make the rule block
    homophones = true              # also homophone spellings (homophones.toml)
    roles = ["contact"]            # only for these recipient roles
    purposes = ["marketing"]       # only for these purposes
    with_scope = "sentence"        # clause | sentence | message
    with = \"\"\"…\"\"\"               # fires only together with one of these
    terms = \"\"\"
    打断你{的|}腿                  # one pattern a line; {a|b|} alternations
    jail*                          # Latin: * lets the word go on (jailed)
    \"\"\"

Errors name the file, the line and the reason (:class:`ContentPackError`).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from config.content_cache import cached
from config.settings import ATTESTATIONS, PURPOSES, SettingsError

__all__ = [
    "ContentPackError",
    "Lines",
    "expand",
    "parse_terms",
    "pinyin_readings",
    "read_toml",
    "t2s_table",
    "traditional_forms",
]

ROLES: Final = ("borrower", "contact")
SCOPES: Final = ("clause", "sentence", "message")
MAX_EXPANSION: Final = 5000  # patterns one line may expand to
_GROUP: Final = re.compile(r"\{([^{}]*)\}")
_CJK_RANGES: Final = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


class ContentPackError(SettingsError):
    """``file:line: reason`` (a :class:`SettingsError`, so the CLI prints one line)."""

    def __init__(self, file: str | Path, line: int | None, reason: str) -> None:
        where = f"{file}:{line}" if line else str(file)
        super().__init__(where, reason)
        self.file = str(file)
        self.line = line


class Lines:
    """Finds the line of a key or value in a file's text (tomllib gives none)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def find(self, needle: str, after: int = 0) -> int | None:
        for number in range(max(after, 1), len(self.lines) + 1):
            if needle in self.lines[number - 1]:
                return number
        return None

    def error(self, needle: str | None, reason: str, after: int = 0) -> ContentPackError:
        line = self.find(needle, after) if needle else None
        return ContentPackError(self.path, line or (after or None), reason)


def read_toml(path: Path) -> tuple[dict[str, Any], Lines]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContentPackError(path, None, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ContentPackError(path, None, "is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ContentPackError(path, line, f"is not valid TOML ({exc})") from None
    return data, Lines(path, text)


def _line_from_message(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def expand(pattern: str) -> list[str]:
    """``打{断|折}你{的|}腿`` -> the four literal patterns. Raises ValueError."""
    if "{" not in pattern and "}" not in pattern:
        return [pattern]
    parts: list[list[str]] = []
    pos = 0
    for m in _GROUP.finditer(pattern):
        parts.append([pattern[pos : m.start()]])
        parts.append(m.group(1).split("|"))
        pos = m.end()
    parts.append([pattern[pos:]])
    if any("{" in p or "}" in p for group in parts for p in group):
        raise ValueError("unbalanced or nested { } in a pattern")
    total = 1
    for group in parts:
        total *= len(group)
    if total > MAX_EXPANSION:
        raise ValueError(f"expands to {total} patterns (at most {MAX_EXPANSION})")
    out = [""]
    for group in parts:
        out = [head + alt for head in out for alt in group]
    return out


def parse_terms(raw: Any, lines: Lines, key: str, after: int) -> list[tuple[str, bool, int]]:
    """``(pattern, prefix, line)`` for every pattern of a multi-line string."""
    if not isinstance(raw, str):
        raise lines.error(key, f"{key} must be a multi-line string, one pattern a line", after)
    out: list[tuple[str, bool, int]] = []
    start = lines.find(key, after) or after
    for written in raw.splitlines():
        pattern = written.split(" #", 1)[0].strip()
        if not pattern or pattern.startswith("#"):
            continue
        line = lines.find(written.strip(), start) or start
        prefix = pattern.endswith("*")
        body = pattern[:-1].rstrip() if prefix else pattern
        if prefix and not body.isascii():
            raise ContentPackError(lines.path, line, f"{pattern!r}: * is for Latin words only")
        if "*" in body:
            raise ContentPackError(lines.path, line, f"{pattern!r}: * only at the end of a pattern")
        try:
            expanded = expand(body)
        except ValueError as exc:
            raise ContentPackError(lines.path, line, f"{pattern!r}: {exc}") from None
        for literal in expanded:
            if not literal.strip():
                raise ContentPackError(lines.path, line, f"{pattern!r}: expands to an empty term")
            out.append((literal, prefix, line))
    if not out:
        raise lines.error(key, f"{key} has no patterns", after)
    return out


def check_names(
    lines: Lines, key: str, values: Any, allowed: Iterable[str], after: int
) -> tuple[str, ...]:
    if values is None:
        return ()
    known = tuple(allowed)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise lines.error(key, f"{key} must be a list of strings", after)
    for v in values:
        if v not in known:
            raise lines.error(key, f"{key}: unknown {v!r} (known: {', '.join(known)})", after)
    return tuple(values)


KNOWN_LISTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"roles": ROLES, "purposes": PURPOSES, "allowed_by": ATTESTATIONS, "escalated_by": ATTESTATIONS}
)


@cache
def t2s_table() -> Mapping[int, str]:
    """Traditional -> simplified, character by character, from OpenCC's own data.

    Converting per character keeps offsets one-to-one; phrase-level
    conversion is not needed to *find* words.
    """
    import opencc

    chars = [chr(cp) for lo, hi in _CJK_RANGES for cp in range(lo, hi)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - OpenCC keeps newlines
        raise RuntimeError("OpenCC changed the number of lines")
    table = {ord(a): b for a, b in zip(chars, converted, strict=True) if a != b and len(b) == 1}
    return MappingProxyType(table)


def traditional_forms(terms: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Phrase-level traditional spellings (mainland, Taiwan, Hong Kong) per
    Chinese term, from OpenCC; the matcher keeps those that per-character
    conversion back to simplified does not undo (借口 -> 藉口). Cached
    (:mod:`config.content_cache`)."""
    chinese = sorted({t for t in terms if _CJK_CHAR.search(t) and "\n" not in t})
    if not chinese:
        return {}
    return cached(
        "forms",
        _version("opencc"),
        chinese,
        lambda: _traditional_forms(chinese),
        lambda forms: forms,
        lambda data: {str(k): tuple(map(str, v)) for k, v in data.items()},
    )


def _traditional_forms(chinese: list[str]) -> dict[str, tuple[str, ...]]:
    import opencc

    forms: dict[str, set[str]] = {t: set() for t in chinese}
    for config in ("s2t", "s2tw", "s2hk"):
        converted = opencc.OpenCC(config).convert("\n".join(chinese)).split("\n")
        if len(converted) != len(chinese):  # pragma: no cover - OpenCC keeps newlines
            continue
        for term, form in zip(chinese, converted, strict=True):
            if form != term:
                forms[term].add(form)
    return {t: tuple(sorted(f)) for t, f in forms.items() if f}


def pinyin_readings(terms: Iterable[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Readings per all-Chinese term, and one reading per character (the most
    frequent). A term whose characters the per-character table reads
    otherwise than the term's own reading (a polyphone: 行 in 银行 is hang,
    in 行为 xing) gets that reading too: the pinyin view reads the Chinese
    characters of a text by the table, so "银hang" and "yin行" both meet
    银行 whichever reading the other terms make the majority. Cached
    (:mod:`config.content_cache`)."""
    chinese = [t for t in terms if _ALL_CJK.fullmatch(t)]
    return cached(
        "pinyin",
        f"{_version('pypinyin')}+table-reading",
        chinese,
        lambda: _pinyin_readings(chinese),
        list,
        _decode_readings,
    )


def _decode_readings(data: Any) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    readings, table = data
    return (
        {str(k): tuple(map(str, v)) for k, v in readings.items()},
        {str(k): str(v) for k, v in table.items()},
    )


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:  # pragma: no cover - both are dependencies
        return "unknown"


def _pinyin_readings(terms: list[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    from pypinyin import lazy_pinyin

    readings: dict[str, tuple[str, ...]] = {}
    votes: dict[str, Counter[str]] = {}
    for term in terms:
        syllables = lazy_pinyin(term)
        if len(syllables) != len(term):
            continue
        readings[term] = ("".join(syllables),)
        for ch, syl in zip(term, syllables, strict=True):
            votes.setdefault(ch, Counter())[syl] += 1
    table = {ch: count.most_common(1)[0][0] for ch, count in votes.items()}
    for term, (own,) in readings.items():
        as_read = "".join(table[ch] for ch in term)
        if as_read != own:
            readings[term] = (own, as_read)
    return readings, table


_CJK_CLASS: Final = "".join(f"{chr(lo)}-{chr(hi - 1)}" for lo, hi in _CJK_RANGES)
_CJK_CHAR: Final = re.compile(f"[{_CJK_CLASS}]")
_ALL_CJK: Final = re.compile(f"[{_CJK_CLASS}]+")


def iter_files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.glob("*.toml") if p.is_file())
