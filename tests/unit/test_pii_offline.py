"""No network: building the analyzers and analysing text open no socket
other than loopback (no spaCy model download, no public-suffix-list fetch)."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "dev.jsonl"
PSL = "https://publicsuffix.org/list/public_suffix_list.dat"


def _loopback(host: Any) -> bool:
    if host in (None, "localhost", "", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every attempt to resolve or reach a non-loopback address, refused.

    tldextract's shared extractor is replaced by a fresh one without a disk
    cache, so a suffix list fetched or cached earlier on this machine cannot
    hide a fetch."""
    import tldextract.tldextract

    fresh = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(PSL,))
    monkeypatch.setattr(tldextract.tldextract, "TLD_EXTRACTOR", fresh)
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(what: str) -> OSError:
        attempts.append(what)
        return OSError(f"network access in a test: {what}")

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def connect(self: socket.socket, address: Any) -> Any:
            inet = self.family in (socket.AF_INET, socket.AF_INET6)
            if inet and not _loopback(address[0]):
                raise refuse(f"connect {address[0]}")
            return real(self, address)

        return connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            raise refuse(f"resolve {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def test_the_guard_catches_a_suffix_list_fetch(network_attempts: list[str]) -> None:
    """presidio's stock e-mail recognizer, unpatched, does try to fetch."""
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    results = EmailRecognizer().analyze("mail li@example.co.uk", ["EMAIL_ADDRESS"])
    assert len(results) == 1  # tldextract fell back to its snapshot
    assert network_attempts == ["resolve publicsuffix.org"]


def test_loopback_is_allowed(network_attempts: list[str]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert network_attempts == []


def test_building_and_analysing_open_no_socket(network_attempts: list[str]) -> None:
    from gateway.stages.pii import PiiStage
    from gateway.stages.presidio_engines import lendsms_engine, stock_engine

    stock, ours, stage = stock_engine(), lendsms_engine(), PiiStage()
    texts = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    texts.append({"lang": "en", "text": "Write to Li.Na@example.co.uk or www.example.com/x"})
    found = 0
    for case in texts:
        found += len(stock.analyze(case["text"], language="en"))
        found += len(ours.analyze(case["text"], language=case["lang"]))
        stage.evaluate(case["text"], "cn-collection")
    assert found > 0  # the engines did run (e-mail validation included)
    assert network_attempts == []
