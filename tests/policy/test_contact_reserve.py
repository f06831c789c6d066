"""The contact check folded into the cap reservation (one Redis script): the
same refusal as gateway.policy.optouts.refusal for every pack, purpose and
state, nothing reserved when refused, and a reservation when it passes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from config.contact import OPT_OUT_SCOPES, SCOPE_PURPOSES, contact_pack
from gateway.policy.caps import CapCheck, CapDenied, Counter, ms
from gateway.policy.gate import ContactGate
from gateway.policy.optouts import ContactState, refusal
from gateway.policy.redis_store import RedisPolicyStore
from tests.policy.conftest import REDIS_URL

T0 = ms(datetime(2026, 1, 15, 2, 0, tzinfo=UTC))
ONE = Counter("b:h:day", "x.day", "borrower", 1, True, lo=T0 - 3_600_000, hi=T0 + 3_600_000)
PURPOSES = sorted({p for ps in SCOPE_PURPOSES.values() for p in ps} | {"verification_code"})
PACKS = ("cn-collection", "us-fdcpa")


def states() -> list[ContactState]:
    out = []
    for n in range(len(OPT_OUT_SCOPES) + 1):
        for scopes in itertools.combinations(OPT_OUT_SCOPES, n):
            for consents in (frozenset(), frozenset({"marketing"})):
                out.append(ContactState(frozenset(scopes), consents))
    return out


def test_the_gate_refuses_exactly_as_refusal_does() -> None:
    for name in PACKS:
        pack = contact_pack(name)
        for purpose in PURPOSES:
            gate = ContactGate.of(pack, purpose)
            for state in states():
                assert gate.refusal(state) == refusal(pack, purpose, state), (name, purpose)


async def record(store: RedisPolicyStore, state: ContactState, phone: str) -> None:
    for scope in state.opt_outs:
        await store.add_opt_out("acme", phone, scope, datetime.now(UTC), "api")
    for purpose in state.consents:
        await store.add_consent("acme", phone, purpose, datetime.now(UTC), "sealed")


async def test_the_script_answers_as_the_gate_and_reserves_only_when_it_passes(
    redis_prefix: str,
) -> None:
    store = RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2.0)
    pack = contact_pack("cn-collection")
    try:
        for n, state in enumerate(states()):
            phone = f"phone-{n}"
            await record(store, state, phone)
            for purpose in PURPOSES:
                gate = ContactGate.of(pack, purpose)
                counter = Counter(f"n:{phone}:{purpose}", "x", "number", 1, False, span=60_000)
                check = CapCheck("acme", f"m-{n}-{purpose}", T0, T0, (counter,))
                outcome = await store.check_and_reserve(phone, gate, check)
                assert outcome == gate.refusal(state)
                again = CapCheck("acme", f"m2-{n}-{purpose}", T0, T0, (counter,))
                second = await store.reserve(again)  # full only when the first reserved
                assert isinstance(second, CapDenied) == (outcome is None)
    finally:
        await store.close()


async def test_a_full_cap_is_denied_after_the_contact_check(redis_prefix: str) -> None:
    store = RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2.0)
    gate = ContactGate.of(contact_pack("cn-collection"), "overdue_notice")
    try:
        assert (
            await store.check_and_reserve("p", gate, CapCheck("acme", "a", T0, T0, (ONE,))) is None
        )
        denied = await store.check_and_reserve("p", gate, CapCheck("acme", "b", T0, T0, (ONE,)))
        assert isinstance(denied, CapDenied) and denied.rule == "x.day"
        await store.release("acme", "a")
        assert (
            await store.check_and_reserve("p", gate, CapCheck("acme", "b", T0, T0, (ONE,))) is None
        )
    finally:
        await store.close()
