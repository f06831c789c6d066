"""Structured JSON logs. Only fields named here are written; callers pass
ids and codes, never numbers, bodies, codes or keys."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
message_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("message_id", default=None)

_ALLOWED_EXTRA = frozenset(
    {
        "method", "route", "status", "duration_ms", "client", "key_id", "outcome", "purpose",
        "provider", "result", "code", "attempt", "event", "instance", "reason", "count",
        "host", "port", "backend", "path_template",
    }
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid, mid = request_id.get(), message_id.get()
        if rid:
            out["request_id"] = rid
        if mid:
            out["message_id"] = mid
        for key in _ALLOWED_EXTRA:
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.__dict__.get("message_id_field"):
            out["message_id"] = record.__dict__["message_id_field"]
        if record.exc_info and record.exc_info[0] is not None:
            # the exception type only: a traceback's locals or args may hold personal data
            out["error"] = record.exc_info[0].__name__
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").disabled = True
