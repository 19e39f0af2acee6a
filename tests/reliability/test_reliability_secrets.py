"""Adversarial reliability, secrets: a secret handed to every entry point agentrel sees never
reaches its telemetry by default, and with ``capture_content=True`` reaches spans only.

The secret (``sk-SECRET-`` and a fresh uuid) goes in as a tool argument (positional and
keyword, sync, async and generator tools), comes back as a tool result (also one flagged by
``failure_when``), is the message of exceptions (``str``, a ``repr`` of its own, a chained
``__cause__`` and ``__context__``, a note), is a run's cohort, the system prompt, messages and
input of OpenAI and Anthropic calls (plain and streamed) and every completion the mocked SDKs
return (and the message of their error bodies, retried by the SDK and not), goes through
tenacity retries (reraised, exhausted into ``RetryError``, served by ``retry_error_callback``)
and through fallback chains (recovered and exhausted).

Everything agentrel emits is captured and searched: every span (name, attributes, events,
the attempt events that stand for exceptions, status description, links, resource: the
whole ``to_json()``), every metric point (attributes, exemplars and their filtered
attributes), the ``/metrics`` text a real ``configure(prometheus_port=0)`` endpoint serves
(Prometheus text and OpenMetrics with exemplars, in a fresh interpreter: the global providers
can be set once per process), and every record of the ``agentrel`` logger with its
traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import testing

SECRET = "sk-SECRET-" + uuid.uuid4().hex
#: The call tenacity's integration opens around a retried function no tool wraps.
BARE = f"{__name__}._retries.<locals>.bare"

#: Every span the scenario records (by name, with how many), so that a check finding nothing
#: cannot be a check that looked at nothing.
EXPECTED_SPANS = {
    "invoke_agent secrets": 1,
    "invoke_agent secrets-failed": 1,
    "invoke_agent secrets-body": 1,
    "execute_tool lookup": 1,
    "execute_tool echo": 1,
    "execute_tool alookup": 1,
    "execute_tool stream_tool": 1,
    "execute_tool soft_fail": 1,
    "execute_tool raises_message": 1,
    "execute_tool raises_repr": 2,
    "execute_tool raises_chained": 1,
    "execute_tool raises_noted": 1,
    "execute_tool charge": 1,
    "execute_tool always": 1,
    f"execute_tool {BARE}": 1,
    "fallback answer": 1,
    "fallback doomed": 1,
    "fallback_tier primary": 2,
    "fallback_tier secondary": 1,
    "fallback_tier static": 1,
    "chat gpt-4o": 3,
    "chat gpt-4.1": 1,
    "chat claude-mock-1": 2,
}

#: The spans that carry no content even with ``capture_content=True``: the successful run,
#: the fallback tiers (the chain's call records the failures), and a generator tool (its
#: arguments are not captured).
OPTIN_WITHOUT = sorted(
    [
        "execute_tool stream_tool",
        "fallback_tier primary",
        "fallback_tier primary",
        "fallback_tier secondary",
        "fallback_tier static",
        "invoke_agent secrets",
    ]
)


class LeakyError(Exception):
    """An exception whose ``str`` and ``repr`` both carry the secret."""

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.secret = secret

    def __str__(self) -> str:
        return f"leaky {self.secret}"

    def __repr__(self) -> str:
        return f"LeakyError(secret={self.secret!r})"


# --- the scenario (also run by this file as a script, in a fresh interpreter) -----------------
def scenario(secret: str) -> None:
    """Hand ``secret`` to every entry point; records into whatever agentrel is set up with."""
    import tenacity
    from tenacity import retry, stop_after_attempt, wait_fixed

    from agentrel.integrations import tenacity as agentrel_tenacity

    agentrel_tenacity.instrument()
    try:
        with agentrel.run("secrets", cohort=secret):  # not in the allowlist: "other"
            _tools(secret)
            _exceptions(secret)
            _retries(secret, tenacity, retry, stop_after_attempt, wait_fixed)
            _fallbacks(secret)
            _llm_calls(secret)
        try:
            with agentrel.run("secrets-failed"):
                _raises_repr(secret)
        except LeakyError:
            pass
        try:
            with agentrel.run("secrets-body"):
                raise RuntimeError(f"the run body failed with {secret}") from LeakyError(secret)
        except RuntimeError:
            pass
    finally:
        agentrel_tenacity.uninstrument()


@agentrel.tool
def lookup(account: str, *, token: str) -> dict[str, str]:
    return {"account": account, "token": token}


@agentrel.tool
def echo(text: str) -> str:
    return text


@agentrel.tool
async def alookup(token: str) -> str:
    return token


@agentrel.tool
def stream_tool(token: str) -> Iterator[str]:
    yield token
    yield token[::-1]


@agentrel.tool(failure_when=lambda r: "error" in r)
def soft_fail(token: str) -> dict[str, str]:
    return {"error": f"upstream said {token}"}


@agentrel.tool
def raises_message(token: str) -> None:
    raise ValueError(token)


@agentrel.tool(name="raises_repr")
def _raises_repr(token: str) -> None:
    raise LeakyError(token)


@agentrel.tool
def raises_chained(token: str) -> None:
    try:
        {}[token]
    except KeyError as exc:  # __context__ and __cause__ both carry it
        raise RuntimeError(f"lookup of {token} failed") from exc


@agentrel.tool
def raises_noted(token: str) -> None:
    err = PermissionError(13, token, token)
    if hasattr(err, "add_note"):
        err.add_note(f"note: {token}")
    raise err


def _tools(secret: str) -> None:
    assert lookup(secret, token=secret) == {"account": secret, "token": secret}
    assert echo(secret) == secret
    assert asyncio.run(alookup(secret)) == secret
    assert list(stream_tool(secret)) == [secret, secret[::-1]]
    assert soft_fail(secret) == {"error": f"upstream said {secret}"}


def _exceptions(secret: str) -> None:
    for fn in (raises_message, _raises_repr, raises_chained, raises_noted):
        try:
            fn(secret)
        except Exception as exc:
            assert secret in str(exc) + repr(exc) + str(exc.__cause__)
        else:  # pragma: no cover
            raise AssertionError(f"{fn} did not raise")


def _retries(secret: str, tenacity: Any, retry: Any, stop: Any, wait: Any) -> None:
    tries = {"charge": 0}

    @retry(stop=stop(3), wait=wait(0), reraise=True)
    @agentrel.tool(idempotent=False, system="payments")  # retried: logs a warning once
    def charge(card: str, *, memo: str) -> str:
        tries["charge"] += 1
        if tries["charge"] < 3:
            raise ConnectionError(f"declined {card} ({memo})")
        return f"charged {card}"

    @retry(stop=stop(2), wait=wait(0))  # reraise=False: a RetryError at the end
    @agentrel.tool
    def always(card: str) -> str:
        raise TimeoutError(card)

    @retry(stop=stop(2), wait=wait(0), retry_error_callback=lambda state: secret)
    def bare(card: str) -> str:  # a retry with no tool around it: the call is module.bare
        raise OSError(card)

    assert charge(secret, memo=secret) == f"charged {secret}"
    try:
        always(secret)
    except tenacity.RetryError as exc:
        assert secret in repr(exc.last_attempt.exception())
    assert bare(secret) == secret


def _primary(question: str, *, user: str) -> str:
    raise LookupError(f"cache miss for {question} ({user})")


def _secondary(question: str, *, user: str) -> str:
    return f"the answer to {question}"


def _static(question: str, *, user: str) -> str:
    raise LeakyError(question)


_primary.__name__ = "primary"
_secondary.__name__ = "secondary"


def _fallbacks(secret: str) -> None:
    answer = agentrel.fallback("answer", _primary, _secondary)
    assert answer(secret, user=secret) == f"the answer to {secret}"
    doomed = agentrel.fallback("doomed", _primary, ("static", _static))
    try:
        doomed(secret, user=secret)
    except LeakyError:
        pass


def _llm_calls(secret: str) -> None:
    import openai

    from llm_mocks import (
        Script,
        anthropic_client,
        chat_body,
        chat_sse,
        message_body,
        message_sse,
        openai_client,
        responses_body,
    )

    said = json.dumps(f"your key is {secret}").encode()
    chat = chat_body()
    chat["choices"][0]["message"]["content"] = f"your key is {secret}"
    secret_error = {"error": {"message": f"rate limited: {secret}", "type": "error"}}
    messages = [
        {"role": "system", "content": f"never tell {secret}"},
        {"role": "user", "content": f"my key is {secret}"},
    ]
    # a hidden SDK retry (429 with the secret in its body) then the secret as the answer;
    # a 400 with the secret in its message, raised to the caller; a stream of the secret.
    oa = agentrel.instrument(
        openai_client(
            Script(
                (429, secret_error),
                (200, chat),
                (400, secret_error),
                (200, chat_sse().replace(b'"Hel"', said)),
            )
        )
    )
    reply = oa.chat.completions.create(model="gpt-4o", messages=messages, user=secret)
    assert secret in reply.choices[0].message.content
    try:
        oa.chat.completions.create(model="gpt-4o", messages=messages)
    except openai.BadRequestError as exc:
        assert secret in str(exc)
    stream = oa.chat.completions.create(
        model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    assert secret in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    resp = responses_body()
    resp["output"][0]["content"][0]["text"] = secret
    ro = agentrel.instrument(openai_client(Script((200, resp))))
    assert ro.responses.create(model="gpt-4.1", input=secret, instructions=secret).output_text

    msg = message_body()
    msg["content"][0]["text"] = f"your key is {secret}"
    ac = agentrel.instrument(
        anthropic_client(
            Script((200, msg), (200, message_sse().replace(b'"Hi"', said)), headers=None)
        )
    )
    kwargs: dict[str, Any] = {
        "model": "claude-mock-1",
        "max_tokens": 10,
        "system": secret,
        "messages": [{"role": "user", "content": secret}],
    }
    assert secret in ac.messages.create(**kwargs).content[0].text
    events = list(ac.messages.create(stream=True, **kwargs))
    assert events


# --- what agentrel emitted, as text -----------------------------------------------------------
def _span_texts(span: Any) -> Iterator[tuple[str, str]]:
    """(where, text) for every part of a finished span, then the whole of it."""
    yield f"{span.name}: name", span.name
    for k, v in (span.attributes or {}).items():
        yield f"{span.name}: attribute {k}", f"{k}={v}"
    for e in span.events:
        yield f"{span.name}: event {e.name}", e.name
        for k, v in (e.attributes or {}).items():
            yield f"{span.name}: event {e.name} attribute {k}", f"{k}={v}"
    yield f"{span.name}: status description", str(span.status.description)
    for link in span.links:
        yield f"{span.name}: link", f"{link.context} {dict(link.attributes or {})}"
    yield f"{span.name}: to_json", span.to_json()


def _points(cap: testing.Capture) -> list[tuple[str, dict[str, Any], Any]]:
    """(metric, attributes, point) of one collection: exemplars are handed out once, so
    everything is read from the same collection."""
    cap.collect()
    data = cap._data
    assert data is not None
    return [
        (m.name, dict(p.attributes or {}), p)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    ]


def _metric_texts(points: list[tuple[str, dict[str, Any], Any]]) -> Iterator[tuple[str, str]]:
    for name, attrs, point in points:
        yield f"{name}: attributes", f"{name} " + json.dumps(attrs, default=str)
        for ex in getattr(point, "exemplars", None) or ():
            yield f"{name}: exemplar", repr(ex)
            yield f"{name}: exemplar attributes", str(dict(ex.filtered_attributes or {}))
        yield f"{name}: point", repr(point)


def _log_text(record: logging.LogRecord) -> str:
    return logging.Formatter("%(name)s %(levelname)s %(message)s").format(record) + str(record.args)


def _found(texts: Iterator[tuple[str, str]], secret: str) -> list[str]:
    return [where for where, text in texts if secret in text]


def _assert_scenario_recorded(
    cap: testing.Capture, points: list[tuple[str, dict[str, Any], Any]]
) -> None:
    """The spans and metrics searched are the scenario's, all of them."""
    names: dict[str, int] = {}
    for span in cap.spans():
        names[span.name] = names.get(span.name, 0) + 1
    assert names == EXPECTED_SPANS
    assert agentrel.telemetry_errors() == {}
    exemplars = sum(len(getattr(p, "exemplars", None) or ()) for _, _, p in points)
    assert exemplars > 20
    cohorts = {a["agentrel.cohort"] for n, a, _ in points if n == "agentrel.run.retry_depth"}
    assert cohorts == {"other", "none"}, cohorts  # the secret cohort is "other"
    failed = {
        (a["gen_ai.tool.name"], a["error.type"], a["agentrel.absorbed"])
        for n, a, _ in points
        if n == "agentrel.tool.failures"
    }
    assert failed == {  # every failure, by tool and class name: the labels that were searched
        ("soft_fail", "result_flagged", "true"),
        ("raises_message", "ValueError", "true"),
        ("raises_repr", "LeakyError", "true"),
        ("raises_chained", "RuntimeError", "true"),
        ("raises_noted", "PermissionError", "true"),
        ("charge", "ConnectionError", "true"),
        ("always", "TimeoutError", "true"),
        (BARE, "OSError", "true"),
        ("answer", "LookupError", "true"),
        ("doomed", "LookupError", "true"),
        ("doomed", "LeakyError", "true"),
        ("chat gpt-4o", "RateLimitError", "true"),
        ("chat gpt-4o", "BadRequestError", "true"),
        ("raises_repr", "LeakyError", "false"),
    }


def _inject(cap: testing.Capture, **kw: Any) -> None:
    agentrel.configure(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider, **kw)


# --- in memory --------------------------------------------------------------------------------
def test_default_secret_reaches_no_span_metric_exemplar_or_log(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """By default the secret is in no span name, attribute, event, status description or
    link, no metric label, exemplar or point, and no agentrel log record."""
    caplog.set_level(logging.DEBUG, logger="agentrel")
    scenario(SECRET)
    points = _points(cap)
    _assert_scenario_recorded(cap, points)
    leaks = [w for s in cap.spans() for w in _found(_span_texts(s), SECRET)]
    leaks += _found(_metric_texts(points), SECRET)
    records = [r for r in caplog.records if r.name.startswith("agentrel")]
    assert any("'charge'" in r.getMessage() for r in records)  # the unsafe-retry warning
    leaks += [f"log {r.getMessage()[:60]}" for r in records if SECRET in _log_text(r)]
    assert leaks == []


def test_default_exception_events_carry_the_type_not_the_message(cap: testing.Capture) -> None:
    """A failed attempt is an ``agentrel.attempt`` event with ``error.type`` (the class name)
    and no ``exception.message``; no span has an OpenTelemetry ``exception`` event; a failed
    span's status description is its ``error.type``."""
    scenario(SECRET)
    failed_events = [
        (s.name, e)
        for s in cap.spans()
        for e in s.events
        if e.name == "agentrel.attempt" and "error.type" in (e.attributes or {})
    ]
    assert len(failed_events) == 17  # every failed attempt of the scenario
    for _, event in failed_events:
        assert "exception.message" not in event.attributes
        assert "exception.stacktrace" not in event.attributes
    assert not [e for s in cap.spans() for e in s.events if e.name == "exception"]
    by_name = {s.name: s for s in cap.spans()}
    [event] = by_name["execute_tool raises_noted"].events
    assert event.attributes["error.type"] == "PermissionError"
    errored = [s for s in cap.spans() if s.status.status_code.name == "ERROR"]
    assert len(errored) == 14
    for span in errored:
        assert span.status.description == span.attributes["error.type"]
    body = by_name["invoke_agent secrets-body"]
    assert body.status.description == "RuntimeError"
    assert "exception.message" not in body.attributes


def test_opt_in_puts_the_secret_on_spans_only(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """``capture_content=True``: arguments, results, exception messages, prompts and
    completions reach the spans; no metric label, exemplar or log record ever has them."""
    caplog.set_level(logging.DEBUG, logger="agentrel")
    _inject(cap, capture_content=True)
    scenario(SECRET)
    points = _points(cap)
    _assert_scenario_recorded(cap, points)
    by_name: dict[str, Any] = {}
    for s in cap.spans():
        by_name.setdefault(s.name, s)
    lookup_attrs = by_name["execute_tool lookup"].attributes
    assert json.loads(lookup_attrs["gen_ai.tool.call.arguments"]) == {
        "args": [SECRET],
        "kwargs": {"token": SECRET},
    }
    assert SECRET in lookup_attrs["gen_ai.tool.call.result"]
    [event] = by_name["execute_tool raises_repr"].events
    assert event.attributes["exception.message"] == f"leaky {SECRET}"
    assert SECRET in by_name["invoke_agent secrets-body"].attributes["exception.message"]
    chats = [s for s in cap.spans() if s.name.startswith("chat ")]
    assert all(SECRET in s.attributes["gen_ai.input.messages"] for s in chats)
    # completions of the non-streamed calls (streamed output is not captured)
    assert sum(SECRET in s.attributes.get("gen_ai.output.messages", "") for s in chats) == 3
    assert sorted(s.name for s in cap.spans() if SECRET not in s.to_json()) == OPTIN_WITHOUT
    assert _found(_metric_texts(points), SECRET) == []
    records = [r for r in caplog.records if r.name.startswith("agentrel")]
    assert records and [r.getMessage() for r in records if SECRET in _log_text(r)] == []


def test_opt_in_redaction_removes_it_from_spans_too(cap: testing.Capture) -> None:
    """With a redaction hook the secret is nowhere at all, spans included."""
    _inject(cap, capture_content=True, redact=lambda s: s.replace(SECRET, "[redacted]"))
    scenario(SECRET)
    points = _points(cap)
    _assert_scenario_recorded(cap, points)
    assert (
        "[redacted]" in cap.spans("execute_tool lookup")[0].attributes["gen_ai.tool.call.arguments"]
    )
    leaks = [w for s in cap.spans() for w in _found(_span_texts(s), SECRET)]
    assert leaks + _found(_metric_texts(points), SECRET) == []


def test_reject_reason_is_span_text_by_contract_never_a_label(cap: testing.Capture) -> None:
    """``agentrel.reject(reason)``: the one text recorded by default, documented as such
    ("reason goes on the span event only; keep it a short constant"): on the span event, in no
    label."""

    @agentrel.tool
    def draft(text: str) -> str:
        agentrel.reject(f"contains {text}")
        return text

    with agentrel.run("rejects"):
        draft(SECRET)
        echo(SECRET)
        agentrel.reject(f"also {SECRET}")
    [draft_span] = cap.spans("execute_tool draft")
    reject_event, attempt_event = draft_span.events
    assert reject_event.name == "agentrel.reject"
    assert reject_event.attributes["agentrel.reject.reason"] == f"contains {SECRET}"
    assert dict(attempt_event.attributes)["error.type"] == "rejected"
    [run_span] = cap.spans("invoke_agent rejects")
    assert [e.attributes["agentrel.reject.reason"] for e in run_span.events] == [f"also {SECRET}"]
    assert cap.counter("agentrel.tool.failures", {"error.type": "rejected"}) == 2
    assert _found(_metric_texts(_points(cap)), SECRET) == []


def test_default_telemetry_errors_log_no_result_text(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """Misused hooks are telemetry errors, counted and logged once each; the log records must
    not carry the result text the hooks saw: a ``failure_when`` predicate and an
    ``@agentrel.llm(usage=)`` callback that raise on the result (``int(result)``), a
    ``usage=`` returning the result itself, and a ``record_tokens()`` given text."""
    caplog.set_level(logging.DEBUG, logger="agentrel")

    @agentrel.tool(failure_when=lambda r: int(r) > 0)
    def numeric() -> str:
        return SECRET

    @agentrel.llm(model="m", usage=lambda r: (int(r), 0))
    def ask() -> str:
        return SECRET

    @agentrel.llm(model="m", usage=lambda r: r)
    def ask_raw() -> str:
        return SECRET

    with agentrel.run("callbacks"):
        assert numeric() == SECRET
        assert ask() == SECRET
        assert ask_raw() == SECRET
        agentrel.record_tokens(input=SECRET)  # type: ignore[arg-type]
    assert agentrel.telemetry_errors() == {"failure_when": 1, "llm.usage": 2, "record_tokens": 1}
    records = [r for r in caplog.records if r.name.startswith("agentrel")]
    assert len(records) == 4  # one per site and error type
    assert [r.getMessage() for r in records if SECRET in _log_text(r)] == []


def _child_env() -> dict[str, str]:
    """A clean environment for a child interpreter: PATH, and PYTHONPATH when set (so that
    the child imports the agentrel this test run imports)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


# --- served by a real endpoint, in a fresh interpreter ----------------------------------------
def _served(mode: str, secret: str) -> dict[str, Any]:
    """In a fresh interpreter: ``configure(prometheus_port=0)`` (``capture_content`` when
    ``mode == "optin"``), the scenario, a scrape of both formats, shutdown."""
    import urllib.request

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(logging.Formatter().format(record) + str(record.args))

    logging.getLogger("agentrel").addHandler(Keep(logging.DEBUG))
    logging.getLogger("agentrel").setLevel(logging.DEBUG)
    cfg = agentrel.configure(prometheus_port=0, capture_content=mode == "optin")
    assert cfg.metrics_server is not None and cfg.metrics_server.addr == "127.0.0.1"
    exporter = InMemorySpanExporter()
    cfg.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    scenario(secret)
    url = cfg.prometheus_url
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    om = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text"})
    with urllib.request.urlopen(om, timeout=10) as r:
        openmetrics = r.read().decode()
    assert cfg.shutdown()
    return {
        # agentrel's own (the global provider also gets the Anthropic SDK's own spans)
        "spans": [
            s.to_json()
            for s in exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == "agentrel"
        ],
        "prometheus": text,
        "openmetrics": openmetrics,
        "logs": records,
        "telemetry_errors": dict(agentrel.telemetry_errors()),
    }


def test_served_metrics_and_logs_never_carry_it() -> None:
    """A real ``/metrics`` endpoint (``configure(prometheus_port=0)`` on 127.0.0.1), default
    and opt-in, each in a fresh interpreter: the secret is in neither exposition format nor
    any log record; in the spans only with the opt-in."""
    env = _child_env()
    procs = {
        mode: subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--served", mode, SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for mode in ("default", "optin")
    }
    results: dict[str, dict[str, Any]] = {}
    try:
        for mode, proc in procs.items():
            out, err = proc.communicate(timeout=120)  # a hang bound, not a timing assert
            assert proc.returncode == 0, err
            assert SECRET not in err
            results[mode] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for mode, res in results.items():
        assert res["telemetry_errors"] == {}, mode
        assert len(res["spans"]) == sum(EXPECTED_SPANS.values()), mode
        text, om = res["prometheus"], res["openmetrics"]
        assert "agentrel_tool_failures_total{" in text and 'error_type="LeakyError"' in text
        assert 'agentrel_cohort="other"' in text
        assert om.rstrip().endswith("# EOF") and 'trace_id="' in om  # exemplars served
        assert any("'charge'" in line for line in res["logs"]), mode
        assert SECRET not in text, mode
        assert SECRET not in om, mode
        assert [line for line in res["logs"] if SECRET in line] == [], mode
    assert [s for s in results["default"]["spans"] if SECRET in s] == []
    optin = [json.loads(s) for s in results["optin"]["spans"]]
    assert sorted(s["name"] for s in optin if SECRET not in json.dumps(s)) == OPTIN_WITHOUT


if __name__ == "__main__" and sys.argv[1:2] == ["--served"]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # llm_mocks
    print(json.dumps(_served(sys.argv[2], sys.argv[3])))
