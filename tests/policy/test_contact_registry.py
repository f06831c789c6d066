"""The ContactRegistry contract on both adapters, and no plaintext number,
borrower or evidence at rest; the inbound keyword classifier."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from config.contact import contact_pack
from gateway.clock import FakeClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.policy.inbound import classify
from gateway.policy.optouts import ContactState, refusal
from gateway.policy.redis_store import RedisPolicyStore
from gateway.policy.service import ContactPolicy, PolicyBackend
from gateway.policy.sqlite_store import SqlitePolicyStore
from tests.policy.conftest import REDIS_URL

AT = datetime(2026, 1, 15, 2, tzinfo=UTC)
PHONE = "f" * 64  # a blind-index hash


async def test_opt_outs_per_client_and_scope(backend: PolicyBackend) -> None:
    assert await backend.state("acme", PHONE) == ContactState(frozenset(), frozenset())
    await backend.add_opt_out("acme", PHONE, "marketing", AT, "api")
    await backend.add_opt_out("acme", PHONE, "collection", AT, "inbound:outbox")
    await backend.add_opt_out("acme", PHONE, "marketing", AT, "api")  # again: no-op
    assert (await backend.state("acme", PHONE)).opt_outs == {"marketing", "collection"}
    assert (await backend.state("other", PHONE)).opt_outs == frozenset()
    assert await backend.remove_opt_outs("acme", PHONE) == 2
    assert await backend.remove_opt_outs("acme", PHONE) == 0
    assert (await backend.state("acme", PHONE)).opt_outs == frozenset()


async def test_consents_survive_opt_out_changes(backend: PolicyBackend) -> None:
    await backend.add_consent("acme", PHONE, "marketing", AT, "v1.sealed")
    await backend.add_opt_out("acme", PHONE, "all", AT, "api")
    await backend.remove_opt_outs("acme", PHONE)
    assert (await backend.state("acme", PHONE)).consents == {"marketing"}
    assert await backend.remove_consent("acme", PHONE, "marketing") is True
    assert await backend.remove_consent("acme", PHONE, "marketing") is False
    assert (await backend.state("acme", PHONE)).consents == frozenset()


def test_refusal_rules() -> None:
    cn = contact_pack("cn-collection")
    none = ContactState(frozenset(), frozenset())
    every = ContactState(frozenset({"all"}), frozenset({"marketing"}))
    assert refusal(cn, "overdue_notice", none) is None
    assert refusal(cn, "marketing", none) == "no_consent"
    assert refusal(cn, "marketing", ContactState(frozenset(), frozenset({"marketing"}))) is None
    for purpose in ("repayment_reminder", "overdue_notice", "service", "marketing"):
        assert refusal(cn, purpose, every) == "opt_out"
    assert refusal(cn, "verification_code", every) is None  # codes still go
    collection = ContactState(frozenset({"collection"}), frozenset({"marketing"}))
    assert refusal(cn, "overdue_notice", collection) == "opt_out"
    assert refusal(cn, "marketing", collection) is None
    assert refusal(cn, "service", collection) is None


@pytest.mark.parametrize(
    ("pack", "text", "intent"),
    [
        ("cn-collection", "退订", "opt_out"),
        ("cn-collection", " 退订。", "opt_out"),
        ("cn-collection", "请帮我退订谢谢", "opt_out"),
        ("cn-collection", "TD", "opt_out"),
        ("cn-collection", "t", "opt_out"),
        ("cn-collection", "Ｒ", "opt_out"),  # full width
        ("cn-collection", "拒收", "opt_out"),
        ("cn-collection", "开通", "opt_in"),
        ("cn-collection", "好的，已还款", None),
        ("cn-collection", "Thanks", None),  # a word starting with T is not T
        ("us-fdcpa", "STOP", "opt_out"),
        ("us-fdcpa", "stop.", "opt_out"),
        ("us-fdcpa", "Stop texting me please", "opt_out"),
        ("us-fdcpa", "Quit", "opt_out"),
        ("us-fdcpa", "opt out", "opt_out"),
        ("us-fdcpa", "REVOKE", "opt_out"),
        ("us-fdcpa", "unsubscribe", "opt_out"),
        ("us-fdcpa", "START", "opt_in"),
        ("us-fdcpa", "I paid yesterday", None),
        ("us-fdcpa", "", None),
    ],
)
def test_inbound_keywords(pack: str, text: str, intent: str | None) -> None:
    assert classify(text, contact_pack(pack).opt_out) == intent


def files_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("policy.db*"))


async def test_nothing_personal_at_rest(tmp_path: Path, redis_prefix: str) -> None:
    """Through the service: numbers are blind-index hashes, evidence is sealed."""
    number, evidence = "+8613812345678", "signed form 2026-01-02 by 张三"

    async def no_client(_: str) -> None:
        return None

    class NoSenders:
        async def clients(self, phone: str, provider: str, since: datetime) -> list[str]:
            return []

    stores: list[PolicyBackend] = [
        SqlitePolicyStore(tmp_path / "policy.db"),
        RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2),
    ]
    for store in stores:
        policy = ContactPolicy(
            store, FakeClock(AT), BlindIndex(secrets.token_bytes(32)),
            FieldCipher(secrets.token_bytes(32)), clients=no_client, senders=NoSenders(),
        )  # fmt: skip
        await policy.open()
        await policy.opt_out("acme", number, "all", "api")
        await policy.consent("acme", number, "marketing", evidence)
        assert (await policy.state("acme", number)).opt_outs == {"all"}
        await policy.close()
    raw = files_bytes(tmp_path)
    redis = Redis.from_url(REDIS_URL)
    try:
        async for key in redis.scan_iter(match=f"{redis_prefix}*"):
            raw += key + b"".join(k + v for k, v in (await redis.hgetall(key)).items())
    finally:
        await redis.aclose()
    for secret in (number, number[1:], "13812345678", evidence, "张三"):
        assert secret.encode() not in raw
