"""One instrumentor pattern for every integration that patches a library: idempotent
``instrument()`` / ``uninstrument()``, one warning on a second ``instrument()``, the library's
own objects exactly restored, and an ``ImportError`` naming the extra when it is missing."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import instrumentation as ai
from agentrel import testing

ROOT = Path(__file__).resolve().parent.parent


def _tenacity_owners() -> list[Any]:
    import tenacity

    return [
        tenacity.BaseRetrying,
        tenacity.Retrying,
        tenacity.AsyncRetrying,
        tenacity.AttemptManager,
    ]


def _stamina_owners() -> list[Any]:
    from stamina._config import CONFIG

    return [*_tenacity_owners(), _Slots(CONFIG, "_on_retry", "_get_on_retry")]


def _backoff_owners() -> list[Any]:
    from backoff import _async, _sync

    return [_sync, _async]


def _pydantic_ai_owners() -> list[Any]:
    from pydantic_ai import Agent

    return [Agent]


def _langgraph_owners() -> list[Any]:
    import langchain_core.tools.base as tools_base
    from langchain_core.tools import BaseTool
    from langgraph.pregel import Pregel, _runner

    return [Pregel, BaseTool, tools_base, _runner]


def _openai_agents_owners() -> list[Any]:
    from agents.run import AgentRunner

    names = ("agents.run", "agents.tool", "agents.run_internal.tool_execution",
             "agents.run_internal.run_loop", "agents.run_internal.model_retry",
             "agents.run_internal.turn_resolution")  # fmt: skip
    return [AgentRunner, *(importlib.import_module(n) for n in names)]


class _Slots:
    """Attributes of an object without a ``__dict__`` of interest (stamina's CONFIG)."""

    def __init__(self, obj: Any, *names: str) -> None:
        self.obj, self.names = obj, names

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n in self.names:
            v = getattr(self.obj, n)
            func = getattr(v, "__func__", None)  # a bound method is made anew on each access
            out[n] = (id(func), id(v.__self__)) if func is not None else id(v)
        return out


#: integration module -> (instrumentor class name, the objects it patches, the dependency,
#: the message when it is missing)
INTEGRATIONS: dict[str, tuple[str, Callable[[], list[Any]], str, str]] = {
    "tenacity": ("TenacityInstrumentor", _tenacity_owners, "tenacity",
                 "agentrel's tenacity integration needs tenacity: "
                 "pip install 'agentrel-otel[tenacity]'"),
    "stamina": ("StaminaInstrumentor", _stamina_owners, "stamina",
                "agentrel's stamina integration needs stamina: "
                "pip install 'agentrel-otel[stamina]'"),
    "backoff": ("BackoffInstrumentor", _backoff_owners, "backoff",
                "agentrel's backoff integration needs backoff: "
                "pip install 'agentrel-otel[backoff]'"),
    "pydantic_ai": ("PydanticAIInstrumentor", _pydantic_ai_owners, "pydantic_ai",
                    "agentrel's pydantic-ai integration needs pydantic-ai-slim: "
                    "pip install 'agentrel-otel[pydantic-ai]'"),
    "langgraph": ("LangGraphInstrumentor", _langgraph_owners, "langgraph",
                  "agentrel's LangGraph integration needs langgraph: "
                  "pip install 'agentrel-otel[langgraph]'"),
    "openai_agents": ("OpenAIAgentsInstrumentor", _openai_agents_owners, "agents",
                      "agentrel's OpenAI Agents SDK integration needs openai-agents: "
                      "pip install 'agentrel-otel[openai-agents]'"),
}  # fmt: skip


def snapshot(owners: list[Any]) -> list[dict[str, Any]]:
    """The identity of every attribute of the patched classes and modules."""
    out = []
    for owner in owners:
        if isinstance(owner, _Slots):
            out.append(owner.snapshot())
        else:
            out.append({k: id(v) for k, v in list(vars(owner).items())})
    return out


def module(name: str) -> Any:
    return importlib.import_module(f"agentrel.integrations.{name}")


@pytest.mark.parametrize("name", list(INTEGRATIONS))
def test_instrument_twice_warns_once_and_uninstrument_restores_exactly(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """instrument() thrice: patched once, one warning; uninstrument() twice: every attribute
    of the patched classes and modules is the very object it was before."""
    cls_name, owners_of, _, _ = INTEGRATIONS[name]
    mod = module(name)
    inst = getattr(mod, cls_name)()
    assert inst is getattr(mod, cls_name)() and isinstance(inst, ai.BaseInstrumentor)
    owners = owners_of()
    before = snapshot(owners)
    assert not mod.is_instrumented() and not inst.is_instrumented()
    with caplog.at_level("WARNING", logger="agentrel"):
        mod.instrument()
        patched = snapshot(owners)
        mod.instrument()
        inst.instrument()
    try:
        assert patched != before  # the test can see a patch
        assert snapshot(owners) == patched  # nothing patched twice
        assert mod.is_instrumented() and mod.instrumented()
        messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert messages == [
            f"agentrel: {inst.name} is already instrumented; call uninstrument() first to "
            "instrument it again with other options"
        ]
    finally:
        mod.uninstrument()
        mod.uninstrument()
    assert not mod.is_instrumented()
    assert snapshot(owners) == before


def test_missing_libraries_name_the_extra_to_install() -> None:
    """With each library missing (``sys.modules[name] = None``), instrument() is an
    ImportError naming the extra; importing the integration module is not."""
    code = ["import importlib, sys"]
    for _, _, dep, _ in INTEGRATIONS.values():
        code.append(f"sys.modules[{dep!r}] = None")
    for name in INTEGRATIONS:
        code.append(
            f"m = importlib.import_module('agentrel.integrations.{name}')\n"
            "try:\n    m.instrument()\nexcept ImportError as exc:\n"
            "    print(exc)\n    assert not m.is_instrumented()\n"
            "else:\n    print('no error')"
        )
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [msg for _, _, _, msg in INTEGRATIONS.values()]


def test_the_distribution_name_comes_from_one_constant() -> None:
    """The install hint reads agentrel's distribution name from one place."""
    from agentrel import _instrumentor

    assert _instrumentor.DIST == "agentrel-otel"
    assert _instrumentor.missing_message("x", "xlib", "x") == (
        "agentrel's x integration needs xlib: pip install 'agentrel-otel[x]'"
    )
    assert _instrumentor.missing_message("x", "xlib") == (
        "agentrel's x integration needs xlib: pip install xlib"
    )


def test_the_constant_is_the_distribution_pyproject_builds() -> None:
    """DIST is the name pyproject.toml builds and the registry serves agentrel under."""
    import tomllib

    from agentrel import _instrumentor

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == _instrumentor.DIST == "agentrel-otel"
    extras = pyproject["project"]["optional-dependencies"]
    every_other = sorted(set(extras) - {"all", "dev"})
    in_all = sorted(
        name for req in extras["all"] for name in req.split("[", 1)[1].split("]", 1)[0].split(",")
    )
    assert in_all == every_other  # [all] is every integration extra


def test_demo_without_tenacity_names_the_extra() -> None:
    """``agentrel demo`` with tenacity missing exits 2 with the extra to install."""
    code = (
        "import sys; sys.modules['tenacity'] = None\n"
        "from agentrel._cli import main\n"
        "sys.exit(main(['demo', '--duration', '1', '--port', '0']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "agentrel demo needs tenacity: pip install 'agentrel-otel[cli]'\n"


def test_pricing_without_genai_prices_says_what_to_install(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With genai-prices missing, configure() says once (INFO) which extra prices the tokens
    it cannot price; a second configuration says nothing more."""
    import logging

    monkeypatch.setitem(sys.modules, "genai_prices", None)
    testing.reset()
    with caplog.at_level(logging.INFO, logger="agentrel"):
        for _ in range(2):
            cfg = agentrel.configure(
                tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider
            )
            cfg.shutdown()
    said = [r.getMessage() for r in caplog.records if "genai-prices" in r.getMessage()]
    assert said == [
        "agentrel: genai-prices is not installed: tokens of models without a "
        "configure(prices=...) entry are counted in agentrel.cost.unpriced_tokens "
        "(pip install 'agentrel-otel[cost]' prices them)"
    ]


def test_reset_calls_every_instrumentors_reset_hook() -> None:
    """agentrel.testing.reset() calls _reset_for_tests() of each instrumentor (a raising one
    is counted and the others still run)."""
    calls: list[str] = []

    class Broken(ai.BaseInstrumentor):
        name = "broken"

        def _reset_for_tests(self) -> None:
            calls.append("broken")
            raise RuntimeError("boom")

    class Fine(ai.BaseInstrumentor):
        name = "fine"

        def _reset_for_tests(self) -> None:
            calls.append("fine")

    from agentrel import _instrumentor

    made = [Broken(), Fine()]
    try:
        testing.reset()
        assert sorted(calls) == ["broken", "fine"]
        assert agentrel.telemetry_errors() == {"instrumentor.reset": 1}
    finally:
        for inst in made:  # out of the registry: later resets must not call them
            _instrumentor._instances.discard(inst)


def test_tenacity_abandoned_retries_are_dropped_by_reset() -> None:
    """The tenacity integration's queue of abandoned retries is emptied by reset(), through
    its instrumentor (agentrel.testing reaches into no integration)."""
    from agentrel.integrations import tenacity as integration

    integration._abandoned.push(object())
    assert len(integration._abandoned) == 1
    testing.reset()
    assert len(integration._abandoned) == 0


# --- join_or_start / join_call ----------------------------------------------------------------
def _retried(x: int) -> int:
    return x


def test_join_or_start_joins_only_the_tool_around_the_function(cap: testing.Capture) -> None:
    """The tool around ``fn`` is joined; with no call, or a tool around other code, a call
    named after ``fn`` is opened (adoptable, ``agentrel.retry.library`` on it)."""
    name = f"{__name__}._retried"
    assert ai.qualified_name(_retried) == name

    with agentrel.run("support"):
        handle, owned = ai.join_or_start(_retried, library="mylib")
        assert owned and handle.name == name and handle.adoptable
        handle.finish()

        @agentrel.tool("search")
        def around(x: int) -> int:
            inner, inner_owned = ai.join_or_start(around.__wrapped__, library="mylib")
            assert not inner_owned and inner == ai.current_call()
            other, other_owned = ai.join_or_start(_retried, library="mylib")
            assert other_owned and other.name == name  # a function the tool merely calls
            other.finish()
            return x

        assert around(1) == 1
    calls = {
        (a["gen_ai.tool.name"], a["agentrel.outcome"]): (p.count, p.sum)
        for a, p in cap.points("agentrel.tool.attempts")
    }
    assert calls == {(name, "success"): (2, 2), ("search", "success"): (1, 1)}
    spans = [s for s in cap.spans() if s.name == f"execute_tool {name}"]
    assert [s.attributes["agentrel.retry.library"] for s in spans] == ["mylib", "mylib"]


def test_join_call_fails_the_call_of_a_loop_that_gave_up_and_returned(
    cap: testing.Capture,
) -> None:
    """A loop whose last attempt was closed as failed and that returned a value anyway
    (a give-up that returns) fails the call join_call opened; a clean one succeeds."""
    with agentrel.run("support") as run:
        with ai.join_call(_retried, library="mylib") as handle:
            handle.attempt_failed(TimeoutError())
            handle.retry_wait(0.0)
            handle.next_attempt()
            handle.attempt_failed(TimeoutError())  # gave up, returned None
        with ai.join_call(_retried, library="mylib", name="clean"):
            pass
    # the run itself returned: its two failures were absorbed
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    calls = {
        (a["gen_ai.tool.name"], a["agentrel.outcome"]): (p.count, p.sum)
        for a, p in cap.points("agentrel.tool.attempts")
    }
    assert calls == {(f"{__name__}._retried", "exhausted"): (1, 2), ("clean", "success"): (1, 1)}


def test_join_call_needs_a_library() -> None:
    """A missing library name is a TypeError when the block is made, not at its end."""
    with pytest.raises(TypeError, match="library"):
        ai.join_call(_retried, library="")


def test_unknown_instrument_options_are_a_type_error() -> None:
    """A misspelt option is a TypeError at instrument() time, and nothing is patched."""
    from agentrel.integrations import langgraph, tenacity

    with pytest.raises(TypeError, match="unknown options"):
        tenacity.TenacityInstrumentor().instrument(llm=False)
    with pytest.raises(TypeError, match=r"\['lm'\]"):
        langgraph.LangGraphInstrumentor().instrument(lm=False)
    assert not tenacity.is_instrumented() and not langgraph.is_instrumented()
