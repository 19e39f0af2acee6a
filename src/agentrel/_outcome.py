"""The outcome rules (docs/concepts.md), as pure functions: when a call or a run is success,
recovered, exhausted or failed, and which disposition a token gets.

* ``success``: succeeded with no failure anywhere inside.
* ``recovered``: succeeded, and at least one failure was absorbed inside.
* ``exhausted``: failed after the recovery machinery tried (a failure inside was followed by
  more attempts).
* ``failed``: failed with no recovery attempted.

Tokens: a failed attempt's tokens are ``wasted`` even when its call then recovers; a failed or
rejected call wastes all of its tokens; a failed run wastes every token inside it; everything
else is ``useful``.
"""

from __future__ import annotations

from . import _catalogue as cat


def call_outcome(failed: bool, attempts: int, retried: bool, failures_inside: int) -> str:
    """A call's outcome: ``failed`` (it ended as a failure), its ``attempts``, whether a
    failure inside it was followed by another attempt or call (``retried``), and how many
    failures happened inside it (its own failed attempts and those of calls nested in it)."""
    if failed:
        return cat.EXHAUSTED if (attempts > 1 or retried) else cat.FAILED
    return cat.RECOVERED if failures_inside else cat.SUCCESS


def run_outcome(failed: bool, retried: bool, retry_depth: int) -> str:
    """A run's outcome: ``failed`` (an exception left it), whether an attempt followed a
    failure inside it (``retried``), and its retry depth (failures inside it)."""
    if failed:
        return cat.EXHAUSTED if retried else cat.FAILED
    return cat.RECOVERED if retry_depth else cat.SUCCESS


def disposition(failed: bool) -> str:
    """The disposition of the tokens of an attempt, call or run that ended ``failed`` (or
    rejected) or not."""
    return cat.WASTED if failed else cat.USEFUL


def absorbed(run_failed: bool) -> str:
    """``agentrel.absorbed`` of the failures inside a run (or a call outside any run) that
    ended ``run_failed`` or not."""
    return "false" if run_failed else "true"
