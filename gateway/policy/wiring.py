"""The contact policy inside the app: built with the app (no I/O), opened and
closed in a ``cleanup_ctx`` after the store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from config.settings import Settings, key_bytes
from gateway.appkeys import AUDIT, CLOCK, CONTACT, STORE
from gateway.crypto import BlindIndex, FieldCipher
from gateway.models import Client
from gateway.policy.caps import PolicyUnavailable
from gateway.policy.senders import SqliteRecentSenders
from gateway.policy.service import ContactPolicy, open_backend

log = logging.getLogger("lendsms.policy")


def new_contact_policy(settings: Settings, app: web.Application) -> ContactPolicy:
    async def client(client_id: str) -> Client | None:
        return await app[STORE].get_client(client_id)

    return ContactPolicy(
        open_backend(settings.policy),
        app[CLOCK],
        BlindIndex(key_bytes(settings.keys.index)),
        FieldCipher(key_bytes(settings.keys.data)),
        clients=client,
        senders=SqliteRecentSenders(settings.store.path),
        audit=lambda: app.get(AUDIT),
    )


async def contact_ctx(app: web.Application) -> AsyncIterator[None]:
    policy = app[CONTACT]
    if policy is None:
        yield
        return
    await policy.open()
    try:
        await policy.backend.ping()
    except PolicyUnavailable:  # start anyway: requests fail closed until it answers
        log.warning("the contact-policy store does not answer; sends get 503 until it does")
    try:
        yield
    finally:
        await policy.close()
