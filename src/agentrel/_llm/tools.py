"""``agentrel.instrument(obj, tools={...})``: any object whose named methods are tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import wrapt

from .._decorators import tool


class Tools(wrapt.BaseObjectProxy[Any]):
    """Any object whose named methods are agentrel tools."""

    def __init__(self, wrapped: Any, tools: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_tools = tools

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_"):
            raise AttributeError(name)
        method = self._self_tools.get(name)
        return method if method is not None else getattr(self.__wrapped__, name)


_TOOL_KEYS = frozenset(
    ("name", "system", "idempotent", "reversible", "owner", "description", "failure_when")
)


def tools_proxy(obj: Any, tools: Mapping[str, Mapping[str, Any]]) -> Tools:
    """``obj`` with the named methods made tools, as ``agentrel.tool(method, name=..., ...)``
    makes them (bad metadata is its ``TypeError``, raised here)."""
    if not isinstance(tools, Mapping) or not tools:
        raise TypeError(
            f"tools= must be a non-empty mapping of method name -> metadata, got {tools!r}"
        )
    wrapped: dict[str, Any] = {}
    for method_name, meta in tools.items():
        if meta is None:
            meta = {}
        if not isinstance(meta, Mapping):
            raise TypeError(
                f"tools[{method_name!r}] must be a mapping of tool metadata, got {meta!r}"
            )
        unknown = set(meta) - _TOOL_KEYS
        if unknown:
            raise TypeError(
                f"tools[{method_name!r}]: unknown metadata {sorted(unknown)}; "
                f"expected some of {sorted(_TOOL_KEYS)}"
            )
        method = getattr(obj, method_name, None)
        if method is None or not callable(method):
            raise TypeError(f"{type(obj).__name__}.{method_name} is not a method, cannot be a tool")
        name = meta.get("name", method_name)
        if name is None:  # agentrel.tool would fall back to the method's name
            raise TypeError("tool name must be a non-empty str, got None")
        wrapped[method_name] = tool(**{**meta, "name": name})(method)
    return Tools(obj, wrapped)
