"""JSON data for the compiled parts of a content pack, and back, for the
pack cache (:mod:`config.content_cache`: JSON, never pickle).

Compiling a pack (parsing its lexicon, pinyin readings, traditional and
homophone spellings of some 250,000 terms) costs every process seconds;
reading the result back costs a fraction of that. The codec follows the
dataclasses of :mod:`config.content_model` by their fields and type hints,
so a field added there is stored without code here; a ``Term`` (most of the
data) is a plain list ``[text, prefix, pinyin, forms]``. Data of the wrong
shape raises ValueError, TypeError or KeyError (the cache then recompiles);
terms are not checked part by part (the cache's digest line vouches for the
bytes, and the cache key for the code that wrote them).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from config.content_model import Category, Context, Rule, Structure, Term

__all__ = ["Compiled", "decode_compiled", "encode_compiled"]

# contexts, categories, rules, structure, syllables (one reading per character)
Compiled = tuple[
    tuple[Context, ...], tuple[Category, ...], tuple[Rule, ...], Structure, Mapping[str, str]
]


def encode_compiled(compiled: Compiled) -> dict[str, Any]:
    contexts, categories, rules, structure, syllables = compiled
    return {
        "contexts": [_encode(c) for c in contexts],
        "categories": [_encode(c) for c in categories],
        "rules": [_encode(r) for r in rules],
        "structure": _encode(structure),
        "syllables": dict(syllables),
    }


def decode_compiled(data: Any) -> Compiled:
    syllables = data["syllables"]
    if not isinstance(syllables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in syllables.items()
    ):
        raise TypeError("syllables must map characters to readings")
    return (
        tuple(_decode(Context, c) for c in data["contexts"]),
        tuple(_decode(Category, c) for c in data["categories"]),
        tuple(_decode(Rule, r) for r in data["rules"]),
        _decode(Structure, data["structure"]),
        syllables,
    )


def _encode(value: Any) -> Any:
    if type(value) is Term:
        return [value.text, value.prefix, list(value.pinyin), list(value.forms)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list | frozenset):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in the pack cache")


def _term(data: Any) -> Term:
    """A term, unchecked beyond its four parts: the cache's digest vouches that
    the data is what :func:`_encode` wrote (most of a pack's data are terms)."""
    text, prefix, pinyin, forms = data
    return Term(text, prefix, tuple(pinyin), tuple(forms))


def _strings(data: Any) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise TypeError("expected a list of strings")
    return tuple(data)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: Any) -> Any:
    if tp is Term:
        return _term(data)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if data is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _decode(inner, data)
    if origin is tuple:
        if not isinstance(data, list):
            raise TypeError(f"expected a list for {tp}")
        if args == (str, Ellipsis):
            return _strings(data)
        if args[0] is Term:
            return tuple(map(_term, data))
        return tuple(_decode(args[0], v) for v in data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {tp.__name__}")
        hints = _hints(tp)
        return tp(**{f.name: _decode(hints[f.name], data[f.name]) for f in dataclasses.fields(tp)})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is bool or tp is str:
        if type(data) is not tp:
            raise TypeError(f"expected {tp.__name__}")
        return data
    if tp is int or tp is float:
        if type(data) is bool or not isinstance(data, int | float):
            raise TypeError(f"expected {tp.__name__}")
        return tp(data)
    raise TypeError(f"no decoder for {tp}")
