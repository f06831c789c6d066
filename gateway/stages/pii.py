"""The PII stage: personal data in the submitted text is masked, or the
message blocked, as the client's policy pack says per entity.

Runs right after ``NormalizeStage`` and reuses its normalised text. Findings
carry offsets into the submitted text (for a template message: the rendered
text, so placeholder values are analysed in their place like free text); the
returned body is the masked text, which is what the 202 answer shows and what
reaches the provider.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.policies import PiiRule, PolicyPack, default_rule, shipped_packs
from filters.normalize import Normalized, normalize
from filters.pii import ENTITIES, PiiMatch, mask_text, scan, script_of
from gateway.models import Action, Decision, Finding
from gateway.pipeline import Draft, StageResult

__all__ = ["PiiStage"]

_NOTHING = StageResult()
_DEFAULT_RULES: Mapping[str, PiiRule] = {entity: default_rule(entity) for entity in ENTITIES}


class PiiStage:
    name = "pii"

    def __init__(self, packs: Mapping[str, PolicyPack] | None = None) -> None:
        self.packs = shipped_packs() if packs is None else packs

    async def __call__(self, draft: Draft) -> StageResult:
        return self.evaluate(
            draft.request.text, draft.client.policy, normalized=draft.normalized, body=draft.body
        )

    def evaluate(
        self,
        text: str,
        policy: str,
        *,
        normalized: Normalized | None = None,
        body: str | None = None,
    ) -> StageResult:
        """The stage's answer for ``text`` under ``policy``; ``body`` is the
        current body when an earlier stage already rewrote it."""
        matches = scan(text, normalized)
        if not matches:
            return _NOTHING
        rules = self.rules(policy)
        findings = tuple(
            Finding(
                kind="pii",
                rule=f"pii.{m.entity}",
                category=m.entity,
                action=Action(rules[m.entity].action),
                start=m.start,
                end=m.end,
            )
            for m in matches
        )
        masked = self._mask(text, matches, rules)
        if body is not None and body != text:
            masked = self._mask(body, scan(body, normalize(body)), rules)
        blocked = any(f.action is Action.BLOCK for f in findings)
        return StageResult(
            findings=findings, body=masked, decision=Decision.BLOCK if blocked else None
        )

    def rules(self, policy: str) -> Mapping[str, PiiRule]:
        """The pack's PII rules; an unknown pack masks everything by default."""
        pack = self.packs.get(policy)
        return pack.pii if pack is not None else _DEFAULT_RULES

    @staticmethod
    def _mask(text: str, matches: tuple[PiiMatch, ...], rules: Mapping[str, PiiRule]) -> str:
        script = script_of(text)
        return mask_text(text, matches, lambda entity: rules[entity].mask_format(script))
