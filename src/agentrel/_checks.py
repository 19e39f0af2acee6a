"""Checks made once, at decoration or run open: argument values, and what may be decorated.

Names come from code. A scope is named by an explicit ``name=`` or by the decorated function's
own ``__name__`` (a function, method, builtin or class-level callable defined in code), never by
``repr()``: the repr of a ``functools.partial`` carries its bound arguments (an API key, say)
and the repr of a callable instance carries a memory address, which makes every process and
every instance a new label value. Such a callable is a ``TypeError`` asking for ``name=`` (see
docs/api.md, "Names"). A lambda is named ``<lambda>``, as Python names it (from code, bounded):
every lambda shares that one name unless given ``name=``.
"""

from __future__ import annotations

import inspect
from typing import Any

from . import _catalogue as cat

#: set on every call-scope wrapper (``@tool``, ``@llm``) to the function it wraps, as its
#: ``__wrapped__`` is; someone else's ``functools.wraps`` copy of our wrapper gets the mark
#: too, but its ``__wrapped__`` is our wrapper, so only agentrel's own wrapper matches.
MARK = "__agentrel_wraps__"


def check_str(value: object, what: str, *, optional: bool = True, utf8: bool = True) -> None:
    """A name from code: a non-empty str with a UTF-8 form (OTLP cannot carry a lone
    surrogate). ``utf8=False`` for a run's cohort, which is data: it is checked against the
    allowlist instead (anything not on it, surrogates included, is ``other``)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {value!r}")
    if utf8 and not cat.has_utf8(value):
        raise ValueError(f"{what} must be encodable as UTF-8 (no lone surrogates), got {value!r}")


def check_callable(value: object, what: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__}")


def check_bool(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")


def first_line(doc: str | None) -> str | None:
    if not doc:
        return None
    line = inspect.cleandoc(doc).split("\n", 1)[0].strip()
    return line or None


def code_name(fn: Any, what: str) -> str:
    """The name a scope gets from the decorated callable itself: its ``__name__``, when it has
    one of its own (a function, method or builtin defined in code: it has ``__qualname__``
    too). Anything else (a ``functools.partial``, a callable instance) is a ``TypeError`` that
    asks for ``name=``; the message names the type, never the repr."""
    own = getattr(fn, "__name__", None) if hasattr(fn, "__qualname__") else None
    if isinstance(own, str) and own:
        return own
    raise TypeError(
        f"@agentrel.{what} cannot name a {type(fn).__qualname__} object after its code (its "
        f"repr may carry bound arguments or a memory address): give it a name, e.g. "
        + ("agentrel.agent('support')(...)" if what == "agent" else f"agentrel.{what}(name=...)")
    )


def check_target(obj: Any, what: str) -> None:
    """What ``@agentrel.{what}`` may wrap: a callable that is not a class, and not already a
    tool or LLM call of agentrel's (that would count each call twice)."""
    if inspect.isclass(obj):
        raise TypeError(
            f"@agentrel.{what} decorates functions and methods, not a class "
            f"({obj.__qualname__}): decorate its methods instead"
        )
    if not callable(obj):
        raise TypeError(f"@agentrel.{what} decorates a callable, got {type(obj).__name__}")
    inner = getattr(obj, MARK, None) if what != "agent" else None
    if inner is not None and inner is getattr(obj, "__wrapped__", None):
        raise TypeError(
            f"{getattr(obj, '__qualname__', type(obj).__qualname__)} is already decorated by "
            f"agentrel: decorate it once (a second decoration would count each call twice)"
        )


def mark(wrapper: Any, fn: Any) -> Any:
    """Mark ``wrapper`` (of ``fn``) as agentrel's: ``check_target`` refuses to wrap it again."""
    setattr(wrapper, MARK, fn)  # our wrappers are plain functions
    return wrapper
