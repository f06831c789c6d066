"""Loading and validating the content part of a policy pack: every rule has
an id and a source; a bad pack fails with the file, the line and the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.content import load_content_pack, shipped_content_packs
from config.content_lexicon import ContentPackError, expand
from config.settings import SettingsError, settings_from_mapping
from filters.content import ContentFilter, MessageContext

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_shipped_packs_have_every_category_with_sources() -> None:
    packs = shipped_content_packs()
    assert set(packs) == {"cn-collection", "us-fdcpa"}
    for spec in packs.values():
        numbers = {c.number for c in spec.categories}
        assert set(range(1, 14)) <= numbers, spec.name  # compliance.md §3: 13 categories
        for rule in spec.rules:
            assert rule.id.startswith(("cn.", "us.")) and rule.source.strip()
            assert "compliance.md" in rule.source or "FDCPA" in rule.source, rule.id
    assert packs["cn-collection"].term_count >= 5000


def copy_pack(tmp_path: Path, name: str = "cn-collection") -> tuple[Path, Path]:
    """A writable copy: policies/<name>.toml and lexicons/<name>/ side by side."""
    (tmp_path / "policies").mkdir()
    pack = tmp_path / "policies" / f"{name}.toml"
    shutil.copy(CONFIG / "policies" / f"{name}.toml", pack)
    lexicons = tmp_path / "lexicons" / name
    shutil.copytree(CONFIG / "lexicons" / name, lexicons)
    return pack, lexicons


def error_of(pack: Path) -> ContentPackError:
    with pytest.raises(ContentPackError) as info:
        load_content_pack(pack)
    return info.value


def test_a_lexicon_beside_the_pack_extends_it_without_code(tmp_path: Path) -> None:
    pack, lexicons = copy_pack(tmp_path)
    (lexicons / "20-local.toml").write_text(
        'category = "local"\nnumber = 0\ntitle = "operator words"\n\n'
        '[[rules]]\nid = "local.words"\naction = "hold"\nsource = "operator policy"\n'
        'terms = """\n蓝莓派\n"""\n',
        encoding="utf-8",
    )
    spec = load_content_pack(pack)
    result = ContentFilter(spec).check("【易贷通】蓝莓派", MessageContext("service"))
    assert [f.rule for f in result.findings] == ["local.words"]


@pytest.mark.parametrize(
    ("file", "old", "new", "reason"),
    [
        ("01-violence.toml", 'action = "block"', 'action = "maybe"', "action must be block"),
        ("01-violence.toml", "source = ", "sauce = ", "unknown key"),
        ("02-insult.toml", "老赖\n", "老{赖\n", "unbalanced"),
        ("05-legal-action.toml", 'allow_contexts = ["anti_fraud"', 'allow_contexts = ["nope"',
         "unknown 'nope'"),
        ("03-impersonation.toml", "[[rules]]", "[[rules]\n", "not valid TOML"),
        ("09-new-borrowing.toml", 'purposes = ["repayment_reminder"', 'purposes = ["spam"',
         "unknown 'spam'"),
    ],
)  # fmt: skip
def test_lexicon_errors_name_file_line_and_reason(
    tmp_path: Path, file: str, old: str, new: str, reason: str
) -> None:
    """The error names the file and the line of the broken text (the line is
    computed from the shipped file, which grows with every lexicon round)."""
    pack, lexicons = copy_pack(tmp_path)
    path = lexicons / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    err = error_of(pack)
    assert err.file == str(path) and err.line == line, str(err)
    assert reason in str(err) and str(err).startswith(f"{path}:{line}: ")
    assert isinstance(err, SettingsError)  # the CLI prints it as one line


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    pack, lexicons = copy_pack(tmp_path)
    path = lexicons / "12-obscene.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("source")))
    assert "source (the legal basis) is required" in str(error_of(pack))


def test_duplicate_rule_ids(tmp_path: Path) -> None:
    pack, lexicons = copy_pack(tmp_path)
    shutil.copy(lexicons / "12-obscene.toml", lexicons / "99-copy.toml")
    err = error_of(pack)
    assert "rule id cn.obscene.sexual is also in" in str(err) and err.line == 6


def test_pack_content_table_errors(tmp_path: Path) -> None:
    pack, _ = copy_pack(tmp_path)
    text = pack.read_text(encoding="utf-8")
    pack.write_text(text.replace('unsubscribe = "block"', 'unsubscribe = "shout"'))
    err = error_of(pack)
    assert err.file == str(pack) and "content.unsubscribe must be block or append" in str(err)
    pack.write_text(text.replace('lexicons = "cn-collection"', 'lexicons = "nowhere"'))
    assert "no lexicon folder 'nowhere'" in str(error_of(pack))
    pack.write_text(text.replace("max_segments = 5", "max_segments = -1"))
    assert "max_segments" in str(error_of(pack))
    pack.write_text(text.replace("[content]", "[content]\ncolour = 1"))
    assert "content.colour: unknown key" in str(error_of(pack))
    pack.write_text(text.split("[content]")[0])
    assert "a [content] table is required" in str(error_of(pack))


def test_expand_alternations() -> None:
    assert expand("打{断|折}你{的|}腿") == ["打断你的腿", "打断你腿", "打折你的腿", "打折你腿"]
    assert expand("plain") == ["plain"]
    with pytest.raises(ValueError, match="at most"):
        expand("{a|b|c|d|e|f|g|h|i|j}" * 4)
    with pytest.raises(ValueError, match="unbalanced"):
        expand("a{b|c")


def test_template_attestations_are_validated(tmp_path: Path) -> None:
    from tests.conftest import base_config

    def settings(attests: object) -> object:
        raw = base_config()
        raw["templates"] = {"t": {"purpose": "overdue_notice", "text": "x", "attests": attests}}
        return settings_from_mapping(raw, base_dir=tmp_path)

    assert settings(["legal_action_authorized"]).templates["t"].attests == {  # type: ignore[attr-defined]
        "legal_action_authorized"
    }
    with pytest.raises(SettingsError, match=r"templates\.t\.attests"):
        settings(["made_up"])
