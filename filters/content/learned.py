"""A learned second stage for the content filter: per-language logistic
regression over n-gram features of the normalised text.

It is meant to *hold a message for human review*, never to block it: the
lexicon filter stays the authority on what is forbidden, this model only
flags messages that look like the stops it was trained on (paraphrases the
lexicon has no pattern for).

Features (see ``docs/content-learned.md``):

* ``zh``: character n-grams (``char`` range, default 1-3) of the normalised
  text (:func:`filters.normalize.normalize`) with every digit collapsed to
  ``0``.
* ``en``: lower-cased (normalised, digits collapsed) words; word n-grams
  (``word`` range, 1-3 at most; joined by a space) and character n-grams
  (``char`` range) of the words joined and framed by ``|`` (``|pay|now|``):
  a character gram either contains a ``|`` or lies inside one word (then it
  shares its weight with the one-word feature of the same spelling).

Feature strings are looked up directly in a sparse table (a ``dict`` from
feature string to weight: only features seen in training and kept by the
trainer are stored). That is feature hashing with Python's own hash table
instead of a fixed number of buckets: no collisions, nothing salted stored in
the file, and it is faster in pure Python than hashing every n-gram with a
stable hash (crc32 costs ~50 % more per message). Unknown features weigh 0.

Each feature counts once per occurrence; the sum of weights is multiplied by
``1 / sqrt(number of features)`` when the language's ``scale`` is ``"sqrt"``,
then the bias is added and the logistic function applied.

Pure: :meth:`LearnedModel.load` reads the model file once; :meth:`score`
does no I/O. The model file is written by ``scripts/train_content_model.py``.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise, repeat
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from filters.normalize import normalize

__all__ = [
    "DEFAULT_MODEL_PATH",
    "FORMAT_VERSION",
    "FeatureSpec",
    "LangModel",
    "LearnedModel",
    "ModelFileError",
    "features",
    "load_cached",
]

FORMAT_VERSION: Final = 2  # 2: links, 【signatures】 and the 您/你 register are not features
DEFAULT_MODEL_PATH: Final = (
    Path(__file__).resolve().parents[2] / "config" / "models" / "content-learned.json.gz"
)
LANGS: Final = ("zh", "en")
_SCALES: Final = ("none", "sqrt")

_ZEROS: Final = repeat(0.0)  # default for every unknown feature (never exhausted)
# A word: letters, digits, $ @ * joined by inner ! ' ’ . - (so "pr!son",
# "don't", "lendwise.com" and "e-mail" stay one word).
_WORD: Final = re.compile(r"[\w$@*]+(?:[!'’.\-][\w$@*]+)*")


class ModelFileError(ValueError):
    """The model file is missing, unreadable or not a valid content model."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which n-grams a language uses (inclusive ranges; ``(0, 0)`` = none)."""

    char: tuple[int, int]
    word: tuple[int, int] = (0, 0)
    scale: str = "sqrt"

    def __post_init__(self) -> None:
        for name, (low, high) in (("char", self.char), ("word", self.word)):
            top = 8 if name == "char" else 3
            if not (0 <= low <= high <= top) or (low == 0) != (high == 0):
                raise ValueError(f"bad {name} n-gram range {(low, high)}")
        if self.scale not in _SCALES:
            raise ValueError(f"bad scale {self.scale!r}")


# Parts of a message that are judged by the structural rules, or that only
# say who is writing, not what: links (the link-domain rule), the
# 【signature】 (the signature rules; lender names differ between lenders and
# corpora) and the polite 您 against the plain 你 (a register, which the
# labelled corpora happen to split along their labels: a model that learned it
# would hold every informal reminder).
_LINK: Final = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?:/\S*)?")
# A necessary condition for _LINK to match, found in one quick scan: most
# texts have none, and the full pattern is the costlier part of model_text.
_MAY_LINK: Final = re.compile(r"[\w-]\.[a-z]{2}|https?://|www\.")
_SIGNATURE: Final = re.compile(r"【[^】]{0,40}】")
_REGISTER_AND_DIGITS: Final = str.maketrans({"您": "你", **{str(d): "0" for d in range(1, 10)}})


def model_text(text: str, *, normalized: bool = False) -> str:
    """The text the features are taken from (see ``_LINK`` above);
    ``normalized``: ``text`` is already ``normalize(...).text``."""
    norm = text if normalized else normalize(text).text
    if _MAY_LINK.search(norm):
        norm = _LINK.sub(" ", norm)
    if "【" in norm:
        norm = _SIGNATURE.sub(" ", norm)
    return norm.translate(_REGISTER_AND_DIGITS)


def features(text: str, lang: str, spec: FeatureSpec, *, normalized: bool = False) -> list[str]:
    """The feature strings of ``text`` (with repeats), as training and scoring see them."""
    norm = model_text(text, normalized=normalized)
    grams: list[str] = []
    low, high = spec.char
    if lang == "zh":
        size = len(norm)
        for n in range(low, high + 1) if low else ():
            grams += norm if n == 1 else [norm[i : i + n] for i in range(size - n + 1)]
        return grams
    words = _WORD.findall(norm)
    wlow, whigh = spec.word
    if wlow <= 1 <= whigh:
        grams += words
    if wlow <= 2 <= whigh:
        grams += [f"{a} {b}" for a, b in pairwise(words)]
    if wlow <= 3 <= whigh:
        grams += [f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:], strict=False)]
    if low:
        # Character n-grams of the words joined by "|" (so they are marked as
        # character grams and a gram may span a word boundary).
        joined = "|" + "|".join(words) + "|"
        size = len(joined)
        for n in range(low, high + 1):
            grams += [joined[i : i + n] for i in range(size - n + 1)]
    return grams


@dataclass(frozen=True, slots=True)
class LangModel:
    """One language: features, bias, sparse weights and the chosen threshold."""

    spec: FeatureSpec
    bias: float
    weights: Mapping[str, float]
    threshold: float

    def score(self, text: str, lang: str, *, normalized: bool = False) -> float:
        grams = features(text, lang, self.spec, normalized=normalized)
        if not grams:
            total = 0.0
        else:
            total = sum(map(self.weights.get, grams, _ZEROS))
            if self.spec.scale == "sqrt":
                total /= math.sqrt(len(grams))
        z = self.bias + total
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class LearnedModel:
    """The per-language models of one model file."""

    langs: Mapping[str, LangModel]
    trained_on: Mapping[str, str]
    trained_at: str
    path: str = ""

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MODEL_PATH) -> LearnedModel:
        """Read and validate a model file (``.json`` or gzip-compressed ``.json.gz``)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            data = json.loads(raw.decode("utf-8"))
        except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
            raise ModelFileError(f"content model {path}: cannot read: {exc}") from exc
        try:
            return cls.from_dict(data, path=str(path))
        except ModelFileError as exc:
            raise ModelFileError(f"content model {path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> LearnedModel:
        """Build a model from the decoded JSON; raises :class:`ModelFileError`."""
        if not isinstance(data, dict):
            raise ModelFileError("top level is not an object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelFileError(f"format_version {version!r}, expected {FORMAT_VERSION}")
        trained_on = data.get("trained_on")
        if not isinstance(trained_on, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
            for k, v in trained_on.items()
        ):
            raise ModelFileError("trained_on must map file names to sha256 hex digests")
        trained_at = data.get("trained_at")
        if not isinstance(trained_at, str):
            raise ModelFileError("trained_at must be a string")
        langs_data = data.get("langs")
        if not isinstance(langs_data, dict) or not langs_data:
            raise ModelFileError("langs must be a non-empty object")
        langs: dict[str, LangModel] = {}
        for lang, entry in langs_data.items():
            if lang not in LANGS:
                raise ModelFileError(f"unknown language {lang!r}")
            langs[lang] = _lang_model(lang, entry)
        return cls(MappingProxyType(langs), MappingProxyType(dict(trained_on)), trained_at, path)

    def threshold(self, lang: str) -> float:
        """The hold threshold chosen by cross-validation for ``lang``."""
        return self.langs[lang].threshold

    def score(self, text: str, lang: str, *, normalized: bool = False) -> float:
        """Probability in [0, 1] that ``text`` should be stopped (held for review);
        ``normalized``: ``text`` is ``filters.normalize.normalize(...).text``
        already (the content filter has it).

        Raises ``KeyError`` for a language the model has no weights for.
        """
        return self.langs[lang].score(text, lang, normalized=normalized)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelFileError(f"{what} must be a finite number")
    return float(value)


def _range(value: Any, what: str) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ModelFileError(f"{what} must be a [low, high] pair of integers")
    return (value[0], value[1])


def _lang_model(lang: str, entry: Any) -> LangModel:
    if not isinstance(entry, dict):
        raise ModelFileError(f"langs.{lang} is not an object")
    feats = entry.get("features")
    if not isinstance(feats, dict):
        raise ModelFileError(f"langs.{lang}.features is not an object")
    try:
        spec = FeatureSpec(
            char=_range(feats.get("char"), f"langs.{lang}.features.char"),
            word=_range(feats.get("word", [0, 0]), f"langs.{lang}.features.word"),
            scale=str(feats.get("scale", "sqrt")),
        )
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"langs.{lang}.features: {exc}") from None
    bias = _number(entry.get("bias"), f"langs.{lang}.bias")
    threshold = _number(entry.get("threshold"), f"langs.{lang}.threshold")
    if not 0.0 < threshold < 1.0:
        raise ModelFileError(f"langs.{lang}.threshold must be between 0 and 1")
    weights = entry.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ModelFileError(f"langs.{lang}.weights must be a non-empty object")
    for key, value in weights.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not key
        ):
            raise ModelFileError(f"langs.{lang}.weights[{key!r}] must be a finite number")
    return LangModel(spec, bias, {k: float(v) for k, v in weights.items()}, threshold)


@functools.cache
def load_cached(path: str) -> LearnedModel:
    """One :class:`LearnedModel` per file for the process (packs share it)."""
    return LearnedModel.load(path)
