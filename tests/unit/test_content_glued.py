"""Phrases whose words a text runs together ("k i l l y o u" is one word,
"killyou"): the glued view (filters/content/matcher.py, keys.py).

Every Latin term has its key in the glued view (the word view without its
spaces), one per phrase instead of one per way of gluing its words. The
property test below compares the scan with the plain definition: a term
matches when it, or some gluing of its neighbouring words, read as the word
view reads text, occurs in the word view."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.content_cache import ENV
from config.content_model import PackSpec, Rule, Severity, Term
from filters.content.keys import MAX_GLUED_WORDS, glued_keys
from filters.content.matcher import Lexicon
from filters.content.views import SHORT_FORMS, TOKEN, latin_fold, words

VOCAB = ["kill", "you", "u", "ur", "your", "be", "at", "beat", "3", "a", "m", "am", "$",
         "don't", "pay", "now", "loan", "jail", "i", "call"]  # fmt: skip


def _rule(i: int, phrase: str, prefix: bool) -> Rule:
    return Rule(f"t.r{i}", "violence", Severity.BLOCK, "test", (Term(phrase, prefix),))


def _lexicon(phrases: list[tuple[str, bool]]) -> Lexicon:
    rules = tuple(_rule(i, p, prefix) for i, (p, prefix) in enumerate(phrases))
    return Lexicon(PackSpec("t", "en", rules))


def word_key(term: str, *, prefix: bool) -> str:
    """The plain definition of a term in the word view: its words as the view
    reads text, " w1 w2 " (a prefix pattern: " w1 w2")."""
    body = " ".join(latin_fold(SHORT_FORMS.get(w, w)) for w in TOKEN.findall(term))
    return f" {body}" if prefix else f" {body} "


def _gluings(phrase: str) -> set[str]:
    """Every way of running neighbouring words of ``phrase`` together."""
    parts = phrase.split()
    out = set()
    for mask in range(1 << (len(parts) - 1)):
        out.add(
            parts[0] + "".join((" " if mask >> i & 1 else "") + w for i, w in enumerate(parts[1:]))
        )
    return out


def _reference(phrases: list[tuple[str, bool]], text: str) -> set[int]:
    view = words(text)
    if view is None:
        return set()
    found = set()
    for i, (phrase, prefix) in enumerate(phrases):
        variants = _gluings(phrase) if len(phrase.split()) <= MAX_GLUED_WORDS else {phrase}
        if any(word_key(v, prefix=prefix) in view.text for v in variants):
            found.add(i)
    return found


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "off")


def _scan(lexicon: Lexicon, text: str) -> set[int]:
    return {h.entry.ref for h in lexicon.scan(text.lower())}


def test_spelled_out_phrase_matches_however_it_is_glued() -> None:
    phrases = [("kill you", False), ("we know where u live", False)]
    lexicon = _lexicon(phrases)
    texts = [
        "we will k i l l y o u", "we will kill y o u", "we will k.i.l.l you", "we will killyou",
        "w e k n o w where u live", "we know w h e r e u live",
    ]  # fmt: skip
    for text in texts:
        assert _scan(lexicon, text), text
        assert _scan(lexicon, text) == _reference(phrases, text)


def test_a_glued_match_needs_the_phrase_word_ends() -> None:
    # "b eat" has a word end (after "b") that "be at" does not have
    lexicon = _lexicon([("be at", False)])
    assert _scan(lexicon, "we will be at your door") == {0}
    assert _scan(lexicon, "we will beat you") == {0}  # "be"+"at" glued: as before
    assert _scan(lexicon, "we will b eat you") == set()
    assert _scan(lexicon, "we will beaten you") == set()  # not at a word end


def test_a_token_without_letters_is_folded_only_inside_a_word() -> None:
    # "$" alone is "$"; glued to letters it is folded to "s"
    lexicon = _lexicon([("will be $", True)])
    assert _scan(lexicon, "it will be $50") == {0}
    assert _scan(lexicon, "it willbe $50") == {0}
    assert _scan(lexicon, "it will be suspended") == set()
    assert _scan(lexicon, "it willbe suspended") == set()


def test_one_key_for_an_ordinary_phrase() -> None:
    keys = glued_keys("we will find you at work", prefix=False, fold=latin_fold)
    assert len(keys) == 1
    key, shape = keys[0]
    assert key == latin_fold("wewillfindyouatwork")
    assert shape.ends == {2, 6, 10, 13, 15} and shape.splits is None and not shape.fixed
    ((word, alone),) = glued_keys("jail", prefix=True, fold=latin_fold)
    assert word == "jaii" and not alone.ends and alone.prefix  # a word: no end inside


def test_a_long_phrase_matches_only_as_written() -> None:
    phrase = "we will tell your boss and your family and your friends today"
    ((_, shape),) = glued_keys(phrase, prefix=False, fold=latin_fold)
    assert len(phrase.split()) > MAX_GLUED_WORDS and shape.fixed == shape.ends
    lexicon = _lexicon([(phrase, False)])
    assert _scan(lexicon, f"ok {phrase}") == {0}
    assert _scan(lexicon, f"ok {phrase.replace('your boss', 'yourboss')}") == set()


def test_a_term_written_as_the_text_writes_it_is_reported_first() -> None:
    lexicon = _lexicon([("cash app", False), ("cashapp", False)])
    assert [h.entry.term for h in lexicon.scan("send it on cashapp")] == ["cashapp", "cash app"]
    assert [h.entry.term for h in lexicon.scan("send it on cash app")] == ["cash app"]


_PHRASE = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=4).map(" ".join)
_SPELL = st.sampled_from(["plain", "spaces", "dots", "glued-next"])


@st.composite
def _text(draw: st.DrawFn) -> str:
    chosen = draw(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=6))
    out = ""
    for word in chosen:
        how = draw(_SPELL)
        if how == "spaces":
            piece = " ".join(word)
        elif how == "dots":
            piece = ".".join(word)
        else:
            piece = word
        out += piece if (how == "glued-next" and out) else (" " + piece if out else piece)
    return out


@settings(max_examples=300, deadline=None)
@given(phrases=st.lists(st.tuples(_PHRASE, st.booleans()), min_size=1, max_size=4), text=_text())
def test_scan_equals_every_gluing(phrases: list[tuple[str, bool]], text: str) -> None:
    lexicon = _lexicon(phrases)
    assert _scan(lexicon, text) == _reference(phrases, text)


def test_shipped_us_pack_keeps_few_glued_keys() -> None:
    from gateway.stages.content import shipped_filters

    lexicon = shipped_filters()["us-fdcpa"].lexicon
    spec = shipped_filters()["us-fdcpa"].spec
    assert lexicon.keys < 3 * spec.term_count  # one key per gluing was ~20 per term
