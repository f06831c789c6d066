"""Personal data in outbound SMS: find it (:func:`scan`) and mask it
(:func:`mask_text`). Pure: text in, matches out; no I/O, no clock.

Entities: ``cn_id`` (resident ID, 18-digit GB 11643 with its MOD 11-2 check,
or 15-digit legacy), ``bank_card`` (13-19 digits, Luhn, or an account number
next to an account word), ``mobile`` (Chinese mobiles with or without
+86/0086/86, other countries' in international form; hotlines kept),
``email``, ``us_ssn``, ``passport`` (next to a passport word) and
``person_name`` (Chinese names in address positions and third-party
mentions). :mod:`filters.pii.recognizers` offers the same analysis as
presidio-analyzer recognizers.
"""

from filters.pii.masking import mask_text, mask_value, script_of
from filters.pii.scanner import ENTITIES, PiiMatch, scan

__all__ = ["ENTITIES", "PiiMatch", "mask_text", "mask_value", "scan", "script_of"]
