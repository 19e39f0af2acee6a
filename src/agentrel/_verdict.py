"""Verdicts after the run: ``Run.ref`` and ``agentrel.verdict(ref, verdict, source=...)``.

A run counted a success may be contradicted later (a thumbs down, a reopened ticket, an
offline judge), hours later and in another process. ``Run.ref`` is a short string the
application stores with the answer; it carries what labels the verdict (agent, cohort, the
outcome at close) and where the run's span is (trace id, span id, sampled flag), nothing of
the run's content. ``verdict()`` parses it strictly (a bad ref is a ``ValueError``), bounds the
verdict and source labels by their allowlists (``configure(verdicts=..., verdict_sources=...)``,
as cohorts are), counts ``agentrel.verdicts`` and writes the GenAI semconv
``gen_ai.evaluation.result`` event on a short span in the run's trace, a child of (and linked
to) the run's span. Anything else that goes wrong is a counted telemetry error, never an
exception into the host.

The ref, version 1: ``base64url`` (no padding) of the bytes
``version=1 | outcome index | flags (bit 0: sampled) | trace id (16) | span id (8) |
len(agent) | agent (UTF-8) | len(cohort) | cohort (UTF-8)``, lengths 1..255.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from . import _catalogue as cat
from . import _record
from ._content import content
from ._guard import telemetry_error
from ._runtime import T

__all__ = ["RunRef", "configure_allowlists", "reset", "run_ref", "verdict"]

VERSION = 1
_FIXED = 1 + 1 + 1 + 16 + 8  # version, outcome, flags, trace id, span id
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
#: the longest ref: both names at 255 bytes
MAX_REF_CHARS = math.ceil((_FIXED + 2 + 2 * 255) * 4 / 3)
_SAMPLED = 0x01

_verdicts: frozenset[str] = frozenset(cat.BUILTIN_VERDICTS)
_sources: frozenset[str] = frozenset()
_agents: frozenset[str] = frozenset()  # configure(verdict_agents=...)
#: agents whose runs made a ref in this process: their verdicts keep the name without
#: configuration. Bounded: agent names come from code, but a process could make them up.
_made: set[str] = set()
_MADE_MAX = 1024


@dataclass(frozen=True)
class RunRef:
    """What a run's ref carries: ``agent``, ``cohort`` (after the allowlist of the process that
    ran it), ``outcome`` at close, and the run span's ``trace_id`` / ``span_id`` (0 when the
    run had no span) and ``sampled`` flag. ``RunRef.parse(ref)`` reads one; ``str(ref)`` and
    ``encode()`` write it."""

    agent: str
    cohort: str
    outcome: str
    trace_id: int = 0
    span_id: int = 0
    sampled: bool = False

    def encode(self) -> str:
        """The ref string (raises ``ValueError`` for fields a ref cannot carry)."""
        if self.outcome not in cat.OUTCOMES:
            raise ValueError(f"outcome must be one of {cat.OUTCOMES}, got {self.outcome!r}")
        if not 0 <= self.trace_id < 1 << 128 or not 0 <= self.span_id < 1 << 64:
            raise ValueError("trace_id must fit 128 bits and span_id 64 bits")
        out = bytearray((VERSION, cat.OUTCOMES.index(self.outcome), _SAMPLED * self.sampled))
        out += self.trace_id.to_bytes(16, "big") + self.span_id.to_bytes(8, "big")
        for what, text in (("agent", self.agent), ("cohort", self.cohort)):
            raw = _utf8(what, text)
            out.append(len(raw))
            out += raw
        return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode("ascii")

    __str__ = encode

    @classmethod
    def parse(cls, ref: object) -> RunRef:
        """Read a ref; anything but a well-formed version-1 ref is a ``ValueError``."""
        if not isinstance(ref, str):
            raise ValueError(f"a run ref is a str, got {type(ref).__name__}")
        if not 0 < len(ref) <= MAX_REF_CHARS or not _B64URL.fullmatch(ref):
            raise ValueError("not a run ref: expected a short base64url string")
        try:
            raw = base64.urlsafe_b64decode(ref + "=" * (-len(ref) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("not a run ref: bad base64url") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != ref:
            raise ValueError("not a run ref: not canonical base64url")
        if len(raw) < _FIXED + 4:
            raise ValueError("not a run ref: too short")
        if raw[0] != VERSION:
            raise ValueError(f"run ref version {raw[0]} is not supported (this agentrel: 1)")
        if raw[1] >= len(cat.OUTCOMES):
            raise ValueError("not a run ref: unknown outcome")
        if raw[2] & ~_SAMPLED:
            raise ValueError("not a run ref: unknown flags")
        pos = _FIXED
        names = []
        for what in ("agent", "cohort"):
            n = raw[pos]
            text = raw[pos + 1 : pos + 1 + n]
            if n == 0 or len(text) != n:
                raise ValueError(f"not a run ref: bad {what}")
            try:
                names.append(text.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError(f"not a run ref: {what} is not UTF-8") from None
            pos += 1 + n
        if pos != len(raw):
            raise ValueError("not a run ref: trailing bytes")
        return cls(
            agent=names[0],
            cohort=names[1],
            outcome=cat.OUTCOMES[raw[1]],
            trace_id=int.from_bytes(raw[3:19], "big"),
            span_id=int.from_bytes(raw[19:27], "big"),
            sampled=bool(raw[2] & _SAMPLED),
        )


def _utf8(what: str, text: object) -> bytes:
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what} must be a non-empty str")
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"{what} is over 255 bytes of UTF-8: a ref cannot carry it")
    return raw


def run_ref(run: Any) -> str | None:
    """The ref of a finished run (``Run.ref``); ``None`` while it runs, or if its name cannot
    be carried (counted under ``telemetry_errors()["verdict.ref"]``)."""
    outcome = run.outcome
    if outcome is None:
        return None
    try:
        trace_id = span_id = 0
        sampled = False
        span = run.span
        if span is not None:
            sc = span.get_span_context()
            if sc.is_valid:
                trace_id, span_id, sampled = sc.trace_id, sc.span_id, sc.trace_flags.sampled
        ref = RunRef(run.name, run.cohort, outcome, trace_id, span_id, sampled).encode()
        if run.name not in _made and len(_made) < _MADE_MAX:
            _made.add(run.name)  # one C call on a set of str: no lock, nothing to fork-proof
        return ref
    except Exception as exc:
        telemetry_error("verdict.ref", exc)
        return None


# -- allowlists ----------------------------------------------------------------------------------
def validate_allowlist(what: str, values: object) -> frozenset[str]:
    """``configure(verdicts=...)`` / ``verdict_sources=``: an iterable of non-empty str."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{what} must be an iterable of str, got {values!r}")
    out = []
    for v in values:
        if not isinstance(v, str) or not v:
            raise TypeError(f"every one of {what} must be a non-empty str, got {v!r}")
        if not cat.has_utf8(v):
            raise ValueError(f"every one of {what} must be encodable as UTF-8, got {v!r}")
        out.append(v)
    return frozenset(out)


def configure_allowlists(
    verdicts: frozenset[str], sources: frozenset[str], agents: frozenset[str] = frozenset()
) -> None:
    """Set the allowlists (``configure()``); the built-in verdicts are always allowed."""
    global _verdicts, _sources, _agents
    # Plain rebinding of immutable sets: a verdict recorded meanwhile reads either the old or
    # the new allowlist, each whole. No lock (none to be held at a fork).
    _verdicts = frozenset(cat.BUILTIN_VERDICTS) | verdicts
    _sources = sources
    _agents = agents


def reset() -> None:
    """Back to the defaults (``testing.reset()``), forgetting the agents refs were made for."""
    configure_allowlists(frozenset(), frozenset())
    _made.clear()


def _label(value: str | None, allowed: frozenset[str], none: str | None) -> str:
    if value is None and none is not None:
        return none
    return value if value in allowed else cat.OTHER_VALUE


def _agent(agent: str) -> str:
    """A ref's agent name, bounded: a stored ref can be edited (or forged by whoever holds it),
    and its name must not become an unbounded label. Kept when a ref was made for that agent
    in this process or the agent is in ``configure(verdict_agents=...)``; else ``other``."""
    return agent if agent in _agents or agent in _made else cat.OTHER_VALUE


def _cohort(cohort: str) -> str:
    """A ref's cohort, bounded again by this process's cohort allowlist (a stored ref may have
    been edited, or made where the allowlist differs)."""
    if cohort in (cat.NO_COHORT, cat.OTHER_COHORT) or cohort in T.cohorts:
        return cohort
    return cat.OTHER_COHORT


# -- the verdict ---------------------------------------------------------------------------------
def verdict(
    ref: str,
    verdict: str,
    source: str | None = None,
    *,
    score: float | None = None,
    explanation: str | None = None,
) -> None:
    """Record a later verdict on a finished run (see the module docstring)."""
    parsed = RunRef.parse(ref)  # the one exception this function raises
    try:
        _verdict(parsed, verdict, source, score, explanation)
    except Exception as exc:
        telemetry_error("verdict", exc)


def _verdict(
    ref: RunRef, value: object, source: object, score: object, explanation: object
) -> None:
    if not isinstance(value, str):
        raise TypeError(f"verdict must be a str, got {type(value).__name__}")
    if source is not None and not isinstance(source, str):
        raise TypeError(f"source must be a str or None, got {type(source).__name__}")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        telemetry_error("verdict.score", TypeError("score must be a number"))
        score = None
    if not (T.active or T.refresh()):
        return
    label = _label(value, _verdicts, None)
    src = _label(source, _sources, cat.NO_SOURCE)
    attrs = {
        cat.AGENT: _agent(ref.agent),
        cat.COHORT: _cohort(ref.cohort),
        cat.OUTCOME: ref.outcome,
        cat.VERDICT: label,
        cat.VERDICT_SOURCE: src,
    }
    ctx = None
    try:
        ctx = _span(ref, attrs, label, src, score, explanation)
    except Exception as exc:
        telemetry_error("verdict.span", exc)
    _record.verdict(attrs, ctx)


def _span(
    ref: RunRef,
    attrs: dict[str, str],
    label: str,
    src: str,
    score: object,
    explanation: object,
) -> Any:
    """The verdict's span, a child of the run's span (and linked to it), holding the
    ``gen_ai.evaluation.result`` event; returns its context (for the counter's exemplar)."""
    parent = None
    links = []
    if ref.trace_id and ref.span_id:
        flags = TraceFlags(TraceFlags.SAMPLED if ref.sampled else TraceFlags.DEFAULT)
        run_sc = SpanContext(ref.trace_id, ref.span_id, is_remote=True, trace_flags=flags)
        parent = trace.set_span_in_context(NonRecordingSpan(run_sc))
        links.append(Link(run_sc))
    span_attrs = {
        cat.AGENT: attrs[cat.AGENT],
        cat.COHORT: attrs[cat.COHORT],
        cat.VERDICT_RUN_OUTCOME: ref.outcome,
    }
    span = T.tracer.start_span(
        f"verdict {attrs[cat.AGENT]}",
        context=parent,
        kind=SpanKind.INTERNAL,
        attributes=span_attrs,
        links=links,
    )
    try:
        if span.is_recording():
            event: dict[str, Any] = {
                cat.EVALUATION_NAME: src,
                cat.EVALUATION_SCORE_LABEL: label,
            }
            if score is not None:
                event[cat.EVALUATION_SCORE_VALUE] = float(score)  # type: ignore[arg-type]
            if explanation is not None:
                text = content(explanation)
                if text is not None:
                    event[cat.EVALUATION_EXPLANATION] = text
            span.add_event(cat.EVENT_EVALUATION_RESULT, event)
    finally:
        span.end()
    return trace.set_span_in_context(span)
