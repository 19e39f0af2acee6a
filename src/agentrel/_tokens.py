"""Token tallies: small dicts keyed by (model, ``gen_ai.token.type``), never lists."""

from __future__ import annotations

from ._guard import OwnMessage

TokenKey = tuple[str | None, str]  # (model, gen_ai.token.type)
Tokens = dict[TokenKey, int]

#: Token types that are parts of the input tokens (cached input, for pricing: ``_cost``):
#: carried in the tallies beside the input, never counted as tokens of their own.
CACHE_READ = "cache_read"
CACHE_WRITE = "cache_write"
SUBSETS = frozenset((CACHE_READ, CACHE_WRITE))


def merge(into: Tokens, src: Tokens) -> None:
    """Add ``src`` into ``into``."""
    for k, v in src.items():
        into[k] = into.get(k, 0) + v


def total(tokens: Tokens | None) -> int:
    """Tokens in a tally, the cache subsets not counted again."""
    n = 0
    if tokens:
        for (_, ttype), v in tokens.items():
            if ttype not in SUBSETS:
                n += v
    return n


def by_type(*tallies: Tokens | None) -> dict[str, int]:
    """Totals per ``gen_ai.token.type`` over the tallies given."""
    out: dict[str, int] = {}
    for src in tallies:
        if src:
            for (_, ttype), n in src.items():
                if ttype not in SUBSETS:
                    out[ttype] = out.get(ttype, 0) + n
    return out


#: The largest token count accepted in one call (2**32 - 1, about 4.3 billion: a thousand
#: times the largest context window). A larger count is refused where it enters (a counted
#: telemetry error, nothing recorded): cumulative sums are exported as 64-bit integers (OTLP)
#: and read as doubles (Prometheus, exact up to 2**53), so one absurd count would otherwise
#: break every later export of the process. Under this cap, 2**21 (two million) calls of the
#: largest size still sum exactly, and 2**31 of them fit an int64.
MAX_COUNT = 2**32 - 1


class TokenCountError(OwnMessage, ValueError):
    """A token count that is not a non-negative int up to ``MAX_COUNT`` (its message names
    the type only)."""


def count(value: object, what: str) -> int:
    """A token count from the user: ``None`` is 0; anything but an int from 0 to
    ``MAX_COUNT`` is a ``ValueError`` (which the caller's guard counts and ignores)."""
    if type(value) is int and 0 <= value <= MAX_COUNT:  # the usual case, in one test
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TokenCountError(
            f"agentrel.record_tokens: {what} must be a non-negative int, got "
            + (repr(value) if isinstance(value, (int, float)) else type(value).__name__)
        )
    if value > MAX_COUNT:
        raise too_large(what)
    return value


def too_large(what: str) -> TokenCountError:
    """The error of a count over ``MAX_COUNT`` (the value itself is not in the message)."""
    return TokenCountError(
        f"agentrel: {what} token count over {MAX_COUNT:,} in one call refused "
        "(exporters could not encode the sums)"
    )
