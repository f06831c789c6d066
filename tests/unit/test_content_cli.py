"""``lendsms policy check FILE`` and ``lendsms policy explain --pack P TEXT``,
in-process through ``gateway.cli.main`` (the parser the console script uses)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_check_shipped_packs(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("cn-collection", "us-fdcpa"):
        assert main(["policy", "check", str(CONFIG / "policies" / f"{name}.toml")]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"ok: {name} (") and "categories" in out


def test_check_reports_file_line_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "policies").mkdir()
    pack = tmp_path / "policies" / "us-fdcpa.toml"
    shutil.copy(CONFIG / "policies" / "us-fdcpa.toml", pack)
    lexicons = tmp_path / "lexicons" / "us-fdcpa"
    shutil.copytree(CONFIG / "lexicons" / "us-fdcpa", lexicons)
    bad = lexicons / "02-insult.toml"
    bad.write_text(bad.read_text(encoding="utf-8").replace('action = "block"', 'action = "x"', 1))
    assert main(["policy", "check", str(pack)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"lendsms: {bad}:7: rule us.insult.label: action must be block or hold"
    pack.write_text("name = 'us-fdcpa'\nlanguage = 'xx'\n")
    assert main(["policy", "check", str(pack)]) == 1
    assert "language" in capsys.readouterr().err


def test_explain_prints_findings_and_decision(capsys: pytest.CaptureFixture[str]) -> None:
    text = "【快贷宝】你這個騙子，再不还钱就曝 光你。我司不会要求您向个人账户转账。"
    assert main(["policy", "explain", "--pack", "cn-collection", text]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "decision: block"
    assert any(line.startswith("block  cn.insult.fraudster") and "«騙子»" in line for line in out)
    assert any("«曝 光你»" in line for line in out)
    assert any(line.startswith("allow") and "context:anti_fraud" in line for line in out)


def test_explain_options(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["policy", "explain", "--pack", "cn-collection", "--purpose", "overdue_notice"]
    text = "【快贷宝】我司将依法提起诉讼。"
    assert main([*args, text]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "decision: hold"
    assert main([*args, "--attest", "legal_action_authorized", text]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "decision: queue"
    assert main([*args, "--role", "contact", "【快贷宝】请转告他尽快还款"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "decision: block"
    us = ["policy", "explain", "--pack", "us-fdcpa", "--purpose", "repayment_reminder"]
    assert main([*us, "Bright Loans: $20 due Friday"]) == 0
    out = capsys.readouterr().out
    assert (
        "body: Bright Loans: $20 due Friday. This is a communication from a debt collector."
        " Reply STOP to opt out." in out
    )
    assert main(["policy", "explain", "--pack", "nope", "x"]) == 1
