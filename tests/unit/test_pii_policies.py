"""Policy packs: the shipped files, and one clear error line for each kind of
mistake in a pack's [pii] tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.policies import (
    DEFAULT_MASKS,
    PII_ENTITIES,
    PolicyError,
    load_pack,
    load_pack_file,
    parse_pack,
    shipped_packs,
)
from config.settings import POLICY_PACKS


def test_shipped_packs_are_the_selectable_ones() -> None:
    assert sorted(shipped_packs()) == sorted(POLICY_PACKS)
    for name in POLICY_PACKS:
        pack = load_pack(name)
        assert pack.name == name
        assert set(pack.pii) == set(PII_ENTITIES)


def test_shipped_pack_content() -> None:
    cn, us = load_pack("cn-collection"), load_pack("us-fdcpa")
    assert (cn.language, us.language) == ("zh", "en")
    assert all(rule.action == "mask" for rule in cn.pii.values())
    assert us.pii["us_ssn"].action == "block"
    assert cn.pii["bank_card"].mask_format("zh") == "尾号{last4}"
    assert cn.pii["bank_card"].mask_format("en") == "ending {last4}"
    assert cn.pii["mobile"].mask_format("zh") == "{first3}****{last4}"
    assert cn.pii["person_name"].mask_format("zh") == "{surname}*"


def test_unknown_pack() -> None:
    with pytest.raises(PolicyError, match="no such pack"):
        load_pack("nope")


def pack(**pii: Any) -> dict[str, Any]:
    return {"name": "test", "language": "zh", "pii": pii}


def test_omitted_entities_and_formats_get_the_defaults() -> None:
    parsed = parse_pack(pack(mobile={"action": "block"}), "t.toml")
    assert parsed.pii["mobile"].action == "block"
    assert parsed.pii["mobile"].masks == DEFAULT_MASKS["mobile"]
    assert parsed.pii["cn_id"].action == "mask"
    assert parsed.pii["email"].masks == DEFAULT_MASKS["email"]


def test_one_format_for_both_scripts_or_one_per_script() -> None:
    one = parse_pack(pack(bank_card={"action": "mask", "mask": "卡尾号{last4}"}), "t.toml")
    assert dict(one.pii["bank_card"].masks) == {"zh": "卡尾号{last4}", "en": "卡尾号{last4}"}
    per = parse_pack(pack(bank_card={"action": "mask", "mask": {"en": "card *{last4}"}}), "t")
    assert dict(per.pii["bank_card"].masks) == {"zh": "尾号{last4}", "en": "card *{last4}"}


def test_other_tables_are_kept_for_other_stages() -> None:
    data = {"name": "x", "language": "en", "lexicon": {"threat": ["jail"]}, "quiet_hours": [8, 21]}
    parsed = parse_pack(data, "x.toml")
    assert parsed.tables == {"lexicon": {"threat": ["jail"]}, "quiet_hours": [8, 21]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"language": "zh"}, "t.toml: name: is required"),
        ({"name": "t", "language": "fr"}, "t.toml: language: must be one of zh, en"),
        ({"name": "t", "language": "zh", "pii": 3}, "t.toml: pii: must be a table"),
        (pack(iban={"action": "mask"}), "t.toml: pii.iban: unknown entity"),
        (pack(cn_id="mask"), "t.toml: pii.cn_id: must be a table"),
        (pack(cn_id={"action": "hide"}), "t.toml: pii.cn_id.action: must be mask or block"),
        (pack(cn_id={"mask": "{last4}"}), "t.toml: pii.cn_id.action: must be mask or block"),
        (pack(cn_id={"action": "mask", "colour": 1}), "t.toml: pii.cn_id.colour: unknown key"),
        (pack(cn_id={"action": "mask", "mask": 4}), "pii.cn_id.mask: must be a string or a table"),
        (
            pack(cn_id={"action": "mask", "mask": "{surname}"}),
            "t.toml: pii.cn_id.mask: placeholder {surname} is not allowed here "
            "(allowed: {last4}, {stars})",
        ),
        (pack(email={"action": "mask", "mask": "{first!r}"}), "placeholder {first} is not allowed"),
        (pack(email={"action": "mask", "mask": "{0}"}), "placeholder {0} is not allowed"),
        (
            pack(email={"action": "mask", "mask": "{domain"}),
            "pii.email.mask: is not a valid format",
        ),
        (pack(email={"action": "mask", "mask": " "}), "pii.email.mask: must not be empty"),
        (pack(email={"action": "mask", "mask": {"fr": "x"}}), "pii.email.mask.fr: unknown script"),
        (pack(email={"action": "mask", "mask": {"en": 1}}), "pii.email.mask.en: must be a string"),
    ],
)
def test_errors_name_the_file_and_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_pack(data, "t.toml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_pack_files(tmp_path: Path) -> None:
    good = tmp_path / "acme.toml"
    good.write_text(
        'name = "acme"\nlanguage = "en"\n[pii.email]\naction = "block"\n', encoding="utf-8"
    )
    assert load_pack_file(good).pii["email"].action == "block"
    renamed = tmp_path / "other.toml"
    renamed.write_text(good.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"other\.toml: name: must match the file name"):
        load_pack_file(renamed)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"broken\.toml: file: is not valid TOML"):
        load_pack_file(broken)
    with pytest.raises(PolicyError, match=r"missing\.toml: file: cannot be read"):
        load_pack_file(tmp_path / "missing.toml")
