"""The JSON file cache of derived lexicon data (config/content_cache.py,
filters/content/keys.py):
stored once, reused for the same inputs, recomputed when the inputs, the
library version or the stored file change, never required."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from config.content import shipped_content_packs
from config.content_cache import ENV, KEEP, cached
from config.content_lexicon import pinyin_readings, traditional_forms
from filters.content.keys import build_tables, key_tables


def _counting(result: dict[str, int]) -> tuple[list[int], Callable[[], dict[str, int]]]:
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return dict(result)

    return calls, compute


def _run(
    inputs: list[str], compute: Callable[[], dict[str, int]], version: str = "1"
) -> dict[str, int]:
    return cached("test", version, inputs, compute, dict, dict)


def test_stored_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    calls, compute = _counting({"a": 1})
    assert _run(["x", "y"], compute) == {"a": 1}
    assert _run(["x", "y"], compute) == {"a": 1}
    assert len(calls) == 1
    (entry,) = tmp_path.glob("test-*.json")
    assert json.loads(entry.read_text(encoding="utf-8")) == {"a": 1}


def test_other_inputs_or_version_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    calls, compute = _counting({"a": 1})
    _run(["x", "y"], compute)
    _run(["xy"], compute)  # same characters, other items
    _run(["x", "y"], compute, version="2")
    assert len(calls) == 3
    assert len(list(tmp_path.glob("test-*.json"))) == 3


def test_malformed_entry_is_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    calls, compute = _counting({"a": 1})
    _run(["x"], compute)
    (entry,) = tmp_path.glob("test-*.json")
    entry.write_text("{not json", encoding="utf-8")
    assert _run(["x"], compute) == {"a": 1}
    assert len(calls) == 2
    assert json.loads(entry.read_text(encoding="utf-8")) == {"a": 1}


def test_off_and_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "off")
    calls, compute = _counting({"a": 1})
    _run(["x"], compute)
    _run(["x"], compute)
    assert len(calls) == 2
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv(ENV, str(blocker / "sub"))  # a folder under a file: cannot be made
    assert _run(["x"], compute) == {"a": 1}
    assert len(calls) == 3


def test_cached_lexicon_data_equals_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terms = ["坐牢", "起诉", "通讯录", "借口", "kill you"]
    monkeypatch.setenv(ENV, "off")
    expected = (pinyin_readings(terms), traditional_forms(terms))
    monkeypatch.setenv(ENV, str(tmp_path))
    first = (pinyin_readings(terms), traditional_forms(terms))
    second = (pinyin_readings(terms), traditional_forms(terms))  # read back from JSON
    assert first == second == expected
    assert expected[0][0]["坐牢"] == ("zuolao",)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_only_the_newest_entries_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    _, compute = _counting({"a": 1})
    for i in range(KEEP + 3):
        _run([str(i)], compute)
    assert len(list(tmp_path.glob("test-*.json"))) == KEEP


def test_cached_key_tables_equal_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = shipped_content_packs()["us-fdcpa"]
    built = build_tables(spec)
    monkeypatch.setenv(ENV, str(tmp_path))
    assert key_tables(spec) == built  # computed and stored
    assert key_tables(spec) == built  # read back from JSON
    assert len(list(tmp_path.glob("keys-*.json"))) == 1
