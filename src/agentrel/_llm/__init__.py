"""The LLM clients: ``agentrel.instrument()`` / ``uninstrument()`` (SDK clients, and any object's
methods as tools), what an SDK adapter is made of, and the spec of an LLM call.

The rest of agentrel imports these names from here, never from a module of this package (the
modules import each other and the core, never this façade), so no import circle can form.
The pieces are described in docs/architecture.md.
"""

from __future__ import annotations

from .adapter import ADAPTERS, CREATE, RAW, STREAM, Adapter, Usage
from .dispatch import instrument, uninstrument
from .flight import forget_streams, llm_spec

__all__ = [
    "ADAPTERS",
    "CREATE",
    "RAW",
    "STREAM",
    "Adapter",
    "Usage",
    "forget_streams",
    "instrument",
    "llm_spec",
    "uninstrument",
]
