"""presidio-analyzer ``AnalyzerEngine``s built fully offline.

The gateway's PII stage does not use an engine (it calls the scan directly;
see ``bench/filters.py`` for why). These engines exist for comparison and for
tools that want the presidio API:

* :func:`stock_engine`: presidio's default recognizers, as shipped. Its NLP
  engine is spaCy over ``spacy.blank("en")`` (a tokenizer, no model: nothing
  is downloaded, so the NER recognizer finds nothing), and its e-mail
  recognizer validates domains against tldextract's bundled public-suffix
  snapshot instead of fetching the list from the internet.
* :func:`lendsms_engine`: the lendsms recognizers for ``zh`` and ``en`` on
  presidio's no-op NLP engine.

Neither opens a network connection while it is built or while it analyses
(``tests/unit/test_pii_offline.py`` fails if one does).
"""

from __future__ import annotations

import spacy
import tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import EmailRecognizer
from spacy.language import Language

from filters.pii.recognizers import lendsms_recognizers

__all__ = ["BlankSpacyNlpEngine", "OfflineEmailRecognizer", "lendsms_engine", "stock_engine"]

LANGUAGES = ("zh", "en")


class BlankSpacyNlpEngine(SpacyNlpEngine):
    """presidio's spaCy engine over blank pipelines: tokens only, no model to
    load or download."""

    def load(self) -> None:
        nlp: dict[str, Language] = {
            m["lang_code"]: spacy.blank(m["lang_code"]) for m in self.models
        }
        self.nlp = nlp  # type: ignore[assignment]  # presidio's __init__ sets it to None


class OfflineEmailRecognizer(EmailRecognizer):
    """presidio's e-mail recognizer; domains are checked against tldextract's
    bundled suffix list (no fetch, no cache directory)."""

    _extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._extract(pattern_text).fqdn != "")


def stock_engine() -> AnalyzerEngine:
    """presidio's default ``AnalyzerEngine`` (English, its stock recognizers)."""
    nlp = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    engine = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine.registry.remove_recognizer("EmailRecognizer")
    engine.registry.add_recognizer(OfflineEmailRecognizer())
    return engine


def lendsms_engine() -> AnalyzerEngine:
    """An ``AnalyzerEngine`` holding only the lendsms recognizers (zh and en)."""
    registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
    for language in LANGUAGES:
        for recognizer in lendsms_recognizers(language):
            registry.add_recognizer(recognizer)
    nlp = NoOpNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in LANGUAGES])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=list(LANGUAGES))
