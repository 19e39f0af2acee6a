"""agentrel.instrument(obj, tools={...}) for any client object, and import hygiene."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

import agentrel
from agentrel import _llm, testing
from agentrel import instrumentation as ai


class SearchClient:
    """A client an agent uses (no SDK agentrel knows)."""

    def __init__(self) -> None:
        self.calls = 0
        self.region = "eu"

    def search(self, q: str) -> list[str]:
        """Search the knowledge base."""
        self.calls += 1
        if q == "boom":
            raise TimeoutError("kb timed out")
        return [q]

    async def fetch(self, doc: str) -> dict[str, str]:
        return {"error": "missing"} if doc == "gone" else {"doc": doc}

    def refund(self, order: str) -> str:
        return order


TOOLS = {
    "search": {"system": "kb", "owner": "search-oncall"},
    "fetch": {"system": "kb", "failure_when": lambda r: "error" in r},
    "refund": {"name": "stripe_refund", "system": "stripe", "idempotent": False},
}


def test_named_methods_become_tools(cap: testing.Capture) -> None:
    """Each named method is a tool call with its metadata; the rest is the object's own."""
    kb = agentrel.instrument(SearchClient(), tools=TOOLS)
    assert isinstance(kb, SearchClient)
    assert kb.region == "eu"
    with agentrel.run("support"):
        with pytest.raises(TimeoutError):
            kb.search("boom")
        assert kb.search("q") == ["q"]
    assert kb.calls == 2
    failures = {"gen_ai.tool.name": "search", "error.type": "TimeoutError"}
    assert cap.counter("agentrel.tool.failures", {**failures, "agentrel.absorbed": "true"}) == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1
    depth = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "recovered"})
    assert (depth.count, depth.sum) == (1, 1)
    span = cap.spans("execute_tool search")[0]
    assert span.attributes["agentrel.tool.system"] == "kb"
    assert span.attributes["agentrel.tool.owner"] == "search-oncall"
    assert span.attributes["gen_ai.tool.description"] == "Search the knowledge base."


def test_async_method_and_failure_when(cap: testing.Capture) -> None:
    """Async methods stay async; failure_when flags a result without changing it."""
    kb = agentrel.instrument(SearchClient(), tools=TOOLS)

    async def main() -> dict[str, str]:
        async with agentrel.run("support"):
            return await kb.fetch("gone")

    assert asyncio.run(main()) == {"error": "missing"}
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {"gen_ai.tool.name": "fetch", "error.type": "result_flagged"},
        )
        == 1
    )


def test_renamed_non_idempotent_tool(cap: testing.Capture) -> None:
    """name= renames the tool; idempotent=False is on its span."""
    kb = agentrel.instrument(SearchClient(), tools=TOOLS)
    assert kb.refund("o-1") == "o-1"
    [span] = cap.spans("execute_tool stripe_refund")
    assert span.attributes["agentrel.tool.idempotent"] is False


def test_twice_is_a_no_op_and_uninstrument() -> None:
    """Instrumenting the proxy again returns it; uninstrument returns the object."""
    obj = SearchClient()
    kb = agentrel.instrument(obj, tools=TOOLS)
    assert agentrel.instrument(kb, tools=TOOLS) is kb
    assert agentrel.uninstrument(kb) is obj


@pytest.mark.parametrize(
    ("tools", "match"),
    [
        pytest.param({"nope": {}}, "not a method", id="missing-method"),
        pytest.param({"region": {}}, "not a method", id="not-callable"),
        pytest.param({"search": {"colour": "red"}}, "unknown metadata", id="unknown-key"),
        pytest.param({"search": {"idempotent": "yes"}}, "idempotent", id="bad-value"),
        pytest.param({}, "non-empty", id="empty"),
        pytest.param({"search": {"name": None}}, "tool name", id="name-none"),
        pytest.param({"search": {"failure_when": 3}}, "failure_when", id="bad-predicate"),
    ],
)
def test_bad_tools_fail_at_instrument_time(tools: dict[str, object], match: str) -> None:
    """Bad tool metadata is a TypeError when instrumenting, not at the first call."""
    with pytest.raises(TypeError, match=match):
        agentrel.instrument(SearchClient(), tools=tools)  # type: ignore[arg-type]


def test_a_method_already_decorated_is_a_type_error_at_instrument_time() -> None:
    """A method that is already an ``@agentrel.tool`` is refused in ``tools=`` (each call
    would be counted twice), before anything is wrapped."""

    class Decorated:
        @agentrel.tool
        def search(self, q: str) -> str:
            return q

    client = Decorated()
    with pytest.raises(TypeError, match="already decorated by agentrel"):
        agentrel.instrument(client, tools={"search": {}})
    assert client.search("x") == "x"


def test_unknown_client_without_tools_is_a_type_error() -> None:
    """An object agentrel does not know needs tools=."""
    with pytest.raises(TypeError, match="tools="):
        agentrel.instrument(SearchClient())


def test_importing_agentrel_imports_no_sdk() -> None:
    """import agentrel (and touching instrument) loads neither openai nor anthropic."""
    code = (
        "import sys, agentrel\n"
        "agentrel.instrument\n"
        "import agentrel.integrations\n"
        "bad = [m for m in ('openai', 'anthropic', 'httpx', 'httpx2') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_weakref_callback_never_takes_the_hook_lock() -> None:
    """A collected HTTP client's callback may run inside any allocation, even one made while
    the hook lock is held (it did, in CI: a deadlock); it must not block on that lock."""
    import gc
    import threading

    from agentrel._llm import http as _instrument

    class Http:
        def send(self, request: object) -> object:
            return request

    def collect_under_lock() -> None:
        with _instrument._hooks_lock:
            http = Http()
            assert _instrument._hooks_lock.locked()
            _instrument._hooks[id(http)] = (
                __import__("weakref").ref(http, _instrument._forget_hook(id(http))),
                1,
                None,
            )
            key = id(http)
            del http
            gc.collect()  # the callback runs here, with the lock held
            assert key in _instrument._dead
        fresh = Http()
        _instrument.install_hook(fresh, False)  # purges under the lock
        entry = _instrument._hooks.get(key)
        assert entry is None or entry[0]() is fresh  # (ids may be reused)
        assert key not in _instrument._dead
        _instrument.remove_hook(fresh)

    worker = threading.Thread(target=collect_under_lock, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the weakref callback blocked on the hook lock"


class FakeLLM:
    """The client of an SDK agentrel learns through an adapter: a ``with_options()``, no
    ``copy()``."""

    def __init__(self, tag: str = "a") -> None:
        self.tag = tag
        self.chat = FakeChat()

    def with_options(self, *, tag: str, retries: int = 2) -> FakeLLM:
        """A new client with another tag."""
        return FakeLLM(tag)


class FakeChat:
    def create(self, *, model: str) -> str:
        return f"answer from {model}"


class FakeAdapter(ai.Adapter):
    provider = "fake"
    tree: ClassVar[Mapping[str, Any]] = {"chat": {"create": ai.CREATE}}


def test_registered_sdk_client_keeps_with_options_and_lacks_copy(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registered SDK's client: ``with_options`` on the proxy has the client's signature and
    docstring and makes an instrumented client; a ``copy`` the client lacks the proxy lacks."""
    monkeypatch.setitem(_llm.ADAPTERS, __name__.partition(".")[0], lambda c: FakeAdapter())
    bare = FakeLLM()
    client = agentrel.instrument(bare)
    assert not hasattr(bare, "copy") and not hasattr(client, "copy")
    assert inspect.signature(client.with_options) == inspect.signature(bare.with_options)
    assert str(inspect.signature(client.with_options)) == (
        "(*, tag: 'str', retries: 'int' = 2) -> 'FakeLLM'"
    )
    assert client.with_options.__doc__ == "A new client with another tag."
    other = client.with_options(tag="b")
    assert isinstance(other, FakeLLM) and other.tag == "b" and agentrel.instrument(other) is other
    assert other.chat.create(model="m1") == "answer from m1"
    [span] = cap.spans("chat m1")
    assert span.attributes["gen_ai.provider.name"] == "fake"
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"})
    assert (attempts.count, attempts.sum) == (1, 1)
