"""Work a serving process does once before it reports ready, so its first
requests do not pay for it.

phonenumbers loads a country's numbering plan and its time-zone prefixes on
the first number of that country it sees: 3-10 ms each on a 2-core machine,
on the event loop, while every request behind it waits. A replica that joins
a load balancer under load would answer its first requests tens of
milliseconds late. :func:`warm_up` parses one example mobile number of each
market (China, the United States) the way ``POST /v1/messages`` does.
"""

from __future__ import annotations

import logging

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from gateway.errors import Problem
from gateway.schemas import parse_phone

log = logging.getLogger("lendsms.warmup")

MARKETS = ("CN", "US")


def warm_up(regions: tuple[str, ...] = MARKETS) -> None:
    for region in regions:
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
        try:
            parse_phone(e164, None)  # numbering plan, mobile patterns, time zones
        except Problem:  # an example the library itself finds invalid: nothing to warm
            log.debug("no warm-up number", extra={"region": region})
