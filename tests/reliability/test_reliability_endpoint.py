"""Adversarial reliability, the endpoint: the ``/metrics`` server ``configure()`` starts, attacked
over real sockets.

An agent process (a fresh interpreter: ``configure()`` sets the global OpenTelemetry providers,
once per process) runs ``agentrel.configure(prometheus_port=0)`` on 127.0.0.1, records one
recovered run, and then takes commands on stdin (``record`` another run, ``errors`` for
``agentrel.telemetry_errors()``, ``shutdown`` for ``Configuration.shutdown()``), one JSON line
back per command. The tests talk raw HTTP to its port: malformed requests, big headers, 200
concurrent scrapes, slowloris connections, every method, ``Accept`` negotiation. Every scrape
that is answered is checked for its exact values; every socket is closed; every wait has a
timeout (``HANG_GUARD``), the only use of time here.

The rules pinned here are in docs section "The /metrics endpoint and hostile names".
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from agentrel import telemetry_errors
from agentrel._prometheus import MetricsServer

#: Seconds any one wait may take before the test fails as hung (a bound, never an assertion).
HANG_GUARD = 10.0
CONCURRENT = 200
SLOWLORIS = 20

TEXT_004 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_100 = "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"
OM_100 = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
OM_NO_VERSION = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: What Prometheus 3 and Prometheus 2 send when they scrape.
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
ALLOW = "OPTIONS,GET,HEAD"

AGENT = r"""
import json, sys
import agentrel

cfg = agentrel.configure(prometheus_port=0, cohorts=["smb"], service_name="reliability")


@agentrel.tool(name="probe")
def probe(fail):
    if fail:
        raise TimeoutError("down")
    return "ok"


def record():
    with agentrel.run("healthy", cohort="smb"):
        try:
            probe(True)
        except TimeoutError:
            pass
        probe(False)


record()
print(json.dumps({"port": cfg.prometheus_port, "addr": cfg.metrics_server.addr}), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "record":
        record()
        out = "recorded"
    elif cmd == "errors":
        out = dict(agentrel.telemetry_errors())
    elif cmd == "shutdown":
        done = cfg.shutdown()
        out = {"shutdown": done, "configured": agentrel.current_configuration() is not None}
    else:
        out = "unknown command " + cmd
    print(json.dumps(out), flush=True)
"""


# --- the agent process -------------------------------------------------------------------------
class AgentProcess:
    """The agent interpreter: its endpoint's port, and a command channel over stdin/stdout."""

    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", AGENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="agent-stdout", daemon=True)
        self._reader.start()
        self.is_shut_down = False
        try:
            hello = self._next()
        except BaseException:
            self.close()
            raise
        self.port: int = hello["port"]
        self.addr: str = hello["addr"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self) -> Any:
        try:
            line = self._lines.get(timeout=HANG_GUARD * 3)
        except queue.Empty:
            pytest.fail(f"the agent process did not answer; stderr: {self.stderr()}")
        assert line is not None, f"the agent process exited; stderr: {self.stderr()}"
        return json.loads(line)

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._next()

    def shutdown(self) -> Any:
        self.is_shut_down = True
        return self.ask("shutdown")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        """Shut the endpoint down (if not yet) and let the interpreter exit; kill it if it
        does not within the guard."""
        if self.proc.poll() is None and not self.is_shut_down:
            try:
                self.shutdown()
            except Exception:
                pass
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=HANG_GUARD)
        self._reader.join(timeout=HANG_GUARD)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    proc = AgentProcess()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def fresh_agent() -> Iterator[AgentProcess]:
    proc = AgentProcess()
    try:
        yield proc
    finally:
        proc.close()


# --- raw HTTP ------------------------------------------------------------------------------------
@dataclass
class Response:
    status: int | None  # None: no status line (an HTTP/0.9-style answer)
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def exchange(port: int, data: bytes, *, close_write: bool = True) -> bytes:
    """Send ``data`` on a fresh connection, half-close, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as s:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        return read_all(s)


def read_all(s: socket.socket) -> bytes:
    chunks: list[bytes] = []
    for _ in range(100_000):  # bounded: 100,000 reads of up to 64 KiB
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:  # the server closed with request bytes unread
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> Response:
    if not raw.startswith(b"HTTP/"):
        return Response(None, "", {}, raw)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    _, code, reason = status_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(int(code), reason, headers, body)


def request(
    method: str = "GET", path: str = "/metrics", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def get(port: int, path: str = "/metrics", headers: dict[str, str] | None = None) -> Response:
    return parse(exchange(port, request("GET", path, headers)))


# --- what a scrape must say ----------------------------------------------------------------------
WATCHED = (
    "agentrel_run_retry_depth_count",
    "agentrel_run_retry_depth_sum",
    "agentrel_tool_failures_total",
    "agentrel_tool_attempts_count",
)


def values(text: str, parser: Callable[[str], Any] = text_parse) -> dict[tuple[Any, ...], float]:
    """The watched series of a scrape: (sample name, labels without otel_scope_*) -> value."""
    out = {}
    for fam in parser(text):
        for s in fam.samples:
            if s.name in WATCHED:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if "otel_scope" not in k))
                out[(s.name, labels)] = s.value
    return out


def expected(runs: int) -> dict[tuple[Any, ...], float]:
    """``runs`` recovered runs of agent "healthy" (cohort smb): probe failed once, absorbed,
    then succeeded."""
    run = (("agentrel_cohort", "smb"), ("agentrel_outcome", "recovered"))
    run += (("gen_ai_agent_name", "healthy"),)
    failure = (("agentrel_absorbed", "true"), ("error_type", "TimeoutError"))
    failure += (("gen_ai_tool_name", "probe"),)
    return {
        ("agentrel_run_retry_depth_count", run): float(runs),
        ("agentrel_run_retry_depth_sum", run): float(runs),
        ("agentrel_tool_failures_total", failure): float(runs),
        (
            "agentrel_tool_attempts_count",
            (("agentrel_outcome", "failed"), ("gen_ai_tool_name", "probe")),
        ): float(runs),
        (
            "agentrel_tool_attempts_count",
            (("agentrel_outcome", "success"), ("gen_ai_tool_name", "probe")),
        ): float(runs),
    }


def assert_complete_scrape(resp: Response, runs: int = 1) -> None:
    """A 200 in the text format whose body is all there and says exactly ``runs`` runs."""
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == TEXT_004
    assert int(resp.headers["content-length"]) == len(resp.body)
    assert values(resp.body.decode()) == expected(runs)


def assert_serves(agent: AgentProcess, runs: int = 1) -> None:
    assert_complete_scrape(get(agent.port), runs)


# --- A. malformed requests -----------------------------------------------------------------------
def error_page(code: int, message: str) -> bytes:
    """The start of what http.server's send_error writes into its HTML body."""
    return f"<p>Error code: {code}</p>\n        <p>Message: {message}".encode()


MALFORMED = [
    # (bytes sent, the status line's code or None when there is none, start of the error page)
    pytest.param(
        b"\x00\xff\xfe\x80 garbage\r\n\r\n",
        None,
        error_page(400, "Bad HTTP/0.9 request type ('\\x00\u00ff\u00fe\\x80')."),
        id="garbage-bytes",
    ),
    pytest.param(
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\xaa" * 32 + b"\r\n",
        None,
        error_page(400, "Bad request syntax ('\\x16\\x03\\x01\\x00\u00a5"),
        id="tls-client-hello",
    ),
    pytest.param(
        b"GARBAGE\r\n\r\n",
        None,
        error_page(400, "Bad request syntax ('GARBAGE')."),
        id="bad-request-line",
    ),
    pytest.param(
        b"GET /metrics HTTP/1.1 extra\r\n\r\n",
        None,
        error_page(400, "Bad request version ('extra')."),
        id="four-words",
    ),
    pytest.param(
        b"GET /metrics HTTP/abc\r\n\r\n",
        None,
        error_page(400, "Bad request version ('HTTP/abc')."),
        id="version-not-a-number",
    ),
    pytest.param(
        b"GET /metrics HTTP/9.9\r\n\r\n",
        None,
        error_page(505, "Invalid HTTP version (9.9)."),
        id="version-9.9",
    ),
    pytest.param(
        b"GET /metrics HTTP/2.0\r\n\r\n",
        None,
        error_page(505, "Invalid HTTP version (2.0)."),
        id="version-2.0",
    ),
    pytest.param(
        b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n\r\n",
        414,
        error_page(414, "Request-URI Too Long."),
        id="request-line-over-64KiB",
    ),
    pytest.param(
        request(headers={f"X-{i}": "a" for i in range(100)}),
        431,
        error_page(431, "Too many headers."),
        id="101-headers",
    ),
]


@pytest.mark.parametrize(("data", "status", "page"), MALFORMED)
def test_malformed_request_gets_an_error_and_the_server_serves_on(
    agent: AgentProcess, data: bytes, status: int | None, page: bytes
) -> None:
    """A malformed request line or header block is answered with http.server's error page
    (HTML) and the connection is closed; a request line the server cannot read as HTTP/1.x
    gets the page with no status line (the HTTP/0.9 way). The next scrape is complete."""
    resp = parse(exchange(agent.port, data))
    assert resp.status == status
    assert page in resp.body, resp.body
    assert b"agentrel" not in resp.body
    assert_serves(agent)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"\r\n\r\n", id="empty-request-line"),
    ],
)
def test_a_connection_that_says_nothing_is_closed_without_an_answer(
    agent: AgentProcess, data: bytes
) -> None:
    assert exchange(agent.port, data) == b""
    assert_serves(agent)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Cut-Off", id="truncated-headers"),
        pytest.param(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Cut-Off: ", id="truncated-value"),
        pytest.param(b"GET /metrics HTTP/1.1\r\nNoColonHere\r\n\r\n", id="header-without-colon"),
        pytest.param(b"GET /metrics HTTP/1.1\r\n: no-name\r\n\r\n", id="header-without-name"),
        pytest.param(b"GET /metrics HTTP/1.1\r\nX: a\x00\xffb\r\n\r\n", id="nul-and-8bit-value"),
        pytest.param(b"GET /metrics HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", id="folded-header"),
        pytest.param(b"GET /metrics HTTP/1.1\n\n", id="bare-LF"),
        pytest.param(b"GET /metrics HTTP/1.10\r\n\r\n", id="version-1.10"),
        pytest.param(b"GET /\xff\xfe%00 HTTP/1.1\r\n\r\n", id="non-utf8-path"),
        pytest.param(b"GET http://elsewhere.example/x HTTP/1.1\r\n\r\n", id="absolute-uri"),
        pytest.param(b"GET /anything?name=%ZZ HTTP/1.1\r\n\r\n", id="any-path-bad-query"),
    ],
)
def test_odd_but_readable_requests_are_scraped(agent: AgentProcess, data: bytes) -> None:
    """Headers cut off by the client's half-close end the header block; header lines without
    a colon or a name, NUL bytes, folding and bare LFs are tolerated; any path serves the
    metrics (prometheus_client does not constrain it): all get a complete 200 scrape."""
    assert_complete_scrape(parse(exchange(agent.port, data)))


def test_http_0_9_request_gets_the_bare_body(agent: AgentProcess) -> None:
    """``GET /metrics`` with no version is HTTP/0.9: the answer is the body alone."""
    resp = parse(exchange(agent.port, b"GET /metrics\r\n\r\n"))
    assert resp.status is None
    assert values(resp.body.decode()) == expected(1)


def test_favicon_is_an_empty_200(agent: AgentProcess) -> None:
    resp = get(agent.port, "/favicon.ico")
    assert (resp.status, resp.headers["content-length"], resp.body) == (200, "0", b"")


# --- A. big headers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Big": "a" * 8 * 1024}, id="one-8KiB-header"),
        pytest.param({f"X-{i}": "b" * 4 * 1024 for i in range(16)}, id="64KiB-in-16-headers"),
        pytest.param({f"X-{i}": "c" * 60 * 1024 for i in range(16)}, id="960KiB-in-16-headers"),
        pytest.param({"X-Big": "d" * 65527}, id="longest-header-line-65536B"),
        pytest.param({"Accept": "x/y;" * 2048}, id="8KiB-accept"),
    ],
)
def test_big_request_headers_are_served(agent: AgentProcess, headers: dict[str, str]) -> None:
    """8 KiB and more of headers are fine: only one header line over 65,536 bytes (CRLF
    included) or more than 100 header lines are refused (http.client's limits)."""
    assert_complete_scrape(get(agent.port, headers=headers))


@pytest.mark.parametrize(
    "size", [pytest.param(65528, id="header-line-65537B"), pytest.param(64 * 1024, id="64KiB")]
)
def test_a_header_line_over_64KiB_is_431(agent: AgentProcess, size: int) -> None:
    resp = get(agent.port, headers={"X-Big": "e" * size})
    assert (resp.status, resp.reason) == (431, "Line too long")
    assert_serves(agent)


# --- A. concurrency and slowloris ----------------------------------------------------------------
def concurrent_scrapes(port: int, n: int = CONCURRENT) -> list[Any]:
    """``n`` threads connect at once (a barrier) and scrape; each result is the Response or
    the exception it met."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n, timeout=HANG_GUARD * 3)

    def scrape(i: int) -> None:
        try:
            barrier.wait()
            results[i] = get(port)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=scrape, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=HANG_GUARD * 6)
    assert not [t for t in threads if t.is_alive()], "scrapes still running past the guard"
    return results


def test_200_concurrent_scrapes_are_all_answered(agent: AgentProcess) -> None:
    """200 connections opened at the same moment each get a complete 200 with the exact
    values (the listen backlog holds them; socketserver's default of 5 made the kernel drop
    about half, which then timed out), and the server serves on."""
    results = concurrent_scrapes(agent.port)
    failures = [r for r in results if not isinstance(r, Response)]
    assert failures == []
    for resp in results:
        assert_complete_scrape(resp)
    assert_serves(agent)


def open_slowloris(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return s


def test_slowloris_connections_do_not_stop_other_scrapes(agent: AgentProcess) -> None:
    """While 20 clients hang mid-header and one connects and sends nothing, scrapes are still
    answered (a thread per connection); a hung request that is finished later (within the
    endpoint's ``REQUEST_TIMEOUT``) still gets its complete answer."""
    silent = socket.create_connection(("127.0.0.1", agent.port), timeout=HANG_GUARD)
    hung = []
    try:
        for _ in range(SLOWLORIS):
            hung.append(open_slowloris(agent.port))
        for _ in range(5):
            assert_serves(agent)
        last = hung.pop()
        with last:
            last.sendall(b"finally\r\n\r\n")
            assert_complete_scrape(parse(read_all(last)))
    finally:
        for s in [silent, *hung]:
            s.close()
    assert_serves(agent)


def test_a_connection_idle_past_the_request_timeout_is_closed(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A client that stops mid-request holds its thread only until ``REQUEST_TIMEOUT``
    (30 s; 0.5 s here): then the endpoint closes the connection, answering nothing and
    printing nothing, and serves on."""
    from prometheus_client import CollectorRegistry

    from agentrel import _prometheus

    monkeypatch.setattr(_prometheus._QuietHandler, "timeout", 0.5)
    server = MetricsServer(CollectorRegistry(auto_describe=False), "127.0.0.1", 0)
    try:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD)
        half = open_slowloris(server.port)
        with silent, half:
            assert silent.recv(1024) == b""  # closed by the server (HANG_GUARD: a hang bound)
            assert half.recv(1024) == b""
        assert get(server.port).status == 200
    finally:
        server.shutdown()
    assert capfd.readouterr().err == ""
    assert telemetry_errors() == {}


def test_shutdown_returns_with_hung_connections_open(fresh_agent: AgentProcess) -> None:
    """Configuration.shutdown() does not wait for clients that never finish their request:
    it returns True, the configuration is gone, and the port refuses connections."""
    hung = [open_slowloris(fresh_agent.port) for _ in range(5)]
    try:
        assert fresh_agent.shutdown() == {"shutdown": True, "configured": False}
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", fresh_agent.port), timeout=HANG_GUARD).close()
    finally:
        for s in hung:
            s.close()


# --- A. methods ----------------------------------------------------------------------------------
def test_head_is_get_without_the_body(agent: AgentProcess) -> None:
    """HEAD answers as GET would (status, Content-Type, Content-Length of the body GET
    sends), with no body; with an OpenMetrics Accept header, the OpenMetrics headers."""
    for accept, ctype in (
        (None, TEXT_004),
        ("application/openmetrics-text; version=1.0.0", OM_100),
    ):
        headers = {"Accept": accept} if accept else {}
        full = get(agent.port, headers=headers)
        head = parse(exchange(agent.port, request("HEAD", headers=headers)))
        assert (head.status, head.reason, head.body) == (200, "OK", b"")
        assert head.headers["content-type"] == ctype == full.headers["content-type"]
        assert int(head.headers["content-length"]) == len(full.body) > 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "BREW"])
def test_other_methods_are_405(agent: AgentProcess, method: str) -> None:
    """Every method but GET, HEAD and OPTIONS is a 405 naming the allowed ones (a request
    body is not read and changes nothing)."""
    data = request(method, headers={"Content-Length": "11"}) + b"hello=world"
    resp = parse(exchange(agent.port, data))
    assert (resp.status, resp.reason, resp.headers["allow"]) == (405, "Method Not Allowed", ALLOW)
    assert resp.body == f"# HTTP 405 Method Not Allowed: {method}; use OPTIONS or GET\n".encode()
    assert_serves(agent)


def test_options_lists_the_methods(agent: AgentProcess) -> None:
    resp = parse(exchange(agent.port, request("OPTIONS")))
    assert (resp.status, resp.headers["allow"], resp.body) == (200, ALLOW, b"")


# --- A. Accept negotiation -----------------------------------------------------------------------
NEGOTIATION = [
    # (Accept header or None, Content-Type served, body is OpenMetrics)
    pytest.param(None, TEXT_004, False, id="none"),
    pytest.param("application/openmetrics-text; version=1.0.0", OM_100, True, id="openmetrics"),
    pytest.param("application/openmetrics-text", OM_NO_VERSION, True, id="openmetrics-no-version"),
    pytest.param("application/openmetrics-text ;version=1.0.0", OM_100, True, id="om-spaces"),
    pytest.param(
        PROMETHEUS_3_ACCEPT, OM_100.replace("underscores", "allow-utf-8"), True, id="prometheus-3"
    ),
    pytest.param(PROMETHEUS_2_ACCEPT, OM_100, True, id="prometheus-2"),
    pytest.param("application/openmetrics-text;version=0.0.1", TEXT_004, False, id="om-0.0.1"),
    pytest.param("text/plain;version=1.0.0", TEXT_100, False, id="text-1.0.0"),
    pytest.param("text/plain;version=0.0.4", TEXT_004, False, id="text-0.0.4"),
    # q-values are not weighed: the first OpenMetrics entry of version 1.0.0 or later wins
    pytest.param(
        "text/plain;version=0.0.4;q=1.0, application/openmetrics-text;version=1.0.0;q=0.1",
        OM_100,
        True,
        id="q-values-ignored",
    ),
    pytest.param("application/openmetrics-text;version=1.0.0;q=0", OM_100, True, id="q=0"),
    pytest.param(
        "application/openmetrics-text;version=1.0.0;escaping=bogus", OM_100, True, id="escaping"
    ),
    pytest.param("*/*", TEXT_004, False, id="any"),
    pytest.param("application/json", TEXT_004, False, id="json"),
    pytest.param("APPLICATION/OPENMETRICS-TEXT; version=1.0.0", TEXT_004, False, id="upper-case"),
    pytest.param("\x01\x02;;;,,,=;q=abc", TEXT_004, False, id="garbage"),
    pytest.param(",,,;;;", TEXT_004, False, id="separators-only"),
    # a version that cannot be compared made prometheus_client raise: a 500 and a traceback
    pytest.param("application/openmetrics-text; version=garbage", TEXT_004, False, id="om-bad-v"),
    pytest.param("text/plain; version=1.x", TEXT_004, False, id="text-bad-version"),
    pytest.param("application/openmetrics-text;version=", OM_NO_VERSION, True, id="om-empty-v"),
]


@pytest.mark.parametrize(("accept", "ctype", "openmetrics"), NEGOTIATION)
def test_accept_negotiation(
    agent: AgentProcess, accept: str | None, ctype: str, openmetrics: bool
) -> None:
    """The text format by default and for anything unreadable; OpenMetrics when asked for
    (version 1.0.0 or none); each body parses with its own parser to the exact values."""
    resp = get(agent.port, headers={"Accept": accept} if accept is not None else None)
    assert (resp.status, resp.headers["content-type"]) == (200, ctype)
    assert int(resp.headers["content-length"]) == len(resp.body)
    text = resp.body.decode()
    if openmetrics:
        assert text.endswith("# EOF\n")
        assert values(text, om_parse) == expected(1)
    else:
        assert "# EOF" not in text
        assert values(text) == expected(1)


def test_gzip_when_asked(agent: AgentProcess) -> None:
    resp = get(agent.port, headers={"Accept-Encoding": "br;q=1, GZIP;q=0.5"})
    assert (resp.status, resp.headers["content-encoding"]) == (200, "gzip")
    assert values(gzip.decompress(resp.body).decode()) == expected(1)


# --- A. after all of it --------------------------------------------------------------------------
def test_after_every_attack_the_process_is_healthy(fresh_agent: AgentProcess) -> None:
    """One process takes every attack above in turn; then a run still records (the next
    scrape counts exactly 2 runs), ``telemetry_errors()`` is empty, nothing was written to its
    stderr (no traceback), and shutdown() stops the endpoint."""
    port = fresh_agent.port
    for case in MALFORMED:
        exchange(port, case.values[0])
    exchange(port, b"")
    exchange(port, b"GET /metrics HTTP/1.1\r\nX-Cut-Off")
    for size in (8 * 1024, 64 * 1024):
        get(port, headers={"X-Big": "a" * size})
    results = concurrent_scrapes(port)
    assert [r.status if isinstance(r, Response) else r for r in results] == [200] * CONCURRENT
    hung = [open_slowloris(port) for _ in range(SLOWLORIS)]
    try:
        assert_serves(fresh_agent)
    finally:
        for s in hung:
            s.close()
    for method in ("HEAD", "POST", "OPTIONS", "DELETE"):
        exchange(port, request(method))
    for param in NEGOTIATION:
        accept = param.values[0]
        get(port, headers={"Accept": accept} if accept is not None else None)

    assert fresh_agent.ask("record") == "recorded"
    assert_serves(fresh_agent, runs=2)
    resp = get(port, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert values(resp.body.decode(), om_parse) == expected(2)
    assert fresh_agent.ask("errors") == {}
    assert fresh_agent.shutdown() == {"shutdown": True, "configured": False}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD).close()
    assert fresh_agent.stderr() == ""


def _outward_ipv4() -> str | None:
    """This host's address on its default route (a UDP connect sends nothing), if any."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed, never reached
        addr = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def test_endpoint_binds_loopback_only(agent: AgentProcess) -> None:
    """The endpoint listens on 127.0.0.1 by default: the same port on the host's outward
    address refuses the connection (where the host has one)."""
    assert agent.addr == "127.0.0.1"
    outward = _outward_ipv4()
    if outward is None:
        return  # a host with loopback only: nothing else to connect to
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((outward, agent.port), timeout=5).close()
    with socket.create_connection(("127.0.0.1", agent.port), timeout=5):
        pass


# --- the scrape's own failures -------------------------------------------------------------------
class _Exploding:
    """A collector that raises: whatever makes the WSGI app raise."""

    def collect(self) -> Any:
        raise RuntimeError("boom")


def test_a_failing_scrape_is_a_counted_500_not_a_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """If producing the body raises, the scrape is a short 500, the error is counted in
    ``telemetry_errors()["prometheus.scrape"]`` and logged once through agentrel's logger,
    and nothing is printed on the process's stderr (wsgiref prints a traceback per scrape)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Exploding())  # type: ignore[arg-type]
    server = MetricsServer(registry, "127.0.0.1", 0)
    try:
        capfd.readouterr()
        for _ in range(3):
            resp = get(server.port)
            assert (resp.status, resp.reason) == (500, "Internal Server Error")
            assert resp.body == b"agentrel: this scrape failed; see agentrel.telemetry_errors()\n"
        assert get(server.port, "/favicon.ico").status == 200
    finally:
        server.shutdown()
    assert telemetry_errors() == {"prometheus.scrape": 3}
    logged = [r for r in caplog.records if r.name == "agentrel"]
    assert [r.getMessage() for r in logged] == [
        "agentrel: telemetry failed in prometheus.scrape (RuntimeError); the application is "
        "unaffected, further errors of this kind are only counted (agentrel.telemetry_errors())"
    ]
    assert capfd.readouterr().err == ""
