"""Adversarial reliability, names: hostile cohorts, tool names and agent names.

* 100,000 distinct hostile cohort values (long strings, unicode, control characters, quotes,
  newlines, near-misses of allowed ones, ``other`` and ``none`` themselves) passed to
  ``agentrel.run``, ``@agentrel.agent`` and ``instrumentation.run_scope``: every one is recorded
  as ``other``; the allowlist given to ``configure()`` (itself hostile: quotes, backslashes,
  newlines, braces, CJK, emoji, RTL) comes out exactly; ``cohort=None`` is ``none``. The
  served ``/metrics`` has exactly those cohort values and a fixed number of series.
* What is rejected, and where: an empty or non-str cohort, tool name or agent name is a
  ``TypeError`` when the run is opened or the function decorated; an allowlist entry that is
  empty, not a str, or not encodable as UTF-8 is refused by ``configure()``.
* Hostile tool, agent, model and exception-class names are accepted as they are: the served
  text parses with prometheus_client's text and OpenMetrics parsers and every label value
  equals what was recorded, except a lone surrogate (no UTF-8 form), served as U+FFFD.

Anything that calls ``configure()`` runs in a fresh interpreter (it sets the global providers,
once per process) serving ``/metrics`` on 127.0.0.1 port 0; the test scrapes it over HTTP.
The rules are in docs section "The /metrics endpoint and hostile names".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

import agentrel
from agentrel import instrumentation

HANG_GUARD = 120.0  # the child's whole life, a hang bound
SCRAPE_TIMEOUT = 10.0
N_COHORTS = 100_000
OM = "application/openmetrics-text; version=1.0.0"

#: The allowlist: hostile itself, and every entry must come back exactly.
ALLOWED = [
    "smb",
    'ent"er\\prise\n{tier="gold"}#=,',
    "企業🏢",
    "עברית",
    "\u202eevil",
    " ",
]

#: Hostile tool / agent / model names; each must round-trip through both parsers.
NAMES = [
    'quote"d',
    "back\\slash",
    "trailing\\",
    "new\nline",
    "\n",
    "cr\rreturn",
    "tab\tbed",
    "brace{}",
    "}{",
    'x{y="z"}',
    "#hash",
    "# HELP agentrel_tokens fake",
    "# EOF",
    "eq=ual",
    'a="b",c="d"',
    "emoji🙂🔥",
    "中文工具",
    "עברית",
    "مرحبا",
    "\u202eRTL override",
    "zero\u200bwidth",
    "nul\x00byte",
    "bell\x07\x1b[31mred",
    "del\x7f",
    "line\u2028sep\u2029",
    "nel\x85",
    "vt\x0bff\x0c",
    "fs\x1cgs\x1drs\x1eus\x1f",
    " ",
    " lead",
    "trail ",
    "e\u0301",
    "\ufeffbom",
    "\ufffd",
    "\U0010ffff",
    '\\"\\n',
    "x" * 10_000,
]
#: A lone surrogate has no UTF-8 form: refused as a name (test_names_without_utf8_are_refused),
#: served as U+FFFD where one reaches a label value anyway (an exception class's name).
SURROGATE = "lone\ud800surrogate"
SERVED = {n: n for n in NAMES} | {SURROGATE: "lone\ufffdsurrogate"}


# --- a child interpreter that configures agentrel and serves /metrics --------------------------
CHILD_PRELUDE = r"""
import json, sys, urllib.request
import agentrel
from agentrel import instrumentation

setup = json.loads(sys.stdin.readline())
cfg = agentrel.configure(prometheus_port=0, cohorts=setup["allowed"], prices={"m": (1, 2, 0)})
report = {}
"""

CHILD_EPILOGUE = r"""
report["errors"] = dict(agentrel.telemetry_errors())
report["port"] = cfg.prometheus_port
report["addr"] = cfg.metrics_server.addr
print(json.dumps(report), flush=True)
sys.stdin.readline()  # the test has scraped
report = {"shutdown": cfg.shutdown(), "configured": agentrel.current_configuration() is not None}
print(json.dumps(report), flush=True)
"""


class Child:
    """A fresh interpreter running ``body`` between the prelude and the epilogue."""

    def __init__(self, body: str, setup: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + body + CHILD_EPILOGUE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        self.setup = setup

    def __enter__(self) -> Child:
        return self

    def run(self) -> dict[str, Any]:
        """Send the setup, wait for the report (the endpoint is then serving)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(self.setup) + "\n")  # ASCII: surrogates, NULs escaped
        self.proc.stdin.flush()
        line = self._readline()
        return dict(json.loads(line))

    def finish(self) -> dict[str, Any]:
        """Let the child shut its configuration down and exit."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("done\n")
        self.proc.stdin.flush()
        report = dict(json.loads(self._readline()))
        _, err = self.proc.communicate(timeout=HANG_GUARD)
        assert self.proc.returncode == 0, err
        report["stderr"] = err
        return report

    def _readline(self) -> str:
        # The child's only output is one line per phase; a hang is bounded by the test's
        # pytest-timeout and by __exit__, which kills the child.
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            _, err = self.proc.communicate(timeout=HANG_GUARD)
            pytest.fail(f"child exited early: {err}")
        return line

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=HANG_GUARD)


def scrape(report: dict[str, Any], accept: str | None = None) -> str:
    assert report["addr"] == "127.0.0.1"
    url = f"http://127.0.0.1:{report['port']}/metrics"
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=SCRAPE_TIMEOUT) as resp:
        assert resp.status == 200
        return str(resp.read().decode("utf-8"))


def samples(text: str, parser: Callable[[str], Any]) -> list[Any]:
    return [s for fam in parser(text) for s in fam.samples]


def both_formats(report: dict[str, Any]) -> Iterator[list[Any]]:
    """The samples of a text scrape and of an OpenMetrics scrape, each parsed by its parser."""
    yield samples(scrape(report), text_parse)
    om = scrape(report, OM)
    assert om.endswith("# EOF\n")
    yield samples(om, om_parse)


# --- B. 100,000 hostile cohorts ------------------------------------------------------------------
COHORTS_BODY = r"""
allowed = set(setup["allowed"])
n = setup["n"]
templates = [
    lambda i: f"tenant-{i}",
    lambda i: f'q"uo"te{i}"',
    lambda i: f"back\\slash\\{i}\\",
    lambda i: f"new\nline{i}\n",
    lambda i: f"{{brace={i}}}",
    lambda i: f"# HELP x {i}",
    lambda i: f"ctl{chr(i % 32)}{i}{chr(127)}",
    lambda i: f"emoji🙂{i}🔥",
    lambda i: f"中文{i}",
    lambda i: f"\u202e{i}عربي",
    lambda i: f"smb{' ' * (1 + i % 3)}{i}",
    lambda i: "x" * (1000 + i % 1000) + str(i),
    lambda i: f"lone\ud800{i}",
    lambda i: f"other{i}",
]
near_misses = ["other", "none", "SMB", "Smb", "smb ", " smb", "smb\n", "\nsmb", "smb\x00",
               "ｓｍｂ", "s\u200bmb", "\ud800", "  ", "\t", "企業", "企業🏢 ", "ent\"er\\prise"]
values = near_misses + [templates[i % len(templates)](i) for i in range(n - len(near_misses))]
assert len(set(values)) == n and not allowed & set(values)


def step(i):
    # tokens (useful) on every 100th run: agentrel.tokens and agentrel.cost carry the cohort
    if i % 100 == 0:
        agentrel.record_tokens(input=1, output=1, model="m")
    if i % 1000 == 1:
        raise KeyError("boom")


recorded = []
for i, v in enumerate(values):
    try:
        kind = i % 10
        if kind < 7:
            with agentrel.run("hostile", cohort=v) as r:
                recorded.append(r.cohort)
                step(i)
        elif kind < 9:
            with instrumentation.run_scope("hostile", cohort=v, join=False) as h:
                recorded.append(h.run.cohort)
                step(i)
        else:
            @agentrel.agent("hostile", cohort=v)
            def agent_fn(i=i):
                recorded.append(agentrel.current_run().cohort)
                step(i)
            agent_fn()
    except KeyError:
        pass
for c in setup["allowed"]:
    with agentrel.run("hostile", cohort=c) as r:
        recorded.append(r.cohort)
with agentrel.run("hostile") as r:
    recorded.append(r.cohort)
report["n"] = len(values)
report["recorded"] = sorted(set(recorded))
report["recorded_other"] = recorded.count("other")
"""


def test_100k_hostile_cohorts_collapse_to_other() -> None:
    """100,000 distinct cohort values outside the allowlist, through all three APIs that take
    one: each run's cohort is ``other``; the allowlist's own hostile values and ``none`` come
    out exactly; the endpoint serves only those cohort values, in a fixed set of series, and
    both parsers read them back; nothing is a telemetry error."""
    with Child(COHORTS_BODY, {"allowed": ALLOWED, "n": N_COHORTS}) as child:
        report = child.run()
        assert report["n"] == N_COHORTS
        assert report["recorded"] == sorted([*ALLOWED, "other", "none"])
        assert report["recorded_other"] == N_COHORTS
        assert report["errors"] == {}
        failed = len([i for i in range(N_COHORTS) if i % 1000 == 1])  # 100
        with_tokens = len([i for i in range(N_COHORTS) if i % 100 == 0])  # 1,000
        for parsed in both_formats(report):
            cohorts = {s.labels["agentrel_cohort"] for s in parsed if "agentrel_cohort" in s.labels}
            assert cohorts == {*ALLOWED, "other", "none"}
            runs = {
                (s.labels["agentrel_cohort"], s.labels["agentrel_outcome"]): s.value
                for s in parsed
                if s.name == "agentrel_run_retry_depth_count"
            }
            assert runs == {
                ("other", "success"): N_COHORTS - failed,
                ("other", "failed"): failed,
                **{(c, "success"): 1 for c in ALLOWED},
                ("none", "success"): 1,
            }
            tokens = {
                (s.labels["agentrel_cohort"], s.labels["gen_ai_token_type"]): s.value
                for s in parsed
                if s.name == "agentrel_tokens_total"
            }
            assert tokens == {("other", "input"): with_tokens, ("other", "output"): with_tokens}
            # every series of every metric: the cohort values above, nothing else
            per_cohort = Counter(
                s.labels["agentrel_cohort"] for s in parsed if "agentrel_cohort" in s.labels
            )
            assert set(per_cohort) == {*ALLOWED, "other", "none"}
            assert len(parsed) == len({(s.name, tuple(sorted(s.labels.items()))) for s in parsed})
        done = child.finish()
    assert done == {"shutdown": True, "configured": False, "stderr": ""}


# --- B. what is rejected, and where --------------------------------------------------------------
COHORT_ERROR = "cohort must be a non-empty str"
AGENT_ERROR = "agent name must be a non-empty str"
TOOL_ERROR = "tool name must be a non-empty str"
BAD: Any = [b"smb", 7, ["smb"]]  # not str


@pytest.mark.parametrize(
    ("open_run", "match"),
    [
        pytest.param(lambda: agentrel.run("a", cohort=""), COHORT_ERROR, id="run-empty"),
        pytest.param(lambda: agentrel.run("a", cohort=BAD[0]), COHORT_ERROR, id="run-bytes"),
        pytest.param(lambda: agentrel.run("a", cohort=BAD[1]), COHORT_ERROR, id="run-int"),
        pytest.param(lambda: agentrel.run("a", cohort=BAD[2]), COHORT_ERROR, id="run-list"),
        pytest.param(lambda: agentrel.agent("a", cohort=""), COHORT_ERROR, id="agent-empty"),
        pytest.param(
            lambda: instrumentation.run_scope("a", cohort=""), COHORT_ERROR, id="run-scope-empty"
        ),
        pytest.param(lambda: agentrel.run(""), AGENT_ERROR, id="run-name-empty"),
        pytest.param(lambda: agentrel.run(BAD[1]), AGENT_ERROR, id="run-name-int"),
        pytest.param(lambda: agentrel.agent(""), AGENT_ERROR, id="agent-name-empty"),
        pytest.param(lambda: agentrel.agent(BAD[0]), AGENT_ERROR, id="agent-name-bytes"),
        pytest.param(lambda: agentrel.tool(name=""), TOOL_ERROR, id="tool-name-empty"),
        pytest.param(lambda: agentrel.tool(name=BAD[0]), TOOL_ERROR, id="tool-name-bytes"),
        pytest.param(lambda: agentrel.tool(name=BAD[1]), TOOL_ERROR, id="tool-name-int"),
        pytest.param(lambda: agentrel.tool(""), TOOL_ERROR, id="tool-positional-empty"),
    ],
)
def test_empty_or_non_str_names_and_cohorts_are_type_errors_up_front(
    open_run: Callable[[], Any], match: str
) -> None:
    """Opening the run or decorating (not the first call) raises: nothing is recorded."""
    with pytest.raises(TypeError, match=match):
        open_run()


@pytest.mark.parametrize(
    ("cohorts", "error", "match"),
    [
        pytest.param([""], TypeError, "every cohort must be a non-empty str", id="empty"),
        pytest.param([None], TypeError, "every cohort must be a non-empty str", id="none"),
        pytest.param([b"smb"], TypeError, "every cohort must be a non-empty str", id="bytes"),
        pytest.param(["smb", 1], TypeError, "every cohort must be a non-empty str", id="int"),
        pytest.param("smb", TypeError, "cohorts must be an iterable of str", id="a-str"),
        pytest.param(["ok", "lone\ud800"], ValueError, "encodable as UTF-8", id="surrogate"),
    ],
)
def test_a_bad_allowlist_is_refused_by_configure(
    cohorts: Any, error: type[Exception], match: str
) -> None:
    """Refused before anything is set up (no configuration is live afterwards)."""
    with pytest.raises(error, match=match):
        agentrel.configure(cohorts=cohorts)
    assert agentrel.current_configuration() is None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: agentrel.tool(name=SURROGATE)(lambda: None), id="tool"),
        pytest.param(lambda: agentrel.llm(model=SURROGATE)(lambda: None), id="model"),
        pytest.param(lambda: agentrel.agent(SURROGATE)(lambda: None), id="agent"),
        pytest.param(lambda: agentrel.run(SURROGATE).__enter__(), id="run"),
        pytest.param(lambda: instrumentation.tool_spec(SURROGATE, register=False), id="tool_spec"),
    ],
)
def test_names_without_utf8_are_refused(make: Callable[[], Any]) -> None:
    """A name with no UTF-8 form (a lone surrogate) is a ValueError when the tool is decorated
    or the run opens: OTLP could not carry it. A cohort is data: it becomes ``other``."""
    with pytest.raises(ValueError, match="encodable as UTF-8"):
        make()
    assert agentrel.current_run() is None


# --- B. hostile tool, agent, model and exception names -------------------------------------------
NAMES_BODY = r"""
class Hostile(Exception):
    pass


Hostile.__qualname__ = setup["error"]
for n in setup["names"]:
    @agentrel.tool(name=n)
    def t(fail):
        agentrel.record_tokens(input=1, output=2, model=n)
        if fail:
            raise Hostile("x")
        return n

    with agentrel.run(n, cohort=setup["allowed"][1]):
        try:
            t(True)
        except Hostile:
            pass
        assert t(False) == n
report["inventory"] = sorted(i.name for i in agentrel.registered_tools())
"""
ERROR_NAME = 'Err"{x}\n#=🙂\\'


def test_hostile_names_are_served_exactly_and_parse_in_both_formats() -> None:
    """Tool, agent, model and exception-class names with quotes, backslashes, newlines,
    braces, ``#``, ``=``, control characters, emoji, CJK and RTL are accepted at decoration
    and served as recorded: the text and OpenMetrics scrapes both parse, and every label value
    equals the name; the inventory keeps every name as given."""
    setup = {"names": NAMES, "allowed": ALLOWED, "error": ERROR_NAME}
    with Child(NAMES_BODY, setup) as child:
        report = child.run()
        assert report["errors"] == {}
        assert report["inventory"] == sorted(NAMES)
        served = set(NAMES)
        assert len(served) == len(NAMES)
        for parsed in both_formats(report):

            def label(metric: str, key: str, parsed: list[Any] = parsed) -> dict[str, float]:
                return {s.labels[key]: s.value for s in parsed if s.name == metric}

            def pairs(metric: str, parsed: list[Any] = parsed) -> dict[tuple[str, ...], float]:
                return {
                    tuple(v for k, v in sorted(s.labels.items()) if "otel_scope" not in k): s.value
                    for s in parsed
                    if s.name == metric
                }

            assert label("agentrel_run_retry_depth_count", "gen_ai_agent_name") == dict.fromkeys(
                served, 1.0
            )
            assert label("agentrel_run_retry_depth_sum", "gen_ai_agent_name") == dict.fromkeys(
                served, 1.0
            )
            cohorts = {s.labels["agentrel_cohort"] for s in parsed if "agentrel_cohort" in s.labels}
            assert cohorts == {ALLOWED[1]}
            # agentrel_tool_failures_total: absorbed, error_type, tool
            assert pairs("agentrel_tool_failures_total") == {
                ("true", ERROR_NAME, n): 1.0 for n in served
            }
            # agentrel_tool_attempts_count: outcome, tool
            assert pairs("agentrel_tool_attempts_count") == {
                **{("failed", n): 1.0 for n in served},
                **{("success", n): 1.0 for n in served},
            }
            # agentrel_tokens_total: agent, cohort, disposition, model, token type
            assert pairs("agentrel_tokens_total") == {
                (ALLOWED[1], disposition, n, n, ttype): float(count)
                for n in served
                for ttype, count in (("input", 1), ("output", 2))
                for disposition in ("useful", "wasted")
            }
        done = child.finish()
    assert done == {"shutdown": True, "configured": False, "stderr": ""}


def test_whitespace_and_near_miss_names_are_distinct_series() -> None:
    """``" "``, ``"a"`` and ``"a "`` are three names (nothing is stripped or normalised), and
    a name that is ``e`` + combining accent is not ``é``."""
    names = [" ", "a", "a ", "e\u0301", "\u00e9"]
    body = r"""
for n in setup["names"]:
    with agentrel.run(n):
        pass
"""
    with Child(body, {"names": names, "allowed": ["smb"]}) as child:
        report = child.run()
        for parsed in both_formats(report):
            agents = Counter(
                s.labels["gen_ai_agent_name"]
                for s in parsed
                if s.name == "agentrel_run_retry_depth_count"
            )
            assert agents == dict.fromkeys(names, 1)
        assert child.finish()["shutdown"] is True


def test_surrogate_label_value_is_served_as_replacement_character() -> None:
    """In process, through the endpoint itself: one label value with a lone surrogate no
    longer makes every scrape a 500 (prometheus_client cannot encode it); it is served as
    U+FFFD and the rest of the scrape is intact."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from agentrel._prometheus import MetricsServer, registry_for

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    counter = mp.get_meter("t").create_counter("hostile.names")
    counter.add(1, {"name": SURROGATE})
    counter.add(2, {"name": "plain"})
    server = MetricsServer(registry_for(reader), "127.0.0.1", 0)
    try:
        report = {"port": server.port, "addr": server.addr}
        for parsed in both_formats(report):
            got = {s.labels["name"]: s.value for s in parsed if s.name == "hostile_names_total"}
            assert got == {SERVED[SURROGATE]: 1.0, "plain": 2.0}
    finally:
        server.shutdown()
        mp.shutdown()
    assert agentrel.telemetry_errors() == {}
