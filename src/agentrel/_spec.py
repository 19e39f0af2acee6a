"""What is known about a call site before it runs (``CallSpec``), computed once, and the
``error.type`` of an exception."""

from __future__ import annotations

from typing import Any, Literal

from opentelemetry.trace import SpanKind

from . import _catalogue as cat

CallKind = Literal["tool", "llm", "fallback"]


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class's qualified name, never its message."""
    return type(exc).__qualname__


class CallSpec:
    """What is known about a call site before it runs: computed once, at decoration."""

    __slots__ = (
        "_error_attrs",
        "composite",
        "idempotent",
        "kind",
        "model",
        "name",
        "name_attrs",
        "outcome_attrs",
        "provider",
        "span_attrs",
        "span_kind",
        "span_name",
        "system",
        "target",
    )

    def __init__(
        self,
        name: str,
        kind: CallKind = "tool",
        *,
        span_name: str | None = None,
        span_attrs: dict[str, Any] | None = None,
        idempotent: bool = True,
        system: str | None = None,
        model: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.span_name = span_name or (
            f"chat {model}" if kind == "llm" and model else f"execute_tool {name}"
        )
        self.span_attrs = dict(span_attrs or {})
        # GenAI semconv: an inference span is CLIENT; tools and chains are INTERNAL.
        self.span_kind = SpanKind.CLIENT if kind == "llm" else SpanKind.INTERNAL
        #: the function a decorator wrapped (lets a retry integration tell whether the
        #: current call is the tool around the very function it retries).
        self.target: Any = None
        #: its attempts are made of other work (a fallback chain's tiers): the run counts an
        #: attempt only when no decorated call ran inside it (that call counted itself), and
        #: a retry loop inside a tier belongs to the tier's work, not to this call.
        self.composite = kind == "fallback"
        self.idempotent = idempotent
        self.system = system
        self.model = model
        self.provider = provider
        self.name_attrs = {cat.TOOL: name}
        self.outcome_attrs = {o: {cat.TOOL: name, cat.OUTCOME: o} for o in cat.OUTCOMES}
        self._error_attrs: dict[str | None, dict[str, str]] = {None: self.name_attrs}

    def error_attrs(self, etype: str | None) -> dict[str, str]:
        attrs = self._error_attrs.get(etype)
        if attrs is None:
            attrs = self._error_attrs[etype] = {cat.TOOL: self.name, cat.ERROR_TYPE: etype or ""}
        return attrs
