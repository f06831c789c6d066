"""The lendsms PII analysis as presidio-analyzer recognizers.

One :class:`presidio_analyzer.EntityRecognizer` subclass per entity, so the
analysis plugs into any presidio ``AnalyzerEngine`` (a review tool, a batch
audit). ``analyze`` runs the shared scan of :mod:`filters.pii.scanner`
(normalisation, context words, checksums), so an engine with these
recognizers finds exactly what the gateway's PII stage finds; the stage calls
the scan directly because the engine's per-call overhead alone is far over
the stage's time budget (``bench/filters.py`` measures both).
``validate_result`` answers presidio's question for one value on its own: is
it valid (checksum), merely shaped right (``None``), or not this entity.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final

import phonenumbers
from phonenumbers import NumberParseException
from presidio_analyzer import EntityRecognizer, RecognizerResult

from filters.pii.checksums import (
    card_prefix_plausible,
    cn_id_checksum_ok,
    cn_id_shape_ok,
    luhn_ok,
    ssn_ok,
)
from filters.pii.names import surname_of
from filters.pii.scanner import PiiMatch, scan

__all__ = [
    "PRESIDIO_ENTITY",
    "LendsmsBankCardRecognizer",
    "LendsmsCnIdRecognizer",
    "LendsmsEmailRecognizer",
    "LendsmsMobileRecognizer",
    "LendsmsNameRecognizer",
    "LendsmsPassportRecognizer",
    "LendsmsRecognizer",
    "LendsmsSsnRecognizer",
    "lendsms_recognizers",
]

# lendsms entity -> presidio entity type (presidio's own names where it has one)
PRESIDIO_ENTITY: Final = {
    "cn_id": "CN_RESIDENT_ID",
    "bank_card": "CREDIT_CARD",
    "mobile": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS",
    "us_ssn": "US_SSN",
    "passport": "PASSPORT",
    "person_name": "PERSON",
}


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx").upper()


class _LastScan:
    """The scan of the last text seen: an engine calls every recognizer on the
    same text, and one scan serves them all."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[str, tuple[PiiMatch, ...]] | None = None

    def __call__(self, text: str) -> tuple[PiiMatch, ...]:
        last = self._last  # one read: safe if engines share recognizers across threads
        if last is None or last[0] != text:
            last = self._last = (text, scan(text))
        return last[1]


class LendsmsRecognizer(EntityRecognizer, ABC):
    """Base: one lendsms entity, analysed by the shared scan."""

    ENTITY: ClassVar[str]

    def __init__(self, supported_language: str = "zh", *, shared: _LastScan | None = None) -> None:
        self._scan = shared or _LastScan()
        self._label = f"lendsms_{self.ENTITY}_{supported_language}"
        super().__init__(
            supported_entities=[PRESIDIO_ENTITY[self.ENTITY]],
            name=self._label,
            supported_language=supported_language,
        )

    def load(self) -> None:
        """Nothing to load: no model, no file."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None
    ) -> list[RecognizerResult]:
        wanted = PRESIDIO_ENTITY[self.ENTITY]
        if entities and wanted not in entities:
            return []
        return [
            RecognizerResult(
                wanted,
                m.start,
                m.end,
                m.score,
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: self._label,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                },
            )
            for m in self._scan(text)
            if m.entity == self.ENTITY
        ]

    @abstractmethod
    def validate_result(self, pattern_text: str) -> bool | None:
        """True: the checksum proves it; None: shape only; False: not this entity."""


class LendsmsCnIdRecognizer(LendsmsRecognizer):
    ENTITY = "cn_id"

    def validate_result(self, pattern_text: str) -> bool | None:
        value = _digits(pattern_text)
        if not cn_id_shape_ok(value):
            return False
        return True if cn_id_checksum_ok(value) else None


class LendsmsBankCardRecognizer(LendsmsRecognizer):
    ENTITY = "bank_card"

    def validate_result(self, pattern_text: str) -> bool | None:
        value = _digits(pattern_text)
        if not value.isdigit() or not 13 <= len(value) <= 19:
            return False
        return True if luhn_ok(value) and card_prefix_plausible(value) else None


class LendsmsMobileRecognizer(LendsmsRecognizer):
    ENTITY = "mobile"

    def validate_result(self, pattern_text: str) -> bool | None:
        region = None if pattern_text.lstrip().startswith("+") else "CN"
        try:
            number = phonenumbers.parse(pattern_text, region)
        except NumberParseException:
            return False
        kind = phonenumbers.number_type(number)
        mobile = kind in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        )
        return mobile and phonenumbers.is_valid_number(number)


class LendsmsEmailRecognizer(LendsmsRecognizer):
    ENTITY = "email"

    def validate_result(self, pattern_text: str) -> bool | None:
        return any(m.entity == "email" for m in scan(pattern_text))


class LendsmsSsnRecognizer(LendsmsRecognizer):
    ENTITY = "us_ssn"

    def validate_result(self, pattern_text: str) -> bool | None:
        return ssn_ok(_digits(pattern_text))


class LendsmsPassportRecognizer(LendsmsRecognizer):
    ENTITY = "passport"

    def validate_result(self, pattern_text: str) -> bool | None:
        return None  # no checksum: only a passport word next to it decides


class LendsmsNameRecognizer(LendsmsRecognizer):
    ENTITY = "person_name"

    def validate_result(self, pattern_text: str) -> bool | None:
        surname = surname_of(pattern_text)
        return None if surname and 1 <= len(pattern_text) - len(surname) <= 2 else False


def lendsms_recognizers(language: str) -> list[LendsmsRecognizer]:
    """One recognizer per entity, for an engine running ``language``."""
    classes: tuple[type[LendsmsRecognizer], ...] = (
        LendsmsCnIdRecognizer,
        LendsmsBankCardRecognizer,
        LendsmsMobileRecognizer,
        LendsmsEmailRecognizer,
        LendsmsSsnRecognizer,
        LendsmsPassportRecognizer,
        LendsmsNameRecognizer,
    )
    shared = _LastScan()
    return [cls(supported_language=language, shared=shared) for cls in classes]
