"""The scripted scenario tests/test_otlp.py pushes over OTLP, with counts known in advance.

Run as a script in a fresh interpreter (``configure()`` sets the process-global OpenTelemetry
providers once per process):

    python tests/otlp_scenario.py '{"otlp_endpoint": "http://127.0.0.1:4318"}' flush-shutdown

The first argument is the JSON of ``agentrel.configure()``'s keyword arguments (``{}``: the
environment alone). The second says how the process ends:

* ``flush-shutdown``: ``force_flush()`` then ``shutdown()`` (the export a test decodes);
* ``shutdown:SECONDS``: ``shutdown(timeout=SECONDS)`` only, itself bounded by a hard 30 s
  watchdog (the process exits 3 and prints ``HUNG`` if it takes longer);
* ``exit``: no shutdown at all: the interpreter exits and agentrel's atexit flush runs.

It prints one JSON line: what the application saw (return values, each run's outcome and
figures) and the shutdown result, so a test can check the host was unaffected.

The three runs, with distinct agent names so that every metric point belongs to one run:

* ``otlp-recover`` (cohort ``smb``, allowlisted) ends ``recovered``: ``lookup`` fails twice
  (``ConnectionError``) under tenacity and serves on attempt 3; ``refund``
  (``idempotent=False``) fails once (``TimeoutError``) and serves on attempt 2 (an unsafe
  retry); the instrumented OpenAI client gets 429 then 200 (100 input + 50 output tokens);
  ``draft`` records 10 + 10 tokens and is rejected (wasted); the fallback chain ``answer``
  moves from ``primary`` (``ValueError``) to ``cache``. Failures 6, attempts 10.
* ``otlp-exhaust`` (cohort ``enterprise``, not allowlisted: ``other``) ends ``exhausted``:
  ``plan`` records 7 + 3 tokens (wasted, the run fails); a second OpenAI client
  (``max_retries=0``) gets a 500, which the agent catches; ``flaky`` fails twice (``OSError``)
  under tenacity and its error leaves the run. Failures 3, attempts 4.
* ``otlp-success`` (no cohort: ``none``) ends ``success``: ``ping`` records 4 + 1 tokens.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import tenacity
from tenacity import stop_after_attempt, wait_fixed

import agentrel
from agentrel.integrations import tenacity as agentrel_tenacity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_mocks import Script, chat_body, error, openai_client

RECOVER, EXHAUST, SUCCESS = "otlp-recover", "otlp-exhaust", "otlp-success"
#: configure(cohorts=..., prices=...) the tests pass: the recovered run's cohort is kept;
#: gpt-4o costs $2 / $8 / $1 per million input / output / cached input tokens (explicit, so the
#: figure does not depend on genai-prices' table); local-m has no price.
COHORTS = ["smb"]
PRICES = {"gpt-4o": [2.0, 8.0, 1.0]}
#: tenacity's fixed wait between attempts (seconds; really slept).
WAIT = 0.01
MESSAGES = [{"role": "user", "content": "a question"}]


def scenario() -> dict[str, Any]:
    """Run the three runs; return what the application saw."""
    agentrel_tenacity.instrument()
    count = {"lookup": 0, "refund": 0}

    @agentrel.tool("lookup", system="kb")
    @tenacity.retry(stop=stop_after_attempt(3), wait=wait_fixed(WAIT), reraise=True)
    def lookup(query: str) -> str:
        count["lookup"] += 1
        if count["lookup"] <= 2:
            raise ConnectionError("kb unavailable")
        return "doc"

    @agentrel.tool("refund", system="payments", idempotent=False)
    @tenacity.retry(stop=stop_after_attempt(2), wait=wait_fixed(WAIT), reraise=True)
    def refund(order: str) -> str:
        count["refund"] += 1
        if count["refund"] == 1:
            raise TimeoutError("payments slow")
        return "refunded"

    @agentrel.tool("draft")
    def draft() -> str:
        agentrel.record_tokens(input=10, output=10, model="local-m")
        return "draft"

    def primary(query: str) -> str:
        raise ValueError("primary down")

    def cached(query: str) -> str:
        return "cached"

    answer = agentrel.fallback("answer", primary, ("cache", cached))

    @agentrel.tool("plan")
    def plan() -> str:
        agentrel.record_tokens(input=7, output=3, model="local-m")
        return "plan"

    @agentrel.tool("flaky")
    @tenacity.retry(stop=stop_after_attempt(2), wait=wait_fixed(WAIT), reraise=True)
    def flaky() -> str:
        raise OSError("disk")

    @agentrel.tool("ping")
    def ping() -> str:
        agentrel.record_tokens(input=4, output=1, model="local-m")
        return "pong"

    ok_llm = Script(error(429), (200, chat_body(prompt=100, completion=50)))
    bad_llm = Script(error(500))
    ok_client = agentrel.instrument(openai_client(ok_llm))
    bad_client = agentrel.instrument(openai_client(bad_llm, max_retries=0))

    seen: dict[str, Any] = {}
    with agentrel.run(RECOVER, cohort="smb") as run_a:
        seen["lookup"] = lookup("q")
        seen["refund"] = refund("o-1")
        reply = ok_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        seen["chat"] = reply.usage.prompt_tokens if reply.usage else None
        seen["draft"] = draft()
        agentrel.reject("draft thrown away")
        seen["answer"] = answer("q")
    try:
        with agentrel.run(EXHAUST, cohort="enterprise") as run_b:
            seen["plan"] = plan()
            try:
                bad_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            except openai.InternalServerError:
                seen["bad_chat"] = "InternalServerError"
            flaky()
    except OSError as exc:
        seen["flaky"] = type(exc).__name__
    with agentrel.run(SUCCESS) as run_c:
        seen["ping"] = ping()
    assert run_a.ref is not None
    agentrel.verdict(run_a.ref, "wrong", source="thumbs")  # later found wrong (agentrel.verdicts)
    seen["llm_requests"] = [ok_llm.calls, bad_llm.calls]
    seen["runs"] = {
        r.name: {
            "outcome": r.outcome,
            "retry_depth": r.retry_depth,
            "attempts": r.attempts,
            "tokens": r.tokens,
            "useful": r.useful_tokens,
            "wasted": r.wasted_tokens,
        }
        for r in (run_a, run_b, run_c)
    }
    agentrel_tenacity.uninstrument()
    return seen


def _bounded(fn: Any, limit: float = 30.0) -> Any:
    """Call fn in a thread; if it has not returned within ``limit`` s, print HUNG and exit 3."""
    box: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        print(json.dumps({"hung": True}), flush=True)
        os._exit(3)
    return box.get("value")


def main(argv: list[str]) -> None:
    kwargs = json.loads(argv[1]) if len(argv) > 1 else {}
    ending = argv[2] if len(argv) > 2 else "flush-shutdown"
    cfg = agentrel.configure(**kwargs)
    seen = scenario()
    seen["otlp_endpoint"] = cfg.otlp_endpoint
    if ending == "flush-shutdown":
        cfg.force_flush()
        seen["shutdown"] = _bounded(cfg.shutdown)
    elif ending.startswith("shutdown:"):
        seen["shutdown"] = _bounded(lambda: cfg.shutdown(timeout=float(ending.split(":")[1])))
    elif ending != "exit":
        raise SystemExit(f"unknown ending {ending!r}")
    seen["telemetry_errors"] = dict(agentrel.telemetry_errors())
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main(sys.argv)
