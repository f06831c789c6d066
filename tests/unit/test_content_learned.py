"""Tests for filters.content.learned (the learned second stage, hold-only).

They load the committed model file; the messages below were written for
these tests and are not in any corpus.
"""

from __future__ import annotations

import builtins
import gzip
import json
import math
import socket
from pathlib import Path
from typing import Any

import pytest

from filters.content.learned import (
    DEFAULT_MODEL_PATH,
    FORMAT_VERSION,
    FeatureSpec,
    LearnedModel,
    ModelFileError,
    features,
)

ABUSIVE = {
    "zh": [
        "【速借宝】你再装死不还钱，明天我们就去你老家找你父母，让全村都知道你是个老赖！",
        "【速借宝】今天下午五点前不还清，我们就把你欠钱的事发给你通讯录里所有人，让你社死。",
        "【速借宝】欠钱不还你就等着坐牢吧，警察马上上门抓你，你的孩子也别想上学了。",
    ],
    "en": [
        "Pay the full balance tonight or we will call your boss and tell everyone at your job"
        " that you are a deadbeat who steals money.",
        "You worthless loser, if you do not pay today the sheriff will arrest you and you will"
        " go to jail this week.",
        "We know where your kids go to school. Pay now or we will come to your house tonight.",
    ],
}
NEUTRAL = {
    "zh": [
        "【速借宝】您好，您本期账单应还1,200.00元，还款日为12月15日，请按时还款。回T退订",
        "【速借宝】您的验证码为583920，5分钟内有效，请勿告诉他人。",
        "【速借宝】您的还款已到账，感谢您的支持，本期账单已结清。回T退订",
    ],
    "en": [
        "Summit Credit: your payment of $150.00 was received on Dec 3. Thank you."
        " Reply STOP to opt out.",
        "Summit Credit: your code is 482913. It expires in 10 minutes.",
        "Summit Credit: a reminder that your installment of $85.20 is due on Dec 12."
        " Reply STOP to opt out.",
    ],
}


@pytest.fixture(scope="module")
def model() -> LearnedModel:
    return LearnedModel.load()


def _raw() -> dict[str, Any]:
    data = json.loads(gzip.decompress(DEFAULT_MODEL_PATH.read_bytes()))
    assert isinstance(data, dict)
    return data


def test_committed_model_loads(model: LearnedModel) -> None:
    assert set(model.langs) == {"zh", "en"}
    for lang in ("zh", "en"):
        assert 0.0 < model.threshold(lang) < 1.0
        assert model.langs[lang].weights
    assert model.trained_on and model.trained_at
    assert DEFAULT_MODEL_PATH.stat().st_size <= 2_000_000


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_abusive_messages_score_above_threshold(model: LearnedModel, lang: str) -> None:
    for text in ABUSIVE[lang]:
        assert model.score(text, lang) >= model.threshold(lang), text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_neutral_messages_score_below_threshold(model: LearnedModel, lang: str) -> None:
    for text in NEUTRAL[lang]:
        assert model.score(text, lang) < model.threshold(lang), text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_scores_are_probabilities_and_deterministic(model: LearnedModel, lang: str) -> None:
    texts = [*ABUSIVE[lang], *NEUTRAL[lang], "", " ", "\u200b", "x" * 2000, "坐牢" * 300]
    for text in texts:
        first = model.score(text, lang)
        assert 0.0 <= first <= 1.0
        assert math.isfinite(first)
        assert model.score(text, lang) == first


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_score_matches_reference_formula(model: LearnedModel, lang: str) -> None:
    entry = model.langs[lang]
    for text in [*ABUSIVE[lang], *NEUTRAL[lang]]:
        grams = features(text, lang, entry.spec)
        total = sum(entry.weights.get(g, 0.0) for g in grams)
        if entry.spec.scale == "sqrt":
            total /= math.sqrt(len(grams))
        expected = 1.0 / (1.0 + math.exp(-(entry.bias + total)))
        assert model.score(text, lang) == pytest.approx(expected, rel=1e-9)


def test_unknown_language_raises(model: LearnedModel) -> None:
    with pytest.raises(KeyError):
        model.score("hello", "fr")


def test_scoring_does_no_io(model: LearnedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("I/O during scoring")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "read_text", refuse)
    monkeypatch.setattr(socket, "socket", refuse)
    for lang in ("zh", "en"):
        for text in [*ABUSIVE[lang], *NEUTRAL[lang]]:
            model.score(text, lang)


def test_features_normalise_and_collapse_digits() -> None:
    zh = features("逾期１２天", "zh", FeatureSpec(char=(1, 2)))
    assert "00" in zh and "期0" in zh and "１" not in zh
    en = features("PAY NOW or pr!son, $1,250", "en", FeatureSpec(char=(4, 4), word=(1, 2)))
    assert "pr!son" in en and "pay now" in en and "|pay" in en
    assert "PAY" not in en


# -- file validation -----------------------------------------------------------


def _write(tmp_path: Path, data: Any, name: str = "model.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_gzip_and_plain_json_load_the_same(tmp_path: Path, model: LearnedModel) -> None:
    path = _write(tmp_path, _raw())
    plain = LearnedModel.load(path)
    text = ABUSIVE["zh"][0]
    assert plain.score(text, "zh") == model.score(text, "zh")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ModelFileError, match=r"nope\.json"):
        LearnedModel.load(missing)


def test_garbage_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.json.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ModelFileError, match=r"garbage\.json\.gz"):
        LearnedModel.load(path)
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"bad\.json.*cannot read"):
        LearnedModel.load(path)


def _broken(change: str) -> dict[str, Any]:
    data = _raw()
    zh = data["langs"]["zh"]
    if change == "version":
        data["format_version"] = FORMAT_VERSION + 1
    elif change == "top":
        return [data]  # type: ignore[return-value]
    elif change == "fingerprint":
        data["trained_on"] = {"content.jsonl": "abc"}
    elif change == "lang":
        data["langs"]["fr"] = zh
    elif change == "no_langs":
        data["langs"] = {}
    elif change == "bias":
        zh["bias"] = "high"
    elif change == "threshold":
        zh["threshold"] = 1.5
    elif change == "weights":
        zh["weights"] = {"坐牢": float("nan")}
    elif change == "empty_weights":
        zh["weights"] = {}
    elif change == "range":
        zh["features"]["char"] = [3, 1]
    elif change == "scale":
        zh["features"]["scale"] = "log"
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("version", "format_version"),
        ("top", "top level"),
        ("fingerprint", "trained_on"),
        ("lang", "unknown language 'fr'"),
        ("no_langs", "langs must be"),
        ("bias", r"langs\.zh\.bias"),
        ("threshold", r"langs\.zh\.threshold"),
        ("weights", r"langs\.zh\.weights"),
        ("empty_weights", r"langs\.zh\.weights"),
        ("range", r"langs\.zh\.features"),
        ("scale", r"langs\.zh\.features"),
    ],
)
def test_invalid_model_is_rejected_with_file_name(
    tmp_path: Path, change: str, message: str
) -> None:
    path = _write(tmp_path, _broken(change), name=f"broken-{change}.json")
    with pytest.raises(ModelFileError, match=rf"broken-{change}\.json: .*{message}"):
        LearnedModel.load(path)
