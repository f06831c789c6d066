"""What the contact check of one purpose needs to know, so a store can make it
in the same step as the cap reservation (gateway/policy/redis_store.py): the
opt-out scopes that stop the purpose and the consent it needs. Same answer as
:func:`gateway.policy.optouts.refusal` for every state."""

from __future__ import annotations

from dataclasses import dataclass

from config.contact import OPT_OUT_SCOPES, ContactPack, purposes_under
from gateway.policy.optouts import ContactState


@dataclass(frozen=True, slots=True)
class ContactGate:
    opt_out_scopes: tuple[str, ...]  # an opt-out with any of these stops the message
    consent: str | None  # the purpose, when the pack needs a recorded consent for it

    @classmethod
    def of(cls, pack: ContactPack, purpose: str) -> ContactGate:
        scopes = tuple(s for s in OPT_OUT_SCOPES if purpose in purposes_under([s]))
        needs = purpose in pack.opt_out.consent_required
        return cls(scopes, purpose if needs else None)

    def refusal(self, state: ContactState) -> str | None:
        """``opt_out``, ``no_consent`` or None, as the store's script answers."""
        if any(scope in state.opt_outs for scope in self.opt_out_scopes):
            return "opt_out"
        if self.consent is not None and self.consent not in state.consents:
            return "no_consent"
        return None
