"""Pinyin spellings of a term whose character the per-character table reads
otherwise (a polyphone): the pinyin view reads a text's Chinese characters
by the table, so the term is keyed by that reading too, and a new term that
shifts the majority reading of a character cannot silently break it."""

from __future__ import annotations

import pytest

from config.content_cache import ENV
from config.content_lexicon import pinyin_readings
from config.content_model import PackSpec, Rule, Severity, Term
from filters.content.matcher import Lexicon


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "off")


def test_a_term_gets_the_tables_reading_of_its_polyphone() -> None:
    readings, table = pinyin_readings(["银行卡", "行为", "行动", "行政"])
    assert table["行"] == "xing"  # three terms against one
    assert readings["银行卡"] == ("yinhangka", "yinxingka")
    assert readings["行为"] == ("xingwei",)  # the table agrees: one reading


def test_either_reading_matches_when_letters_are_typed() -> None:
    readings, table = pinyin_readings(["银行卡", "行为", "行动", "行政"])
    term = Term("银行卡", pinyin=readings["银行卡"])
    rule = Rule("t.card", "deception", Severity.BLOCK, "test", (term,))
    lexicon = Lexicon(PackSpec("t", "zh", (rule,), syllables=table))
    assert {h.entry.ref for h in lexicon.scan("把yin行卡给我")} == {0}  # 行 read as xing
    assert {h.entry.ref for h in lexicon.scan("把银hang卡给我")} == {0}  # typed as it is said
