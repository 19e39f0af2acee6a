"""What agentrel needs to know about one LLM SDK (``Adapter``), the token usage it reports
(``Usage``), the method kinds at the leaves of its resource tree, and the registry that maps an
SDK's package to its adapter (``instrumentation.register_llm_adapter``). Adapters depend on this
module (through ``agentrel.instrumentation``); nothing here imports an adapter, except to load a
bundled one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

#: Method kinds at the leaves of an adapter's resource tree.
CREATE = "create"  # returns a typed response, or a Stream with stream=True
RAW = "raw"  # .with_raw_response.<method>: returns the SDK's raw response wrapper
STREAM = "stream"  # .stream(...) helpers: return a stream manager (a context manager)

Tree = Mapping[str, Any]  # name -> Tree | kind


class Usage:
    """Token usage of one LLM call as the SDK reported it (the last report wins: streams
    report cumulative figures)."""

    __slots__ = ("cache_creation", "cache_read", "input", "model", "output", "reasoning")

    def __init__(self) -> None:
        self.input = 0  # all input tokens, cached ones included
        self.output = 0  # all output tokens, reasoning ones included
        self.cache_read: int | None = None  # of which read from the prompt cache
        self.cache_creation: int | None = None  # of which written to the prompt cache
        self.reasoning: int | None = None  # output tokens spent on reasoning
        self.model: str | None = None  # the model that answered


class Adapter:
    """What agentrel needs to know about one SDK; ``integrations/openai.py`` and
    ``integrations/anthropic.py`` subclass it."""

    provider: str = ""
    is_async: bool = False
    tree: ClassVar[Tree] = {}
    #: the SDK's Stream classes (a create() that returned one of these is still running).
    stream_types: tuple[type, ...] = ()

    @staticmethod
    def read_usage(u: Any, usage: Usage) -> None:
        """Fill ``usage`` from the SDK's usage object."""

    def read_response(self, result: Any, usage: Usage) -> None:
        """Fill ``usage`` from a typed response (its model and its usage)."""
        model = getattr(result, "model", None)
        if isinstance(model, str):
            usage.model = model
        self.read_usage(getattr(result, "usage", None), usage)

    def read_chunk(self, item: Any, usage: Usage) -> None:
        """Update ``usage`` from one streamed item."""

    def transport_error_type(self, exc: BaseException) -> str:
        """``error.type`` of an exception raised by the HTTP client's ``send``: the SDK
        exception it becomes."""
        return type(exc).__qualname__

    def input_messages(self, kwargs: Mapping[str, Any]) -> Any:
        """The prompt (for opt-in content capture)."""
        return kwargs.get("messages")

    def output_messages(self, result: Any) -> Any:
        """The completion (for opt-in content capture)."""
        return None


#: top-level package of an SDK's client classes -> factory(client) -> Adapter | None, filled by
#: ``instrumentation.register_llm_adapter`` and, on first use, from the entry points of the
#: group ``agentrel.llm_adapters`` (name: the SDK's package; value: its factory). agentrel's own
#: OpenAI and Anthropic adapters are entry points of agentrel's distribution, so the core never
#: imports an adapter: an SDK's adapter loads when the first client of that SDK is instrumented.
ADAPTERS: dict[str, Callable[[Any], Adapter | None]] = {}
ENTRY_POINT_GROUP = "agentrel.llm_adapters"
_entry_points: dict[str, Any] | None = None


def _registered(module: str) -> Callable[[Any], Adapter | None] | None:
    global _entry_points
    factory = ADAPTERS.get(module)
    if factory is not None:
        return factory
    if _entry_points is None:
        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    ep = _entry_points.get(module)
    if ep is None:
        return None
    factory = ep.load()
    ADAPTERS.setdefault(module, factory)
    return ADAPTERS[module]


def adapter_for(obj: Any) -> Adapter | None:
    """The adapter for an SDK client, or ``None`` when no registered SDK knows it."""
    factory = _registered(type(obj).__module__.partition(".")[0])
    return factory(obj) if factory is not None else None
