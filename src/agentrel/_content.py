"""Opt-in content capture: text goes on spans only with ``configure(capture_content=True)``,
and always through the user's ``redact`` hook first.

Never on metrics: no argument, result or message text ever becomes a label.
"""

from __future__ import annotations

import json
from typing import Any

from ._guard import telemetry_error
from ._runtime import T

#: Longest text put on a span attribute (characters, before redaction).
LIMIT = 4096


def content(value: Any) -> str | None:
    """``value`` as redacted text for a span, or ``None`` if capture is off or redaction
    failed (unredacted text is never recorded)."""
    if not T.capture_content:
        return None
    try:
        if isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, default=repr, ensure_ascii=False)
            except (TypeError, ValueError):
                text = repr(value)
        if len(text) > LIMIT:
            text = text[:LIMIT] + "…"
        redact = T.redact
        if redact is not None:
            text = redact(text)
            if not isinstance(text, str):
                raise TypeError(f"redact() must return a str, got {type(text).__name__}")
        return text
    except Exception as exc:
        telemetry_error("redact", exc)
        return None


def exception_content(exc: BaseException) -> str | None:
    """An exception's message as captured content (``content``), or ``None``: capture off,
    redaction failed, or the exception's own ``__str__`` raised (then it has no message, which
    is no telemetry error)."""
    if not T.capture_content:
        return None
    try:
        text = str(exc)
    except Exception:
        return None
    return content(text)


def set_content(span: Any, key: str, value: Any) -> None:
    """Put captured content on a recording span (a no-op when capture is off)."""
    if span is None or not T.capture_content or not span.is_recording():
        return
    text = content(value)
    if text is not None:
        span.set_attribute(key, text)
