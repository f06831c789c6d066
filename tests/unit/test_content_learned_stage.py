"""The learned second stage inside the content filter (pack option
``learned_hold``): what the lexicon lets through but the model scores at or
above the threshold is held for review under ``learned.hold``; a lexicon stop
wins; a pack without the option never consults the model; bad options and
model files fail at load, naming the pack file and line.

The texts here are written for this test, not taken from any corpus."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from config.content import load_content_pack
from config.content_lexicon import ContentPackError
from filters.content.engine import ContentFilter
from filters.content.result import HOLD, MessageContext
from tests.unit.test_content_config import copy_pack, error_of

CTX = MessageContext(purpose="overdue_notice", signatures=("华信贷",))
SNEER = "【华信贷】你这种人我们见多了，别以为躲得掉，钱不还你就等着吧。"
NEUTRAL = "【华信贷】您好，您本期账单1200元将于6月5日到期，请按时还款。"
THREAT = "【华信贷】你欠的钱今天必须还上，不然有你好看的，别怪我们没提醒。"


def _filter(tmp_path: Path, options: str) -> ContentFilter:
    pack, _ = copy_pack(tmp_path)
    text = pack.read_text(encoding="utf-8").replace("learned_hold = true\n", "")
    pack.write_text(text.replace("[content]\n", f"[content]\n{options}"), encoding="utf-8")
    return ContentFilter(load_content_pack(pack))


def test_shipped_packs_hold_what_the_model_flags(cn: ContentFilter) -> None:
    assert cn.spec.learned is not None and cn.learned is not None
    finding = list(cn.check(SNEER, CTX).findings)
    assert [(f.rule, f.category, f.action, f.start) for f in finding] == [
        ("learned.hold", "learned", HOLD, None)
    ]
    assert float(finding[0].term) >= cn.learned[1]
    assert cn.check(NEUTRAL, CTX).findings == ()


def test_a_lexicon_stop_wins_and_the_model_adds_nothing(cn: ContentFilter) -> None:
    result = cn.check(THREAT, CTX)
    assert result.decision == "block"
    assert all(f.rule != "learned.hold" for f in result.findings)


def test_without_the_option_the_model_is_not_consulted(tmp_path: Path) -> None:
    off = _filter(tmp_path, "learned_hold = false\n")
    assert off.learned is None and off.spec.learned is None
    assert off.check(SNEER, CTX).findings == ()


def test_a_threshold_in_the_pack_overrides_the_model_s(tmp_path: Path) -> None:
    strict = _filter(tmp_path, "learned_hold = true\nlearned_threshold = 0.999999999\n")
    assert strict.learned is not None and strict.learned[1] == 0.999999999
    assert strict.check(SNEER, CTX).findings == ()


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ('learned_hold = "yes"\n', "content.learned_hold must be true or false"),
        ("learned_hold = true\nlearned_threshold = 1.5\n", "learned_threshold must be between"),
        ('learned_hold = true\nlearned_model = "../x"\n', "learned_model must name a model"),
        ('learned_hold = true\nlearned_model = "nothing-here"\n', "no model file 'nothing-here'"),
    ],
)
def test_bad_options_name_the_pack_file(tmp_path: Path, options: str, reason: str) -> None:
    pack, _ = copy_pack(tmp_path)
    text = pack.read_text(encoding="utf-8").replace("learned_hold = true\n", "")
    pack.write_text(text.replace("[content]\n", f"[content]\n{options}"), encoding="utf-8")
    err = error_of(pack)
    assert err.file == str(pack) and reason in str(err)


def test_a_broken_model_beside_the_pack_fails_at_load(tmp_path: Path) -> None:
    pack, _ = copy_pack(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.json.gz").write_bytes(
        gzip.compress(json.dumps({"format_version": 99}).encode())
    )
    text = pack.read_text(encoding="utf-8").replace("learned_hold = true\n", "")
    pack.write_text(
        text.replace("[content]\n", '[content]\nlearned_hold = true\nlearned_model = "mine"\n'),
        encoding="utf-8",
    )
    with pytest.raises(ContentPackError) as info:
        load_content_pack(pack)
    assert "mine.json.gz" in str(info.value) and "format_version" in str(info.value)


def test_what_the_model_does_not_judge(cn: ContentFilter, us: ContentFilter) -> None:
    """A terse reminder, a text in the other pack's language, a configured
    template and a message to a contact are left to the lexicon alone."""
    assert cn.learned is not None and us.learned is not None
    terse = "【华信贷】请于今日还款。"
    assert cn.check(terse, CTX).findings == ()
    english = "Pay today or else you will regret it, we know how to find people like you."
    assert all(f.rule != "learned.hold" for f in cn.check(english, CTX).findings)
    assert all(f.rule != "learned.hold" for f in us.check(SNEER, CTX).findings)
    legal = "【华信贷】你这种人我们见多了，如持续逾期，我司将依法向有管辖权的人民法院提起诉讼。"
    attested = MessageContext(
        purpose="overdue_notice", signatures=("华信贷",),
        attests=frozenset({"legal_action_authorized"}),
    )  # fmt: skip
    assert all(f.rule != "learned.hold" for f in cn.check(legal, attested).findings)
    templated = MessageContext(purpose="overdue_notice", signatures=("华信贷",), templated=True)
    assert cn.check(SNEER, templated).findings == ()  # the operator's wording, not free text
    to_contact = MessageContext(purpose="service", role="contact", signatures=("华信贷",))
    assert cn.check(SNEER, CTX).decision == HOLD  # the same text to the borrower is held
    assert cn.check(SNEER, to_contact).findings == ()  # never trained on contacts


def test_the_polite_and_the_plain_you_score_alike(cn: ContentFilter) -> None:
    """The labelled corpora split 您 and 你 along their labels; the model
    must not learn that split (it would hold every informal reminder)."""
    assert cn.learned is not None
    model = cn.learned[0]
    polite = "【华信贷】您好，您本期账单1200元将于6月5日到期，请按时还款，谢谢。"
    plain = polite.replace("您", "你")
    assert model.score(polite, "zh") == model.score(plain, "zh") < cn.learned[1]
