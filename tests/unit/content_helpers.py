"""Helpers for the content-filter unit tests."""

from __future__ import annotations

from filters.content import ContentFilter, ContentResult, MessageContext

SIG = "【快贷宝】"


def check(
    f: ContentFilter, text: str, purpose: str = "overdue_notice", **kw: object
) -> ContentResult:
    return f.check(text, MessageContext(purpose, **kw))  # type: ignore[arg-type]
