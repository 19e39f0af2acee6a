"""The tenacity integration's overhead, as a ratio measured in one process.

    python bench/retry_overhead.py            # full run
    python bench/retry_overhead.py --quick    # fewer rounds, for a smoke check

A first-try-success call through ``@tenacity.retry`` with agentrel's tenacity integration on,
divided by the same call with it off (target ≤ 1.5). agentrel is configured with SDK
providers as an application would have them (batch span processor exporting to nowhere, a
metric reader), so "on" pays for the call's span and metrics. Rounds alternate on, off, on,
off, ... so machine noise hits both alike; the figure is the ratio of the per-call medians.
Run standalone, or from ``bench/overhead.py``. Never asserted in tests.
"""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import CALLS, ROUNDS, configure_sdk, line, per_call


def on_off(fn: Callable[[int], Any]) -> tuple[float, float, float]:
    """Median ns/call with the integration on and off, interleaved rounds, and on/off."""
    from agentrel.integrations import tenacity as agentrel_tenacity

    on, off = [], []
    for state, times in ((True, on), (False, off)):  # warm-up, both ways
        (agentrel_tenacity.instrument if state else agentrel_tenacity.uninstrument)()
        per_call(fn, CALLS // 10)
        times.clear()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            agentrel_tenacity.instrument()
            on.append(per_call(fn, CALLS))
            agentrel_tenacity.uninstrument()
            off.append(per_call(fn, CALLS))
    finally:
        gc.enable()
    m_on, m_off = statistics.median(on), statistics.median(off)
    return m_on, m_off, m_on / m_off


def main() -> None:
    import tenacity

    import agentrel
    from agentrel._runtime import T

    def work(x: int) -> int:
        return x + 1

    def retried(fn: Callable[..., Any]) -> Any:
        return tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.1))(
            fn
        )

    tool_outside = agentrel.tool("work")(retried(work))
    tool_inside = retried(agentrel.tool("work")(work))
    bare = retried(work)

    def in_run(x: int) -> int:
        with agentrel.run("bench"):
            return tool_outside(x)

    configure_sdk()
    # The headline: the same tool call (its span and metrics are recorded either way), what
    # the integration adds to follow tenacity's attempts.
    line(
        "tenacity first-try success, @tool outside @retry: on ÷ off", on_off(tool_outside), "≤ 1.5"
    )
    line("  @tool inside @retry (the integration's call adopted)", on_off(tool_inside), "(info)")
    line("  the same inside agentrel.run", on_off(in_run), "(info)")
    # Without a tool the integration opens the logical call itself: "on" pays for a span and
    # two histogram points that "off" does not record at all.
    line("  bare @retry (on = a whole call's span and metrics)", on_off(bare), "(info)")
    T.uninject()
    line("  bare @retry, agentrel unconfigured, no run", on_off(bare), "(info)")


if __name__ == "__main__":
    main()
