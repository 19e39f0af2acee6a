"""A run's ledger: its figures and every change to them (``_run.Run.ledger``).

Every change is a method here, made under the ledger's lock and nothing but plain integer and
dict updates (no callback into the host, no telemetry). Two production faults shape that lock:

* The garbage collector can run a finaliser inside any allocation, including one made while
  the lock is held, and a finaliser may call a decorated tool of the same run. The lock is
  re-entrant, and an update that arrives while this thread is already inside an update of the
  same ledger is queued and applied by the outer one before it lets go: no deadlock, no lost
  update.
* A fork while another thread holds the lock would leave it held forever in the child: every
  live ledger's lock is replaced in the child (``os.register_at_fork``).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from typing import Any

from . import _catalogue as cat
from ._outcome import run_outcome
from ._runtime import T
from ._spec import CallSpec
from ._tokens import Tokens, merge, total


def _after_fork_in_child() -> None:
    """Replace the lock of every live ledger (a thread of the parent may have held one at the
    fork: it would never be released here). Found through the garbage collector's list of
    objects, so the hot path keeps no registry; only when runs were open at the fork."""
    if not T.open_runs:
        return
    for obj in gc.get_objects():
        if isinstance(obj, Ledger):
            obj._lock = threading.RLock()
            obj._depth = 0
            obj._pending = []


os.register_at_fork(after_in_child=_after_fork_in_child)


#: A run's figures at the moment it was classified (``Ledger.close``): its outcome, failures
#: by (tool, error.type), useful and wasted tokens, attempts by call kind (GenAI semconv).
Closed = tuple[str, dict[tuple[str, str], int], Tokens, Tokens, dict[str, int]]


class Ledger:
    """The figures of one run and every change to them (``Run.ledger``). Read-only outside
    this class: ``attempts``, ``retry_depth``, ``recovery_time``, ``outcome`` and the token
    figures."""

    __slots__ = (
        "_closed",
        "_depth",
        "_failed_tools",
        "_failures",
        "_kinds",
        "_last_call",
        "_lock",
        "_pending",
        "_retried",
        "_useful",
        "_wasted",
        "attempts",
        "outcome",
        "recovery_time",
        "retry_depth",
    )

    def __init__(self) -> None:
        self.attempts = 0
        self.retry_depth = 0
        self.recovery_time = 0.0
        self.outcome: str | None = None
        self._retried = False
        self._failures: dict[tuple[str, str], int] = {}
        self._failed_tools: set[str] = set()
        self._kinds: dict[str, int] = {}  # attempts by call kind (GenAI semconv call counts)
        self._useful: Tokens = {}
        self._wasted: Tokens = {}
        self._last_call: tuple[str, Tokens] | None = None
        self._lock = threading.RLock()
        self._depth = 0  # 1 while an update runs (a re-entered update is queued, not run)
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        # Classified: its figures are final. Work that ends later (a task or thread that
        # outlived the run) is recorded as work outside any run (``_call._hand_over``).
        self._closed = False

    # -- live figures ------------------------------------------------------------------------
    @property
    def useful_tokens(self) -> int:
        """Tokens on the path that produced the answer so far (all of them wasted if the run
        fails)."""
        return total(self._useful)

    @property
    def wasted_tokens(self) -> int:
        """Tokens spent on failed, rejected or thrown-away work."""
        return total(self._wasted)

    @property
    def tokens(self) -> int:
        """All tokens recorded in this run."""
        return self.useful_tokens + self.wasted_tokens

    @property
    def token_amplification(self) -> float | None:
        """All tokens ÷ useful tokens (1.0 = nothing wasted); ``None`` with no useful tokens."""
        useful = self.useful_tokens
        return (useful + self.wasted_tokens) / useful if useful else None

    def token_tallies(self) -> tuple[Tokens, Tokens]:
        """Copies of the (useful, wasted) token tallies so far."""
        with self._lock:
            return dict(self._useful), dict(self._wasted)

    # -- the ledger: every change to a run's figures ----------------------------------------
    def _drain(self) -> None:
        """Apply the updates queued while an update ran (call with the lock held)."""
        pending = self._pending
        while pending:
            method, args = pending.pop(0)
            method(*args)

    def attempt_started(self, spec: CallSpec, first_of_call: bool) -> bool:
        """Count an attempt; return True when it is a retry of a non-idempotent tool that
        already failed in this run (the agent loop calling it again). Not counted once the run
        has closed."""
        with self._lock:
            if self._depth:  # re-entered (a finaliser inside an update): queue it
                self._pending.append((self.attempt_started, (spec, first_of_call)))
                return False
            if self._closed:
                return False
            self._depth = 1
            try:
                self.attempts += 1
                kinds, kind = self._kinds, spec.kind
                kinds[kind] = kinds.get(kind, 0) + 1
                if self.retry_depth:
                    self._retried = True
                unsafe = first_of_call and not spec.idempotent and spec.name in self._failed_tools
            finally:
                self._depth = 0
            if self._pending:
                self._drain()
            return unsafe

    def add_recovery_time(self, seconds: float) -> None:
        """A backoff wait inside the run (the one place recovery time grows besides failed
        attempts)."""
        with self._lock:
            if self._depth:  # re-entered (a finaliser inside an update): queue it
                self._pending.append((self.add_recovery_time, (seconds,)))
                return
            if not self._closed:
                self.recovery_time += seconds

    def count_failure(self, name: str, etype: str, wasted_time: float) -> bool:
        """Count a failure of the run; False (nothing counted) once the run has closed."""
        with self._lock:
            if self._depth:  # re-entered (a finaliser inside an update): queue it
                self._pending.append((self.count_failure, (name, etype, wasted_time)))
                return True
            if self._closed:
                return False
            self._depth = 1
            try:
                self.retry_depth += 1
                self.recovery_time += wasted_time
                key = (name, etype)
                self._failures[key] = self._failures.get(key, 0) + 1
                self._failed_tools.add(name)
            finally:
                self._depth = 0
            if self._pending:
                self._drain()
            return True

    def add_tokens(self, tokens: Tokens) -> bool:
        """Tokens recorded in the run outside any call (useful until the run's fate is known);
        False once the run has closed."""
        with self._lock:
            if self._depth:  # re-entered (a finaliser inside an update): queue it
                self._pending.append((self.add_tokens, (tokens,)))
                return True
            if self._closed:
                return False
            self._depth = 1
            try:
                merge(self._useful, tokens)
            finally:
                self._depth = 0
            if self._pending:
                self._drain()
            return True

    def take_call(
        self, name: str, useful: Tokens | None, wasted: Tokens | None, failed: bool
    ) -> bool:
        """A call made directly in the run ended: take its tokens (the last successful one is
        what ``agentrel.reject()`` rejects). False once the run has closed."""
        with self._lock:
            if self._depth:  # re-entered (a finaliser inside an update): queue it
                self._pending.append((self.take_call, (name, useful, wasted, failed)))
                return True
            if self._closed:
                return False
            self._depth = 1
            try:
                if useful:
                    merge(self._useful, useful)
                if wasted:
                    merge(self._wasted, wasted)
                self._last_call = None if failed else (name, useful or {})
            finally:
                self._depth = 0
            if self._pending:
                self._drain()
            return True

    def waste(self, useful: Tokens) -> None:
        """A call's useful tokens, already taken, become wasted (its output was thrown away
        later); no failure is counted."""
        with self._lock:
            if self._depth:  # re-entered (a finaliser inside an update): queue it
                self._pending.append((self.waste, (useful,)))
                return
            if self._closed:
                return
            self._depth = 1
            try:
                self._move_to_wasted(useful)
                if self._last_call is not None and self._last_call[1] is useful:
                    self._last_call = None
            finally:
                self._depth = 0
            if self._pending:
                self._drain()

    def _move_to_wasted(self, tokens: Tokens) -> None:
        run_useful, run_wasted = self._useful, self._wasted
        for k, v in tokens.items():
            have = run_useful.get(k, 0)
            moved = min(have, v)
            if moved:
                run_useful[k] = have - moved
                run_wasted[k] = run_wasted.get(k, 0) + moved

    def take_last_call(self) -> str | None:
        """For ``agentrel.reject()`` outside a call: the name of the run's most recent
        successful call, whose tokens become wasted (``None``: nothing to reject, or the run
        has closed and its figures are final)."""
        with self._lock:
            last = None if self._closed else self._last_call
            self._last_call = None
            if last is None:
                return None
            self._depth = 1
            try:
                self._move_to_wasted(last[1])
            finally:
                self._depth = 0
            if self._pending:
                self._drain()
            return last[0]

    def close(self, failed: bool) -> Closed:
        """Classify the run (once its figures are final): a failed run wastes every token
        inside it. Later updates are refused (work that outlived the run is recorded as work
        outside any run)."""
        with self._lock:
            if self._pending:
                self._drain()
            self._depth = 1  # from here, an update a finaliser makes is refused (run closed)
            try:
                if not self._closed:
                    if failed:
                        merge(self._wasted, self._useful)
                        self._useful = {}
                    self.outcome = run_outcome(failed, self._retried, self.retry_depth)
                    self._closed = True
            finally:
                self._depth = 0
            self._pending.clear()
            outcome = self.outcome or cat.FAILED
            return outcome, self._failures, self._useful, self._wasted, self._kinds
