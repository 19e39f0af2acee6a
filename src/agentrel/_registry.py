"""Registered tools: the blast-radius inventory behind `agentrel inventory` (docs/api.md)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ToolInfo:
    """What a tool touches, as declared by ``@agentrel.tool(...)`` or ``instrument(tools=)``."""

    name: str
    system: str | None
    idempotent: bool
    reversible: bool
    owner: str | None
    description: str | None
    module: str | None
    qualname: str | None
    file: str | None
    line: int | None

    @property
    def where(self) -> str:
        """``file:line`` where the tool is defined (or its qualified name)."""
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.module}.{self.qualname}" if self.module else self.qualname or "?"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["where"] = self.where
        return d


_lock = threading.Lock()
_tools: dict[tuple[str, str | None, str | None], ToolInfo] = {}


def register(info: ToolInfo) -> None:
    with _lock:
        _tools[(info.name, info.module, info.qualname)] = info


def registered_tools() -> tuple[ToolInfo, ...]:
    """Every tool registered in this process so far, sorted by name."""
    with _lock:
        return tuple(sorted(_tools.values(), key=lambda t: (t.name, t.module or "", t.line or 0)))
