"""Matching views of one normalised text, each with an offset map back to
the normalised text (and through :class:`~filters.normalize.Normalized` to
the submitted text).

* ``squeeze``: traditional -> simplified (a per-character table, so offsets
  stay one-to-one), then every character that is not a letter or digit is
  dropped: spaces, punctuation, symbols and emoji inside a word no longer
  hide it ("坐*牢", "老 赖", "曝，光").
* ``words``: Latin tokens joined by single spaces, with a leading and a
  trailing space (the matcher scans it without its spaces, and a term's match
  must begin and end at word boundaries: whole words only). Runs of single
  letters (or digits) separated only by separators are joined ("j.a.i.l",
  "k i l l", "1 0" -> "jail", "kill", "10"), and look-alike digits and
  symbols inside a word are folded (``latin_fold``: "k1ll" and
  "kill" meet); chat spellings of whole words are read as the word
  (``SHORT_FORMS``: "ur" and "your" meet).
* ``pinyin``: the squeezed view with the Chinese characters of pinyin-enabled
  terms replaced by their reading, Latin letters kept, everything else a
  blocker; a match must contain at least one letter typed as Latin
  ("zuo牢", "zuolao"), so plain Chinese homophones never match here.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Final

__all__ = [
    "LATIN_FOLD",
    "SHORT_FORMS",
    "TOKEN",
    "Boundaries",
    "View",
    "latin_fold",
    "pinyin_view",
    "squeeze",
    "squeeze_term",
    "words",
]

_KEPT: Final = re.compile(r"[^\W_]+")
# "!" inside a word is a look-alike ("pr!son", "k!ll"), not a break; a single
# letter after it is a spelled-out run ("k!i!l!l"), handled by ``words``
TOKEN: Final = re.compile(r"[a-z0-9@$]+(?:!(?=[a-z0-9@$]{2})[a-z0-9@$]+)*")
_HAS_LETTER: Final = re.compile(r"[a-z]")
_NO_LETTER: Final = "0123456789@$!"  # every token character that is not a letter
_GAP_MAX: Final = 3
BLOCKER: Final = "\x00"

# Look-alikes folded inside Latin words (both in text and in patterns).
LATIN_FOLD: Final[Mapping[int, str]] = str.maketrans(
    {"0": "o", "1": "i", "l": "i", "!": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s",
     "7": "t"}
)  # fmt: skip


# Chat spellings of whole words, read as the word in text and in patterns
# alike ("call ur boss", "we know where u live").
SHORT_FORMS: Final[Mapping[str, str]] = {"u": "you", "ur": "your", "yr": "your", "abt": "about"}
# Two tokens of one character in a row ("k i l l", "1 0"): maybe spelled out.
_SPELLED: Final = re.compile(r"(?<![^ ])[^ ] [^ ](?![^ ])")
# A token that ``words`` reads otherwise than by folding it: a chat spelling,
# or one without a letter ("10", "$5"), which is never folded.
_READ_APART: Final = re.compile(
    rf"(?<![^ ])(?:[{re.escape(_NO_LETTER)}]+|{'|'.join(map(re.escape, SHORT_FORMS))})(?![^ ])"
)


def latin_fold(word: str) -> str:
    return word.translate(LATIN_FOLD) if _HAS_LETTER.search(word) else word


class View:
    """A derived text; ``origin[i]`` is the normalised index behind ``text[i]``
    (for a space the word view adds after a word: the index after the word;
    matches never start or end on one). ``at(i)`` is ``origin[i]``; a view
    may answer it from a few run boundaries (``locate``) and build the whole
    ``origin`` only when it is asked for: most texts have no hit, or a few, in
    a view, and a tuple of every index costs more than the scan."""

    __slots__ = ("_build", "_locate", "_origin", "text", "word_span")

    def __init__(
        self,
        text: str,
        origin: tuple[int, ...] | None = None,
        build: Callable[[], tuple[int, ...]] | None = None,
        locate: Callable[[int], int] | None = None,
        word_span: Callable[[int, int, int], tuple[int, int]] | None = None,
    ) -> None:
        if origin is None and build is None:
            raise ValueError("a view needs its origin or a way to build it")
        self.text = text
        self._origin = origin
        self._build = build
        self._locate = locate
        # the word view of ordinary text: ``word_span(first, last, offset)`` is
        # the normalised span from the start of word ``first`` to the letter
        # ``offset`` of word ``last`` (what ``at`` gives, by word numbers)
        self.word_span = word_span

    @property
    def origin(self) -> tuple[int, ...]:
        if self._origin is None:
            assert self._build is not None  # noqa: S101 - __init__ guarantees it
            self._origin = self._build()
            self._build = None
        return self._origin

    def at(self, index: int) -> int:
        """``origin[index]``, without building ``origin`` when the view can locate."""
        if self._locate is not None:
            return self._locate(index)
        return self.origin[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, View):
            return NotImplemented
        return self.text == other.text and self.origin == other.origin

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"View(text={self.text!r}, origin={self.origin!r})"


def squeeze(normalized: str, t2s: Mapping[int, str]) -> View:
    simplified = normalized.translate(t2s) if t2s else normalized
    view_starts: list[int] = []  # where each kept run starts in the view,
    starts: list[int] = []  # and in the normalised text (found when first asked)

    def origin() -> tuple[int, ...]:
        out: list[int] = []
        for m in _KEPT.finditer(simplified):
            out += range(m.start(), m.end())
        return tuple(out)

    def locate(index: int) -> int:
        if not starts:
            at = 0
            for m in _KEPT.finditer(simplified):
                view_starts.append(at)
                starts.append(m.start())
                at += m.end() - m.start()
        j = bisect_right(view_starts, index) - 1
        return starts[j] + index - view_starts[j]

    return View("".join(_KEPT.findall(simplified)), build=origin, locate=locate)


def squeeze_term(term: str, t2s: Mapping[int, str]) -> str:
    """The key of a pattern in the squeezed view (the term is already normalised)."""
    return "".join(_KEPT.findall(term.translate(t2s) if t2s else term))


def words(normalized: str) -> View | None:
    """The word view, or None when the text has no Latin letter at all."""
    if not _HAS_LETTER.search(normalized):
        return None
    found = TOKEN.findall(normalized)
    if not found:
        return View(" ", (0,))
    joined = " ".join(found)
    if _SPELLED.search(joined):  # letters may be spelled out
        return _spelled_view(_spelled_runs(normalized, _located(normalized, found)))
    # the common text: every token is a word of its own, its characters consecutive
    text = f" {_read(joined)} "
    located: list[tuple[str, int]] = []  # (token, normalised start), found when first asked
    read: list[int] = []  # the length of each word in the view
    word_starts: list[int] = []  # view index of each word's first letter

    def tokens() -> list[tuple[str, int]]:
        if not located:
            located.extend(_located(normalized, found))
            read.extend(len(SHORT_FORMS.get(tok, tok)) for tok in found)
            word_starts.extend(accumulate([size + 1 for size in read[:-1]], initial=1))
        return located

    def origin() -> tuple[int, ...]:
        at = tokens()
        out = [at[0][1]]
        for (tok, start), size in zip(at, read, strict=True):
            end = start + len(tok)
            if size == len(tok):
                out += range(start, end + 1)  # and the space after it: the index after it
            else:  # a chat spelling: every letter of the long form points into the short one
                out += [start] * (size - 1)
                out += (end - 1, end)
        return tuple(out)

    def locate(index: int) -> int:
        at = tokens()
        if index == 0:
            return at[0][1]
        j = bisect_right(word_starts, index) - 1
        return _letter_at(at[j], read[j], index - word_starts[j])

    def word_span(first: int, last: int, offset: int) -> tuple[int, int]:
        at = tokens()
        return at[first][1], _letter_at(at[last], read[last], offset) + 1

    return View(text, build=origin, locate=locate, word_span=word_span)


def _letter_at(token: tuple[str, int], size: int, offset: int) -> int:
    """The normalised index of letter ``offset`` of a word the view reads as
    ``size`` letters (``offset == size``: the space after it)."""
    tok, start = token
    if size == len(tok) or offset >= size:  # a letter of the word, or the space after it
        return start + len(tok) if offset >= size else start + offset
    # a chat spelling: every letter of the long form points into the short one
    return start if offset < size - 1 else start + len(tok) - 1


def _read(joined: str) -> str:
    """The tokens (joined by single spaces) as the word view reads them:
    folded, but a chat spelling as its word and a token without a letter
    ("10", "$5") as it is."""
    if _READ_APART.search(joined) is None:
        return joined.translate(LATIN_FOLD)
    pieces: list[str] = []
    done = 0
    for m in _READ_APART.finditer(joined):
        pieces.append(joined[done : m.start()].translate(LATIN_FOLD))
        pieces.append(SHORT_FORMS.get(m.group(), m.group()))
        done = m.end()
    pieces.append(joined[done:].translate(LATIN_FOLD))
    return "".join(pieces)


def _located(normalized: str, found: list[str]) -> list[tuple[str, int]]:
    """``found`` (``TOKEN.findall(normalized)``) with the start of each: the
    text between two tokens holds no token character, so each is the first
    occurrence of its string after the one before it."""
    out: list[tuple[str, int]] = []
    at = 0
    for tok in found:
        at = normalized.index(tok, at)
        out.append((tok, at))
        at += len(tok)
    return out


def _spelled_view(runs: list[tuple[str, list[int]]]) -> View:
    parts = [" "]
    origin = [runs[0][1][0]]
    for text, offsets in runs:
        long = SHORT_FORMS.get(text)
        if long is None:
            parts.append(latin_fold(text))
            origin.extend(offsets)
        else:  # every letter of the long form points into the short one
            parts.append(long)
            origin.extend([offsets[0]] * (len(long) - 1))
            origin.append(offsets[-1])
        parts.append(" ")
        origin.append(offsets[-1] + 1)
    return View("".join(parts), tuple(origin))


def _spelled_runs(normalized: str, tokens: list[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    """Tokens with runs of spelled-out letters joined ("k i l l" -> "kill"):
    ``(text, offsets)``."""
    runs: list[_Run] = []
    for i, (tok, start) in enumerate(tokens):
        last = runs[-1] if runs else None
        if _letter(tok) and last is not None and last.spelled:
            kind = _gap_kind(normalized[last.end : start])
            if kind is not None and last.gap in (None, kind) and _joins(last.text, tok, kind):
                # "a f.r.a.u.d": a space never joins a letter that starts a dotted run
                ahead = tokens[i + 1] if i + 1 < len(tokens) else None
                next_kind = (
                    _gap_kind(normalized[start + 1 : ahead[1]])
                    if ahead is not None and _letter(ahead[0])
                    else None
                )
                if not (kind == "space" and next_kind == "mark"):
                    last.add(tok, start, kind)
                    continue
        runs.append(_Run(tok, list(range(start, start + len(tok))), _letter(tok)))
    return [(r.text, r.offsets) for r in runs]


def _letter(tok: str) -> bool:
    """A single letter or digit: "k i l l" and "1 0" are spelled out."""
    return len(tok) == 1 and tok.isalnum()


def _joins(run: str, tok: str, gap: str) -> bool:
    """Across spaces, letters join letters and digits join digits ("msg 1 0"),
    and a letter may follow digits ("4 t h"), but "u 2" stays two words;
    marks between single characters ("4|t|h") join any of them."""
    return gap == "mark" or run[-1].isdigit() == tok.isdigit() or run.isdigit()


def _gap_kind(gap: str) -> str | None:
    """``space`` (any whitespace in it: a word break for dotted runs) or
    ``mark`` for a short separator between spelled letters."""
    if not 0 < len(gap) <= _GAP_MAX or _KEPT.search(gap):
        return None
    return "space" if any(ch.isspace() for ch in gap) else "mark"


class _Run:
    """A Latin token, or single letters spelled out with one kind of separator
    ("j.a.i.l", "k i l l"); a dotted run ends at a space (a word break)."""

    __slots__ = ("gap", "offsets", "spelled", "text")

    def __init__(self, text: str, offsets: list[int], spelled: bool) -> None:
        self.text = text
        self.offsets = offsets
        self.spelled = spelled
        self.gap: str | None = None

    @property
    def end(self) -> int:
        return self.offsets[-1] + 1

    def add(self, letter: str, at: int, gap: str) -> None:
        self.text += letter
        self.offsets.append(at)
        self.gap = gap


def pinyin_view(squeezed: View, syllables: Mapping[str, str]) -> tuple[View, tuple[int, ...]]:
    """The pinyin view and the sorted view positions that came from Latin letters."""
    parts: list[str] = []
    origin: list[int] = []
    latin: list[int] = []
    pos = 0
    for ch, norm_index in zip(squeezed.text, squeezed.origin, strict=True):
        if "a" <= ch <= "z":
            parts.append(ch)
            origin.append(norm_index)
            latin.append(pos)
            pos += 1
            continue
        piece = syllables.get(ch, BLOCKER)
        parts.append(piece)
        origin.extend([norm_index] * len(piece))
        pos += len(piece)
    return View("".join(parts), tuple(origin)), tuple(latin)


class Boundaries:
    """Clause and sentence numbers of positions in the normalised text."""

    __slots__ = ("_clauses", "_sentences")

    # 、 lists items of one clause ("诉讼、仲裁途径"), so it does not end one; an
    # ASCII dot between two Han characters is a separator put inside a word
    # to evade the filter ("征.信", "消.除"), not the end of a clause or sentence
    _MARKS: Final = re.compile(r"[,，。!！?？;；:：\n.]")
    _CLAUSE_ONLY: Final = frozenset(",，:：")
    _INNER_DOT: Final = re.compile(r"(?<=[\u3400-\u9fff])\.[\u3400-\u9fff]")
    # a dot after a short abbreviation ("Case No. 26", "Mr. Lee") ends no sentence
    _SENTENCE_DOT: Final = re.compile(
        r"\.(?!\d)(?<!\bno\.)(?<!\bmr\.)(?<!\bms\.)(?<!\bmrs\.)(?<!\bdr\.)(?<!\bst\.)"
        r"(?<!\bjr\.)(?<!\bvs\.)(?<!\bapt\.)(?<!\bacct\.)(?<!\bref\.)"
    )

    def __init__(self, normalized: str) -> None:
        clauses: list[int] = []
        sentences: list[int] = []
        for m in self._MARKS.finditer(normalized):
            i = m.start()
            mark = m.group()
            if mark == ".":
                if self._INNER_DOT.match(normalized, i):
                    continue
                clauses.append(i)
                if self._SENTENCE_DOT.match(normalized, i):
                    sentences.append(i)
            else:
                clauses.append(i)
                if mark not in self._CLAUSE_ONLY:
                    sentences.append(i)
        self._clauses = clauses
        self._sentences = sentences

    def clause(self, index: int) -> int:
        return bisect_right(self._clauses, index)

    def sentence(self, index: int) -> int:
        return bisect_right(self._sentences, index)


def has_latin_between(latin: tuple[int, ...], start: int, end: int) -> bool:
    """True when a view position in ``[start, end)`` came from a Latin letter."""
    i = bisect_right(latin, start - 1)
    return i < len(latin) and latin[i] < end
