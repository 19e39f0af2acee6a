"""Regenerate the tables in docs/metrics.md from the metric catalogue.

python tools/metrics_doc.py          # rewrite the generated part in place
python tools/metrics_doc.py --check  # exit 1 if docs/metrics.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentrel import _catalogue as cat

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
BEGIN = "<!-- BEGIN GENERATED: tools/metrics_doc.py -->"
END = "<!-- END GENERATED -->"
SPANS_BEGIN = "<!-- BEGIN GENERATED SPANS: tools/metrics_doc.py -->"
SPANS_END = "<!-- END GENERATED SPANS -->"

_COHORT_VALUES = (
    "cohort from the `configure(cohorts=)` allowlist; `other` if not listed; `none` if not given"
)
LABELS = [
    (cat.AGENT, "agent (run) name, from code: `@agentrel.agent(name)` / `agentrel.run(name)`"),
    (cat.TOOL, "tool or LLM-call name, from code (`@agentrel.tool(name=)`, `chat {model}`)"),
    (cat.OUTCOME, "`success`, `recovered`, `exhausted`, `failed`"),
    (
        cat.COHORT,
        _COHORT_VALUES,
    ),
    (
        cat.ERROR_TYPE,
        "exception class `__qualname__`; `rejected`, `result_flagged`; never a message",
    ),
    (cat.ABSORBED, "`true` when the enclosing run (outside a run: the call) still succeeded"),
    (cat.DISPOSITION, "`useful` or `wasted`"),
    (cat.TOKEN_TYPE, "`input` or `output` (GenAI semconv)"),
    (cat.REQUEST_MODEL, "model name as the code or the request named it"),
    (cat.RESPONSE_MODEL, "model name the provider answered with"),
    (cat.OPERATION, "GenAI operation, `chat`"),
    (cat.PROVIDER, "GenAI provider, e.g. `openai`, `anthropic`"),
    (cat.FALLBACK_CHAIN, "fallback chain name, from code"),
    (cat.FALLBACK_FROM, "tier that failed, from code"),
    (cat.FALLBACK_TO, "tier tried next, from code"),
    (
        cat.VERDICT,
        "`correct`, `wrong`, and any from the `configure(verdicts=)` allowlist; `other` if not "
        "listed",
    ),
    (
        cat.VERDICT_SOURCE,
        "source from the `configure(verdict_sources=)` allowlist; `other` if not listed; "
        "`none` if not given",
    ),
]


def render() -> str:
    out = [
        BEGIN,
        "",
        "| OpenTelemetry name | Prometheus series | kind | unit | attributes | buckets |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in cat.METRICS:
        prom = m.prometheus_name
        series = f"`{prom}`" if m.kind == "counter" else f"`{prom}_bucket`/`_sum`/`_count`"
        buckets = ", ".join(f"{b:g}" for b in m.buckets) if m.buckets else ""
        attrs = ", ".join(f"`{a}`" for a in m.attributes)
        out.append(f"| `{m.name}` | {series} | {m.kind} | `{m.unit}` | {attrs} | {buckets} |")
    out += ["", "| attribute | Prometheus label | values |", "| --- | --- | --- |"]
    for key, values in LABELS:
        out.append(f"| `{key}` | `{cat.prometheus_label(key)}` | {values} |")
    out += ["", END]
    return "\n".join(out)


def render_spans() -> str:
    """The span attributes and events of the catalogue (``SPAN_ATTRIBUTES``, ``SPAN_EVENTS``)."""
    out = [
        SPANS_BEGIN,
        "",
        "| span attribute | on | holds |",
        "| --- | --- | --- |",
    ]
    for s in cat.SPAN_ATTRIBUTES:
        opt = " (only with `capture_content=True`)" if s.opt_in else ""
        out.append(f"| `{s.name}` | {s.on} | {s.meaning}{opt} |")
    out += ["", "| span event | on, with | marks |", "| --- | --- | --- |"]
    for s in cat.SPAN_EVENTS:
        out.append(f"| `{s.name}` | {s.on} | {s.meaning} |")
    out += ["", SPANS_END]
    return "\n".join(out)


def _replace(text: str, begin: str, end: str, block: str) -> str:
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + block + text[stop:]


def main() -> int:
    text = DOC.read_text()
    new = _replace(text, BEGIN, END, render())
    new = _replace(new, SPANS_BEGIN, SPANS_END, render_spans())
    if "--check" in sys.argv:
        if new != text:
            print("docs/metrics.md is out of date: run python tools/metrics_doc.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
