"""The toolkit for integrations: one instrumentor pattern, and the stacking rule of retries.

``BaseInstrumentor`` is what every agentrel integration that patches a library is built on
(modelled on OpenTelemetry contrib's ``BaseInstrumentor``): ``instrument()`` and
``uninstrument()`` are idempotent (a second ``instrument()`` logs one warning and returns), a
missing optional dependency is an ``ImportError`` naming the extra to install, and
``agentrel.testing.reset()`` calls each instrumentor's ``_reset_for_tests()``.

``join_or_start()`` / ``join_call()`` hold the rule that makes a retry integration give the
same figures whichever way its decorator and ``@agentrel.tool`` are stacked: the retries of
``fn`` are the attempts of the current call when that call is the tool around ``fn`` itself;
otherwise the integration opens a call of its own, named after ``fn``, which an
``@agentrel.tool`` running inside takes over (see docs/api.md, "Writing an integration").

Both are public through ``agentrel.instrumentation``.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from . import _catalogue as cat
from ._guard import logger, warn_once

if TYPE_CHECKING:
    from ._spec import CallSpec
    from .instrumentation import CallHandle

__all__ = [
    "DIST",
    "BaseInstrumentor",
    "JoinedCall",
    "encloses",
    "join_call",
    "join_or_start",
    "qualified_name",
    "retry_spec",
]

#: The distribution name users install (``pip install 'agentrel-otel[tenacity]'``): the one place
#: the install hints of every integration take it from.
DIST = "agentrel-otel"


def _ai() -> ModuleType:
    # ``agentrel.instrumentation`` re-exports this module: import it when first used.
    from . import instrumentation

    return instrumentation


# --- one instrumentor pattern -----------------------------------------------------------------
_instances: weakref.WeakSet[BaseInstrumentor] = weakref.WeakSet()


class BaseInstrumentor:
    """Base of an integration that patches a library (one instance per subclass).

    Subclasses set ``name`` (for messages), ``requires`` (``(module, distribution)`` pairs
    imported before ``_instrument`` runs), ``extra`` (the ``agentrel-otel[...]`` extra that
    installs them, for agentrel's own integrations; empty: the hint names the distribution)
    and ``options`` (the keyword arguments ``instrument()`` passes on), and implement
    ``_instrument(**kwargs)`` / ``_uninstrument()``; ``_reset_for_tests()`` drops work left
    to settle later (``agentrel.testing.reset()``).
    """

    name: ClassVar[str] = ""
    extra: ClassVar[str] = ""
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: the keyword options ``instrument()`` accepts (anything else is a ``TypeError``).
    options: ClassVar[frozenset[str]] = frozenset()

    _instance: ClassVar[BaseInstrumentor | None] = None
    _lock: threading.RLock
    _on: bool

    def __new__(cls, *args: Any, **kwargs: Any) -> BaseInstrumentor:
        inst = cls.__dict__.get("_instance")
        if inst is None:
            inst = super().__new__(cls)
            inst._lock = threading.RLock()
            inst._on = False
            cls._instance = inst
            _instances.add(inst)
        return inst

    # -- public ----------------------------------------------------------------------------
    def instrument(self, **kwargs: Any) -> None:
        """Patch the library (imports it). A second call logs a warning once and returns."""
        unknown = sorted(set(kwargs) - self.options)
        if unknown:
            raise TypeError(f"{type(self).__name__}.instrument() got unknown options {unknown}")
        with self._lock:
            if self._on:
                warn_once(
                    "instrument:" + self.name,
                    "agentrel: %s is already instrumented; call uninstrument() first to "
                    "instrument it again with other options",
                    self.name,
                )
                return
            self.check_dependencies()
            self._instrument(**kwargs)
            self._on = True

    def uninstrument(self) -> None:
        """Undo ``instrument()`` exactly (idempotent: without it, nothing happens)."""
        with self._lock:
            if not self._on:
                logger.debug("agentrel: %s is not instrumented", self.name)
                return
            try:
                self._uninstrument()
            finally:
                self._on = False

    def is_instrumented(self) -> bool:
        """Whether ``instrument()`` is in effect."""
        return self._on

    def check_dependencies(self) -> None:
        """Import what the integration needs; ``ImportError`` naming the extra if missing."""
        for module, distribution in self.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ImportError(missing_message(self.name, distribution, self.extra)) from exc

    # -- for subclasses --------------------------------------------------------------------
    def _instrument(self, **kwargs: Any) -> None:
        raise NotImplementedError

    def _uninstrument(self) -> None:
        raise NotImplementedError

    def _reset_for_tests(self) -> None:
        """Drop work queued to settle later (called by ``agentrel.testing.reset()``)."""
        return None


def missing_message(integration: str, distribution: str, extra: str = "") -> str:
    """The ``ImportError`` message of an integration whose library is not installed: the
    ``agentrel-otel[extra]`` to install (an integration of agentrel's own), else the library."""
    hint = f"pip install '{DIST}[{extra}]'" if extra else f"pip install {distribution}"
    return f"agentrel's {integration} integration needs {distribution}: {hint}"


def reset_for_tests() -> None:
    """``_reset_for_tests()`` of every instrumentor created (``agentrel.testing.reset()``)."""
    for inst in list(_instances):
        try:
            inst._reset_for_tests()
        except Exception as exc:
            _ai().report_error("instrumentor.reset", exc)


# --- join the enclosing call of the same function, or open one ----------------------------------
def qualified_name(fn: Any) -> str:
    """``module.qualname`` of a callable (its class's for other callables)."""
    target = getattr(fn, "func", fn)  # functools.partial
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not isinstance(qualname, str):
        qualname = type(target).__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and module else qualname


#: ``"library:name"`` -> the spec of that retried call site: one per retried function's
#: ``module.qualname`` (names come from code, not data), never the function itself.
_specs: dict[str, CallSpec] = {}


def retry_spec(name: str, library: str) -> CallSpec:
    """The spec of a call a retry library's integration opens (cached per name and library;
    ``agentrel.retry.library`` is on its span)."""
    key = library + ":" + name
    spec = _specs.get(key)
    if spec is None:
        spec = _ai().tool_spec(name, register=False, attributes={cat.RETRY_LIBRARY: library})
        spec = _specs.setdefault(key, spec)
    return spec


def _wraps(target: Any, fn: Any) -> bool:
    """Whether ``target`` is ``fn`` or wraps it (through ``__wrapped__``, a few levels)."""
    for _ in range(8):
        if target is None:
            return False
        if target is fn:
            return True
        target = getattr(target, "__wrapped__", None)
    return False


def _runs_code(target: Any, code: Any) -> bool:
    """Whether ``code`` is the code of ``target`` or of a function it wraps."""
    for _ in range(8):
        if target is None:
            return False
        if getattr(target, "__code__", None) is code:
            return True
        target = getattr(target, "__wrapped__", None)
    return False


def encloses(parent: CallHandle, fn: Any = None, *, code: Any = None) -> bool:
    """Whether the retries of ``fn`` (or of a retry loop running in ``code``) are attempts of
    ``parent`` rather than a retried function that ``parent``'s code merely calls.

    * ``fn`` given: only when ``parent`` is the tool that wraps ``fn`` itself (``@agentrel.tool``
      outside the retry decorator), or a call an integration or an LLM client opened.
    * ``code`` given (an iterated retry, ``for attempt in ...``): only when the loop runs in
      the function ``parent``'s tool wraps.

    An adoptable call (one a retry integration or a framework opened for a tool to take over)
    and a composite call (a fallback chain) never take a retry's attempts.
    """
    if parent.adoptable or parent.composite:
        return False
    target = parent.target
    if target is None:  # a call opened by an integration or an instrumented client
        return True
    if fn is not None:
        return _wraps(target, fn)
    if code is not None:
        return _runs_code(target, code)
    return False


def join_or_start(
    fn: Any = None,
    *,
    library: str,
    name: str | None = None,
    code: Any = None,
    guarded: bool = True,
) -> tuple[CallHandle, bool]:
    """The call the retries of ``fn`` are attempts of: ``(handle, False)`` when the current
    call is theirs (``encloses``), else ``(handle, True)`` for a new adoptable call named
    ``name`` (default: ``module.qualname`` of ``fn``) that the caller ends with
    ``handle.finish(exc)``; it is not made current (``handle.enter()`` / ``leave()``)."""
    ai = _ai()
    parent = ai.current_call(guarded=guarded)
    if parent is not None and encloses(parent, fn, code=code):
        return parent, False
    spec = retry_spec(name if name is not None else qualified_name(fn), library)
    return ai.start(spec, adoptable=True, guarded=guarded), True


class JoinedCall:
    """``with join_call(fn, library=...) as handle:`` (or ``async with``): see ``join_call``."""

    __slots__ = ("_code", "_fn", "_handle", "_library", "_name", "_owned", "_saved")

    def __init__(self, fn: Any, library: str, name: str | None, code: Any) -> None:
        self._fn = fn
        self._library = library
        self._name = name
        self._code = code
        self._handle: CallHandle | None = None
        self._owned = False
        self._saved: Any = None

    @property
    def owned(self) -> bool:
        """Whether this block opened the call (and ends it), rather than joined one."""
        return self._owned

    def __enter__(self) -> CallHandle:
        ai = _ai()
        try:
            handle, owned = join_or_start(
                self._fn, library=self._library, name=self._name, code=self._code
            )
        except Exception as exc:
            ai.report_error("join_call", exc)
            handle, owned = ai.CallHandle(None), False  # inert: records nothing
        self._handle, self._owned = handle, owned
        if owned:
            self._saved = handle.enter()
        return handle

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        handle, saved = self._handle, self._saved
        self._handle = self._saved = None
        if handle is None or not self._owned:
            return
        try:
            # Left without an exception after the last attempt was closed as failed (a retry
            # loop that gave up and returned a value): the call failed.
            handle.finish(exc, flagged=exc is None and not handle.attempt_open)
        finally:
            _ai().leave(saved)

    async def __aenter__(self) -> CallHandle:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(et, exc, tb)


def join_call(
    fn: Any = None, *, library: str, name: str | None = None, code: Any = None
) -> JoinedCall:
    """Around one execution of a retry loop over ``fn``: join the enclosing call when it is
    the tool around ``fn`` itself, or open an adoptable call named after ``fn`` (current for
    the block, ended when it ends; an exception leaving the block fails it and propagates
    unchanged). Inside, the retry hooks record into ``ai.current_call()``. So the same
    figures come out whether ``@agentrel.tool`` is outside the retry decorator or inside it.
    """
    if not isinstance(library, str) or not library:
        raise TypeError(f"join_call() needs library='name of the retry library', got {library!r}")
    return JoinedCall(fn, library, name, code)
