"""The JSON file cache of derived lexicon data (config/content_cache.py,
filters/content/keys.py, config/content_codec.py for compiled packs):
stored once, reused for the same inputs, recomputed when the inputs, the
library version or the stored file change, never required."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from config import content, content_cache
from config.content import shipped_content_packs
from config.content_cache import ENV, KEEP, cache_dir, cached
from config.content_cache import read_entry as stored_data
from config.content_codec import Compiled, decode_compiled, encode_compiled
from config.content_lexicon import pinyin_readings, traditional_forms
from config.content_model import PackSpec
from config.settings import Settings
from filters.content.keys import build_tables, key_tables
from gateway.app import create_app


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
    assert stored_data(entry) == {"a": 1}


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
    assert stored_data(entry) == {"a": 1}


def test_an_entry_whose_bytes_changed_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid JSON after its digest line is still not trusted when it is not
    what was written (decoders rely on the shape they wrote)."""
    monkeypatch.setenv(ENV, str(tmp_path))
    calls, compute = _counting({"a": 1})
    _run(["x"], compute)
    (entry,) = tmp_path.glob("test-*.json")
    head, _, body = entry.read_bytes().partition(b"\n")
    assert head.startswith(b"sha256:") and json.loads(body) == {"a": 1}
    entry.write_bytes(head + b"\n" + body.replace(b"1", b"2"))
    assert _run(["x"], compute) == {"a": 1}
    assert len(calls) == 2
    entry.write_bytes(head + b"\n" + body[:-1])  # truncated
    assert _run(["x"], compute) == {"a": 1}
    assert len(calls) == 3


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


def test_an_entry_in_use_outlives_newer_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    calls, compute = _counting({"a": 1})
    _run(["in use"], compute)
    for i in range(KEEP + 3):
        _run([str(i)], compute)
        _run(["in use"], compute)  # read back: the most recently used entry
    assert len(calls) == KEEP + 4  # "in use" was computed once
    assert len(list(tmp_path.glob("test-*.json"))) == KEEP


def test_cached_key_tables_equal_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = shipped_content_packs()["us-fdcpa"]
    built = build_tables(spec)
    monkeypatch.setenv(ENV, str(tmp_path))
    assert key_tables(spec) == built  # computed and stored
    assert key_tables(spec) == built  # read back from JSON
    assert len(list(tmp_path.glob("keys-*.json"))) == 1


def _compiled_parts(spec: PackSpec) -> Compiled:
    return spec.contexts, spec.categories, spec.rules, spec.structure, spec.syllables


@pytest.mark.parametrize("pack", ["cn-collection", "us-fdcpa"])
def test_a_compiled_pack_survives_json(pack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = content.cached

    def spec_uncached(kind: str, version: str, inputs: list[str], compute: Any, *codec: Any) -> Any:
        return compute() if kind == "spec" else real(kind, version, inputs, compute, *codec)

    monkeypatch.setattr(content, "cached", spec_uncached)
    path = Path(content.__file__).with_name("policies") / f"{pack}.toml"
    compiled = content.load_content_pack(path)  # compiled now, not read from the cache
    data = json.loads(json.dumps(encode_compiled(_compiled_parts(compiled)), ensure_ascii=False))
    contexts, categories, rules, structure, syllables = decode_compiled(data)
    back = replace(
        compiled, contexts=contexts, categories=categories, rules=rules, structure=structure,
        syllables=MappingProxyType(syllables),
    )  # fmt: skip
    assert back == compiled
    assert any(t.forms or t.pinyin for r in rules for t in r.terms) == (pack == "cn-collection")


def test_a_compiled_pack_is_reused_until_a_file_of_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "cache"))
    (tmp_path / "policies").mkdir()
    pack = tmp_path / "policies" / "us-fdcpa.toml"
    shutil.copy(Path(content.__file__).with_name("policies") / "us-fdcpa.toml", pack)
    lexicons = tmp_path / "lexicons" / "us-fdcpa"
    shutil.copytree(Path(content.__file__).with_name("lexicons") / "us-fdcpa", lexicons)
    real, calls = content._compile, []

    def counting(*args: Any) -> Compiled:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(content, "_compile", counting)
    first = content.load_content_pack(pack)
    assert content.load_content_pack(pack) == first and len(calls) == 1  # read back
    assert len(list((tmp_path / "cache").glob("spec-*.json"))) == 1
    (lexicons / "20-local.toml").write_text(
        'category = "local"\nnumber = 0\ntitle = "operator words"\n\n'
        '[[rules]]\nid = "local.words"\naction = "hold"\nsource = "operator policy"\n'
        'terms = """\nblueberry pie\n"""\n',
        encoding="utf-8",
    )
    edited = content.load_content_pack(pack)
    assert len(calls) == 2 and "local.words" in {r.id for r in edited.rules}
    pack.write_text(pack.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    content.load_content_pack(pack)
    assert len(calls) == 3  # the pack file is an input too


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"contexts": [], "categories": [], "rules": [], "structure": {}, "syllables": {}},
        {"contexts": [], "categories": [], "rules": [{"id": 1}], "structure": {},
         "syllables": {}},
        {"contexts": [], "categories": [], "rules": [], "structure": {}, "syllables": {"a": 1}},
    ],
)  # fmt: skip
def test_malformed_compiled_data_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        decode_compiled(data)


def test_a_gateway_keeps_the_cache_beside_its_settings_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without LENDSMS_CONTENT_CACHE, a gateway started from any directory uses
    ``var/cache/content`` beside its settings file (where its other data is)."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(content_cache, "_default_dir", content_cache.DEFAULT_DIR)
    assert cache_dir() == Path("var/cache/content")  # a tool's own: the working directory
    create_app(settings, dispatch=False, contact_policy=False)
    assert cache_dir() == settings.base_dir / "var" / "cache" / "content"
    monkeypatch.setenv(ENV, "/somewhere/else")
    assert cache_dir() == Path("/somewhere/else")  # the environment still decides first
