"""Contact policy: quiet hours in the recipient's time zone, per-borrower and
per-number caps, opt-outs and consents (compliance.md §1-2, DESIGN.md
invariants 5-7).

The domain modules (``zones``, ``quiet_hours``, ``caps``, ``optouts``,
``inbound``) import neither aiohttp nor redis; ``sqlite_store`` and
``redis_store`` are the two adapters of the :class:`caps.CapStore` and
:class:`optouts.ContactRegistry` ports; ``service`` wires them into stages,
hand-off checks and API operations, ``wiring`` into the app.
"""
