"""``agentrel.instrument(obj, tools={...})``: any object whose named methods are tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import wrapt


class _Tools(wrapt.BaseObjectProxy[Any]):
    """Any object whose named methods are agentrel tools."""

    def __init__(self, wrapped: Any, tools: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_tools = tools

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_"):
            raise AttributeError(name)
        tool = self._self_tools.get(name)
        return tool if tool is not None else getattr(self.__wrapped__, name)


_TOOL_KEYS = frozenset(
    ("name", "system", "idempotent", "reversible", "owner", "description", "failure_when")
)


def _tools_proxy(obj: Any, tools: Mapping[str, Mapping[str, Any]]) -> Any:
    from ._decorators import ToolMeta, _check_callable, _first_line, _where, _wrap_call

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
        pred = meta.get("failure_when")
        _check_callable(pred, "failure_when")
        spec = ToolMeta(
            meta.get("name", method_name),
            system=meta.get("system"),
            idempotent=meta.get("idempotent", True),
            reversible=meta.get("reversible", True),
            owner=meta.get("owner"),
            description=meta.get("description"),
        ).spec(description=_first_line(method.__doc__), where=_where(method))
        wrapped[method_name] = _wrap_call(method, spec, pred)
    return _Tools(obj, wrapped)
