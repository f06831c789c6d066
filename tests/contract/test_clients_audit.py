"""The store contract for clients, API keys, webhook secrets, receipts and
the audit registry and data keys — on SQLite and on Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.models import ApiKey, Client, Status
from gateway.store.base import AuditChain, AuditDataKey, Store
from tests.contract.helpers import T0, put, seed


async def test_clients_put_update_get_list(store: Store) -> None:
    zeta = Client(id="zeta", policy="us-fdcpa", signatures=("【安心】",), rate=5.0,
                  link_domains=("a.example",))  # fmt: skip
    await store.put_client(zeta, webhook_secret="whsec-1", create=True)
    await store.put_client(Client(id="acme", policy="cn-collection"), webhook_secret=None,
                           create=True)  # fmt: skip
    with pytest.raises(ValueError, match="already exists"):
        await store.put_client(zeta, webhook_secret=None, create=True)

    assert await store.get_client("zeta") == replace(zeta, has_webhook_secret=True)
    assert [c.id for c in await store.list_clients()] == ["acme", "zeta"]

    changed = replace(zeta, policy="cn-collection", rate=None, signatures=())
    await store.put_client(changed, webhook_secret=None, create=False)
    assert await store.get_client("zeta") == replace(changed, has_webhook_secret=True)
    assert await store.get_webhook_secret("zeta") == "whsec-1"  # kept
    await store.put_client(changed, webhook_secret="whsec-2", create=False)
    assert await store.get_webhook_secret("zeta") == "whsec-2"
    acme = await store.get_client("acme")
    assert acme is not None and acme.has_webhook_secret is False
    assert await store.get_webhook_secret("acme") is None
    assert await store.get_webhook_secret("ghost") is None

    with pytest.raises(ValueError, match="no client"):
        await store.put_client(Client(id="ghost", policy="x"), webhook_secret=None, create=False)
    assert await store.get_client("ghost") is None


async def test_keys_add_get_list_revoke(store: Store) -> None:
    await store.put_client(Client(id="acme", policy="cn-collection"), webhook_secret=None,
                           create=True)  # fmt: skip
    k1 = ApiKey("key_1", "acme", frozenset({"send", "review"}), T0)
    k2 = ApiKey("key_2", "acme", frozenset({"admin"}), T0 + timedelta(seconds=1))
    await store.add_key(k2, "hash-2")
    await store.add_key(k1, "hash-1")
    with pytest.raises(ValueError, match="no client"):
        await store.add_key(ApiKey("key_3", "ghost", frozenset({"send"}), T0), "hash-3")

    stored = await store.get_key("key_1")
    assert stored is not None and stored.key == k1 and stored.secret_hash == "hash-1"
    assert await store.get_key("key_3") is None
    assert [k.id for k in await store.list_keys()] == ["key_1", "key_2"]

    when = T0 + timedelta(minutes=1)
    assert await store.revoke_key("key_1", when) is True
    assert await store.revoke_key("key_1", when + timedelta(minutes=1)) is False
    assert await store.revoke_key("key_missing", when) is False
    revoked = await store.get_key("key_1")
    assert revoked is not None and revoked.key.revoked_at == when
    listed = {k.id: k for k in await store.list_keys()}
    assert listed["key_1"].revoked_at == when and listed["key_2"].revoked_at is None


# -- delivery -----------------------------------------------------------------


async def test_find_message_by_provider_id(store: Store) -> None:
    m = await seed(store, Status.SENDING)
    await store.transition(m.id, Status.SENT, T0, provider_message_id="pm-1")
    found = await store.find_message_by_provider_id("p1", "pm-1")
    assert found is not None and found.id == m.id and found.status is Status.SENT
    assert await store.find_message_by_provider_id("p2", "pm-1") is None
    assert await store.find_message_by_provider_id("p1", "pm-2") is None


async def test_a_failover_moves_the_provider_lookup(store: Store) -> None:
    m = await seed(store, Status.SENDING)
    await store.transition(m.id, Status.QUEUED, T0, provider_message_id="pm-old")
    await store.begin_attempt(m.id, "p2", T0, "w1", T0 + timedelta(seconds=30))
    await store.transition(m.id, Status.SENT, T0, provider_message_id="pm-new")
    found = await store.find_message_by_provider_id("p2", "pm-new")
    assert found is not None and found.id == m.id
    assert await store.find_message_by_provider_id("p1", "pm-old") is None


async def test_record_receipt_once(store: Store) -> None:
    m = await put(store)
    assert await store.record_receipt("p1", "pm-1", m.id, "delivered", "DELIVRD", T0) is True
    assert await store.record_receipt("p1", "pm-1", m.id, "delivered", "DELIVRD", T0) is False
    assert await store.record_receipt("p1", "pm-1", m.id, "undelivered", "X", T0) is True
    assert await store.record_receipt("p1", None, m.id, "delivered", None, T0) is True
    assert await store.record_receipt("p1", None, m.id, "delivered", None, T0) is False
    assert await store.record_receipt("p2", "pm-1", None, "delivered", "DELIVRD", T0) is True


# -- audit registry and keys ----------------------------------------------------


async def test_audit_chains_and_checkpoints(store: Store) -> None:
    a = AuditChain("gw-a", "gateway", "host1", 11, T0)
    b = AuditChain("cli-b", "cli", "host2", 12, T0 + timedelta(seconds=1))
    await store.register_audit_chain(b)
    await store.register_audit_chain(a)
    await store.close_audit_chain("gw-a", T0 + timedelta(minutes=1))
    await store.close_audit_chain("ghost", T0)
    assert await store.list_audit_chains() == [
        replace(a, closed_at=T0 + timedelta(minutes=1)), b,
    ]  # fmt: skip
    await store.register_audit_chain(replace(a, pid=99))  # starts again: open, rest kept
    assert (await store.list_audit_chains())[0] == a

    await store.add_audit_checkpoint("gw-a", 2, '{"seq":2}')
    await store.add_audit_checkpoint("gw-a", 1, '{"seq":1}')
    await store.add_audit_checkpoint("cli-b", 5, '{"b":5}')
    await store.add_audit_checkpoint("gw-a", 1, '{"seq":1}')
    assert await store.list_audit_checkpoints() == ['{"b":5}', '{"seq":1}', '{"seq":2}']


def key(key_id: str, generation: str, owner: str | None, at_s: int = 0) -> AuditDataKey:
    return AuditDataKey(key_id, generation, owner, f"v1.kek.{key_id}", T0 + timedelta(seconds=at_s))


async def test_audit_generation_keys(store: Store) -> None:
    assert await store.current_audit_generation() is None
    g1 = await store.add_audit_key(key("a1", "a1", None))
    assert g1 == key("a1", "a1", None)
    assert await store.add_audit_key(replace(key("a1", "a1", None), wrapped="other")) == g1
    await store.add_audit_key(key("a2", "a2", None, 60))
    assert (await store.current_audit_generation()) == key("a2", "a2", None, 60)
    assert await store.get_audit_key("a1") == g1
    assert await store.get_audit_key("nope") is None


async def test_audit_owner_keys_unique_live_and_destroyed(store: Store) -> None:
    o1, o2 = "1" * 64, "2" * 64
    first = await store.add_owner_keys([key("k1", "a1", o1), key("k2", "a1", o2)])
    assert first == {o1: key("k1", "a1", o1), o2: key("k2", "a1", o2)}
    # o1 already has a live key in a1: it keeps it
    assert await store.add_owner_keys([key("k3", "a1", o1)]) == {o1: key("k1", "a1", o1)}
    assert await store.add_owner_keys([key("k4", "a2", o1)]) == {o1: key("k4", "a2", o1)}
    assert await store.add_owner_keys([]) == {}
    assert await store.owner_keys("a1", [o1, o2, "3" * 64]) == first
    assert (await store.owner_keys("a2", [o1]))[o1] == key("k4", "a2", o1)
    assert await store.get_audit_key("k3") is None

    when = T0 + timedelta(hours=1)
    assert sorted(await store.destroy_owner_keys(o1, when)) == ["k1", "k4"]
    assert await store.destroy_owner_keys(o1, when) == []
    gone = await store.get_audit_key("k1")
    assert gone is not None and gone.wrapped is None and gone.destroyed_at == when
    assert await store.owner_keys("a1", [o1, o2]) == {o2: key("k2", "a1", o2)}
    # a new key for the erased owner can be made afterwards
    fresh = await store.add_owner_keys([key("k5", "a1", o1)])
    assert fresh == {o1: key("k5", "a1", o1)}
