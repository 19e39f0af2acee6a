"""Token tallies: small dicts keyed by (model, ``gen_ai.token.type``), never lists."""

from __future__ import annotations

TokenKey = tuple[str | None, str]  # (model, gen_ai.token.type)
Tokens = dict[TokenKey, int]


def merge(into: Tokens, src: Tokens) -> None:
    """Add ``src`` into ``into``."""
    for k, v in src.items():
        into[k] = into.get(k, 0) + v


def total(tokens: Tokens | None) -> int:
    return sum(tokens.values()) if tokens else 0


def by_type(*tallies: Tokens | None) -> dict[str, int]:
    """Totals per ``gen_ai.token.type`` over the tallies given."""
    out: dict[str, int] = {}
    for src in tallies:
        if src:
            for (_, ttype), n in src.items():
                out[ttype] = out.get(ttype, 0) + n
    return out


def count(value: object, what: str) -> int:
    """A token count from the user: ``None`` is 0; anything but a non-negative int is a
    ``ValueError`` (which the caller's guard counts and ignores)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"agentrel.record_tokens: {what} must be a non-negative int, got {value!r}"
        )
    return value
