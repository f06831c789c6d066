"""The content part of a policy pack, loaded and validated.

A pack file (``config/policies/<name>.toml``, shared with other stages) holds
only the options an operator tunes, in its ``[content]`` table::

    [content]
    lexicons = "cn-collection"   # folder config/lexicons/<lexicons>/
    signature_required = true    # Chinese carriers require a 【signature】
    max_segments = 5             # longer texts are blocked
    unsubscribe = "block"        # marketing without an unsubscribe line: block | append
    opt_out = "append"           # (us-fdcpa) collection texts without an opt-out line
    debt_collector_disclosure = "append"  # (us-fdcpa) mini-Miranda: append | require | off
    learned_hold = true          # hold what the learned model flags (default false)
    learned_model = "content-learned"  # config/models/<name>.json.gz (default)
    learned_threshold = 0.9      # optional: else the model's own, per language

The lexicon folder holds one file per category (see
:mod:`config.content_lexicon`), ``contexts.toml`` (allow-contexts),
``structure.toml`` (rule ids, sources and wording of the structural rules)
and optionally ``homophones.toml`` (see :mod:`config.content_homophones`).
A lexicon folder next to the pack file (``../lexicons/<name>``) wins over the
shipped one, so operators can extend a pack without code. Every problem is
one :class:`ContentPackError` naming the file, the line and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from config.content_cache import cached, code_version
from config.content_codec import Compiled, decode_compiled, encode_compiled
from config.content_homophones import load_homophones, with_homophones
from config.content_lexicon import (
    KNOWN_LISTS,
    SCOPES,
    ContentPackError,
    Lines,
    check_names,
    iter_files,
    parse_terms,
    pinyin_readings,
    read_toml,
    t2s_table,
    traditional_forms,
)
from config.content_model import (
    Category,
    Context,
    LearnedHold,
    PackSpec,
    Rule,
    Scope,
    Severity,
    Term,
)
from config.content_structure import load_structure

__all__ = ["ContentPackError", "load_content_pack", "shipped_content_packs"]

_PACK_KEYS: Final = frozenset(
    {"lexicons", "signature_required", "max_segments", "unsubscribe", "opt_out",
     "debt_collector_disclosure", "learned_hold", "learned_model", "learned_threshold"}
)  # fmt: skip
_MODEL_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CATEGORY_KEYS: Final = frozenset({"category", "number", "title", "rules"})
_RULE_KEYS: Final = frozenset(
    {"id", "action", "source", "terms", "with", "with_scope", "pinyin", "homophones",
     "allow_contexts", "allowed_by", "escalated_by", "roles", "purposes"}
)  # fmt: skip
_CONTEXT_KEYS: Final = frozenset({"terms", "scope", "negated_by"})
_SPECIAL_FILES: Final = frozenset({"contexts.toml", "structure.toml", "homophones.toml"})
_COMPILER_SOURCES: Final = (
    "content.py", "content_codec.py", "content_homophones.py", "content_lexicon.py",
    "content_model.py", "content_structure.py",
)  # fmt: skip


def load_content_pack(path: Path, *, learned: bool = True) -> PackSpec:
    """The content policy of the pack file at ``path``; ``learned=False``
    leaves the learned second stage out without reading its model (the
    trainer compares a new model with the lexicon alone)."""
    data, lines = read_toml(path)
    name, language = data.get("name"), data.get("language")
    if not isinstance(name, str) or not name:
        raise lines.error("name", "name is required")
    if language not in ("zh", "en"):
        raise lines.error("language", "language must be zh or en")
    table = data.get("content")
    if not isinstance(table, dict):
        raise lines.error("[content]", "a [content] table is required")
    after = lines.find("[content]") or 0
    for key in sorted(set(table) - _PACK_KEYS):
        raise lines.error(key, f"content.{key}: unknown key", after)
    folder_name = table.get("lexicons")
    if not isinstance(folder_name, str) or not folder_name:
        raise lines.error("lexicons", "content.lexicons must name a lexicon folder", after)
    folder = _lexicon_folder(path, folder_name)
    if folder is None:
        raise lines.error("lexicons", f"no lexicon folder {folder_name!r}", after)
    # the pack's own options first: a mistake there is reported without
    # compiling some hundred thousand terms
    learned_hold = _learned(path, str(language), table, lines, after) if learned else None
    t2s = t2s_table() if language == "zh" else MappingProxyType({})
    contexts, categories, rules, structure, syllables = cached(
        "spec",
        _compiler_version(),
        _sources(path, folder),
        lambda: _compile(folder, str(language), table, lines, after),
        encode_compiled,
        decode_compiled,
    )
    return PackSpec(
        name=name,
        language=str(language),
        rules=rules,
        contexts=contexts,
        categories=categories,
        structure=structure,
        t2s=t2s,
        syllables=MappingProxyType(dict(syllables)),
        learned=learned_hold,
    )


def _compile(
    folder: Path, language: str, table: dict[str, Any], lines: Lines, after: int
) -> Compiled:
    """The lexicon folder's contexts, categories and rules with their derived
    spellings, and the structural rules (the slow part of loading a pack)."""
    contexts = _contexts(folder / "contexts.toml")
    categories, rules, spoken, sounding = _categories(folder, [c.name for c in contexts])
    readings, syllables = pinyin_readings(t.text for r in rules if r.id in spoken for t in r.terms)
    rules = [_with_pinyin(r, readings) if r.id in spoken else r for r in rules]
    if language == "zh":
        rules, contexts = _with_forms(rules, contexts)
    if sounding:
        homophones = load_homophones(folder / "homophones.toml")
        rules = [with_homophones(r, homophones) if r.id in sounding else r for r in rules]
    structure = load_structure(folder / "structure.toml", table, lines, after)
    return tuple(contexts), tuple(categories), tuple(rules), structure, syllables


def _sources(pack: Path, folder: Path) -> list[str]:
    """Everything a compiled pack depends on besides the code: the pack file
    and every file of its lexicon folder, by name."""
    out = [pack.read_text(encoding="utf-8")]
    for path in sorted(folder.glob("*.toml")):
        out += [path.name, path.read_text(encoding="utf-8")]
    return out


@cache
def _compiler_version() -> str:
    """The code that compiles a pack, and the libraries whose data it uses."""
    here = Path(__file__).resolve().parent
    return code_version(("opencc", "pypinyin"), (here / name for name in _COMPILER_SOURCES))


def _learned(
    path: Path, language: str, table: Mapping[str, Any], lines: Lines, after: int
) -> LearnedHold | None:
    """The ``learned_*`` options; the model file is loaded once here so that a
    missing or broken one fails at start-up, naming the file."""
    from filters.content.learned import ModelFileError, load_cached

    enabled = table.get("learned_hold", False)
    if not isinstance(enabled, bool):
        raise lines.error("learned_hold", "content.learned_hold must be true or false", after)
    name = table.get("learned_model", "content-learned")
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise lines.error("learned_model", "content.learned_model must name a model file", after)
    threshold = table.get("learned_threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 < threshold < 1
    ):
        raise lines.error(
            "learned_threshold", "content.learned_threshold must be between 0 and 1", after
        )
    if not enabled:
        return None
    model_path = _model_file(path, name)
    if model_path is None:
        raise lines.error("learned_model", f"no model file {name!r} (config/models/)", after)
    try:
        model = load_cached(str(model_path))
    except ModelFileError as exc:
        raise lines.error("learned_model", str(exc), after) from None
    if language not in model.langs:
        raise lines.error("learned_model", f"model {name!r} has no {language} weights", after)
    return LearnedHold(name, str(model_path), None if threshold is None else float(threshold))


def _model_file(pack: Path, name: str) -> Path | None:
    """``../models/<name>.json.gz`` (or ``.json``) next to the pack file wins
    over the shipped model, as lexicon folders do."""
    shipped = Path(str(resources.files("config"))) / "models"
    for folder in (pack.resolve().parent.parent / "models", shipped):
        for suffix in (".json.gz", ".json"):
            if (candidate := folder / f"{name}{suffix}").is_file():
                return candidate
    return None


@cache
def shipped_content_packs(*, learned: bool = True) -> Mapping[str, PackSpec]:
    """Every shipped pack (``config/policies/*.toml``), by name, read once."""
    folder = resources.files("config") / "policies"
    packs: dict[str, PackSpec] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            with resources.as_file(entry) as path:
                spec = load_content_pack(Path(path), learned=learned)
            packs[spec.name] = spec
    return MappingProxyType(packs)


def _lexicon_folder(pack_path: Path, name: str) -> Path | None:
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    beside = pack_path.resolve().parent.parent / "lexicons" / name
    if beside.is_dir():
        return beside
    with resources.as_file(resources.files("config") / "lexicons" / name) as shipped:
        return Path(shipped) if Path(shipped).is_dir() else None


def _with_pinyin(rule: Rule, readings: Mapping[str, tuple[str, ...]]) -> Rule:
    terms = tuple(Term(t.text, t.prefix, readings.get(t.text, ()), t.forms) for t in rule.terms)
    return replace(rule, terms=terms)


def _with_forms(rules: list[Rule], contexts: list[Context]) -> tuple[list[Rule], list[Context]]:
    """Attach traditional spellings to every Chinese term, context words included."""
    every = [t.text for r in rules for t in (*r.terms, *r.with_terms)]
    forms = traditional_forms([*every, *(t.text for c in contexts for t in c.terms)])

    def attach(terms: tuple[Term, ...]) -> tuple[Term, ...]:
        return tuple(
            Term(t.text, t.prefix, t.pinyin, forms[t.text]) if t.text in forms else t for t in terms
        )

    rules = [replace(r, terms=attach(r.terms), with_terms=attach(r.with_terms)) for r in rules]
    contexts = [replace(c, terms=attach(c.terms)) for c in contexts]
    return rules, contexts


def _terms(raw: Any, lines: Lines, key: str, after: int) -> tuple[Term, ...]:
    return tuple(Term(text, prefix) for text, prefix, _ in parse_terms(raw, lines, key, after))


def _contexts(path: Path) -> list[Context]:
    if not path.exists():
        return []
    data, lines = read_toml(path)
    raw = data.get("contexts", {})
    if set(data) - {"contexts"} or not isinstance(raw, dict):
        raise lines.error(None, "contexts.toml holds only [contexts.NAME] tables")
    out: list[Context] = []
    for name, table in raw.items():
        after = lines.find(f"[contexts.{name}]") or 0
        if not isinstance(table, dict):
            raise lines.error(name, f"contexts.{name} must be a table", after)
        for key in sorted(set(table) - _CONTEXT_KEYS):
            raise lines.error(key, f"contexts.{name}.{key}: unknown key", after)
        scope = table.get("scope", "clause")
        if scope not in SCOPES:
            raise lines.error("scope", f"scope must be one of {', '.join(SCOPES)}", after)
        negated: tuple[str, ...] = ()
        if "negated_by" in table:
            raw_neg = parse_terms(table["negated_by"], lines, "negated_by", after)
            negated = tuple(dict.fromkeys(t for t, _, _ in raw_neg))
        terms = _terms(table.get("terms"), lines, "terms", after)
        out.append(Context(name, terms, Scope(scope), negated))
    return out


def _categories(
    folder: Path, context_names: list[str]
) -> tuple[list[Category], list[Rule], set[str], set[str]]:
    """Categories, rules, and the ids of rules whose terms get pinyin readings
    and of those whose terms get homophone spellings."""
    categories: list[Category] = []
    rules: list[Rule] = []
    spoken: set[str] = set()
    sounding: set[str] = set()
    seen: dict[str, Path] = {}
    for path in iter_files(folder):
        if path.name in _SPECIAL_FILES:
            continue
        data, lines = read_toml(path)
        for key in sorted(set(data) - _CATEGORY_KEYS):
            raise lines.error(key, f"{key}: unknown key (known: {', '.join(_CATEGORY_KEYS)})")
        name, number, title = data.get("category"), data.get("number", 0), data.get("title", "")
        if not isinstance(name, str) or not name.isidentifier():
            raise lines.error("category", "category must be a name (letters, digits, _)")
        if not isinstance(number, int) or not isinstance(title, str):
            raise lines.error("number", "number must be an integer and title a string")
        categories.append(Category(name, number, title))
        raw_rules = data.get("rules")
        if not isinstance(raw_rules, list) or not raw_rules:
            raise lines.error("category", "a category needs at least one [[rules]] table")
        after = 0
        for table in raw_rules:
            after = lines.find("[[rules]]", after + 1) or after
            rule = _rule(table, name, lines, after, context_names)
            if isinstance(table, dict) and table.get("pinyin"):
                spoken.add(rule.id)
            if isinstance(table, dict) and table.get("homophones"):
                sounding.add(rule.id)
            if rule.id in seen:
                raise lines.error(rule.id, f"rule id {rule.id} is also in {seen[rule.id]}", after)
            seen[rule.id] = path
            rules.append(rule)
    if not rules:
        raise ContentPackError(folder, None, "the lexicon folder has no category files")
    return categories, rules, spoken, sounding


def _rule(table: Any, category: str, lines: Lines, after: int, contexts: list[str]) -> Rule:
    if not isinstance(table, dict):
        raise lines.error(None, "[[rules]] must be a table", after)
    for key in sorted(set(table) - _RULE_KEYS):
        raise lines.error(
            key, f"{key}: unknown key (known: {', '.join(sorted(_RULE_KEYS))})", after
        )
    rid, source, action = table.get("id"), table.get("source"), table.get("action")
    if not isinstance(rid, str) or not rid:
        raise lines.error(None, "every rule needs an id", after)
    if not isinstance(source, str) or not source.strip():
        raise lines.error("id", f"rule {rid}: source (the legal basis) is required", after)
    if action not in ("block", "hold"):
        raise lines.error("action", f"rule {rid}: action must be block or hold", after)
    scope = table.get("with_scope", "sentence")
    if scope not in SCOPES:
        raise lines.error("with_scope", f"with_scope must be one of {', '.join(SCOPES)}", after)
    for flag in ("pinyin", "homophones"):
        if not isinstance(table.get(flag, False), bool):
            raise lines.error(flag, f"{flag} must be true or false", after)
    lists = {k: check_names(lines, k, table.get(k), v, after) for k, v in KNOWN_LISTS.items()}
    return Rule(
        id=rid,
        category=category,
        severity=Severity(action),
        source=source.strip(),
        terms=_terms(table.get("terms"), lines, "terms", after),
        with_terms=_terms(table["with"], lines, "with", after) if "with" in table else (),
        with_scope=Scope(scope),
        allow_contexts=check_names(lines, "allow_contexts", table.get("allow_contexts"),
                                   contexts, after),
        allowed_by=lists["allowed_by"],
        escalated_by=lists["escalated_by"],
        roles=lists["roles"],
        purposes=lists["purposes"],
    )  # fmt: skip
