"""The host libraries whose own test suites run with agentrel switched on.

Each suite's tests come from the library's source distribution at the installed version;
``subsets/<name>.txt`` lists what of it runs. ``minimum`` is what the "on" run's span report
must show at least (``execute_tool``: spans of that name; ``execute_tool>1``: calls of that
name with more than one attempt), so that a green run whose hooks never fired fails. Each is
about three quarters of what the suite recorded when it was set (docs/reliability.md has the
figures): a few spans vary from run to run with the hosts' own timing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str  # also the distribution name on the registry
    pytest_args: tuple[str, ...] = ()  # replace the host's own addopts (no xdist, no coverage)
    env: tuple[tuple[str, str], ...] = ()
    minimum: tuple[tuple[str, int], ...] = ()

    @property
    def subset(self) -> list[str]:
        lines = (HERE / "subsets" / f"{self.name}.txt").read_text().splitlines()
        return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


SUITES = (
    Suite(
        "tenacity",
        ("-p", "no:asyncio"),  # tenacity's own test deps have no pytest-asyncio
        minimum=(("execute_tool", 80), ("execute_tool>1", 55), ("invoke_agent", 140)),
    ),
    Suite(
        "stamina",
        ("-p", "no:asyncio", "--import-mode=importlib"),
        minimum=(("execute_tool", 380), ("execute_tool>1", 170), ("invoke_agent", 120)),
    ),
    # backoff's sdist ships no tests: the runner reports it and runs nothing.
    Suite("backoff"),
    Suite(
        "langgraph",
        ("-k", "not sqlite"),
        env=(("NO_DOCKER", "true"),),
        minimum=(
            ("chat", 12),
            ("execute_tool", 50),
            ("execute_tool>1", 18),
            ("invoke_agent", 880),
        ),
    ),
    Suite(
        "langgraph-prebuilt",
        ("-k", "not sqlite", "-o", "asyncio_mode=auto"),
        env=(("NO_DOCKER", "true"),),
        minimum=(("chat", 115), ("execute_tool", 300), ("invoke_agent", 220)),
    ),
    Suite(
        "openai-agents",
        ("-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=session"),
        minimum=(("chat", 450), ("chat>1", 8), ("execute_tool", 250), ("invoke_agent", 480)),
    ),
    Suite(
        "openai",
        ("--tb=short",),
        minimum=(("chat", 27), ("chat>1", 18), ("invoke_agent", 100)),
    ),
)
