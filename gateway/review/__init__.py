"""Compliance review (API.md "Compliance review", DESIGN.md invariant 8): the
queue of held and blocked messages, approving and rejecting held ones, and
revealing an original text to a reviewer who may see it — each action audited
with the reviewer's name before it takes effect."""
