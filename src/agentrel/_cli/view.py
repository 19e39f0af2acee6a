"""What ``agentrel demo`` shows: a live rich view on a terminal, plain text elsewhere.

Both render a ``Readout`` (the metric data read back) and a ``Progress`` (where the demo is).
The final summary is the same plain text in both modes and depends only on the metric data,
the scenario, the seed and the rate: two runs with the same seed print the same summary.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .. import _catalogue as cat
from .fleet import COHORTS, TIER_CALLS, TIERS
from .readout import Group, Readout


@dataclass(frozen=True)
class Progress:
    """Where the demo is: runs done (of how many), on the simulated clock."""

    scenario: str
    seed: int
    rate: float
    runs: int
    total: int | None
    url: str | None = None

    @property
    def traffic_seconds(self) -> float:
        """Seconds of traffic simulated so far (runs ÷ rate): the clock "MTBF" divides."""
        return self.runs / self.rate


# --- formatting ----------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def count(x: float) -> str:
    return f"{round(x):,}"


def times(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def dollars(x: float) -> str:
    return f"${x:,.2f}" if abs(x) >= 100 else f"${x:,.4f}"


def bound(x: float | None) -> str:
    return "—" if x is None else f"{x:g}"


def interval(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.1f} s"


def mtbf(seconds: float, failures: float) -> str:
    if not failures:
        return f"> {interval(seconds)} (no failure yet)"
    return interval(seconds / failures)


def served(r: Readout) -> dict[str, float]:
    """Answers served by each tier of the ``answer`` chain (calls that returned a value)."""
    return {tier: r.served(call) for tier, call in TIER_CALLS.items()}


def _tiers_line(r: Readout) -> str:
    s = served(r)
    total = sum(s.values())
    if not total:
        return "—"
    return "  ".join(f"{t} {pct(s[t] / total)}" for t in TIERS)


def _fallbacks_line(r: Readout) -> str:
    if not r.fallbacks:
        return "none"
    return ", ".join(f"{a}→{b} {count(n)}" for (a, b), n in sorted(r.fallbacks.items()))


def _unsafe_line(r: Readout) -> str:
    if not r.unsafe_retries:
        return "none"
    return ", ".join(f"{t} {count(n)}" for t, n in sorted(r.unsafe_retries.items()))


def _outcomes_line(g: Group) -> str:
    names = {cat.SUCCESS: "success (clean)"}
    return "  ".join(f"{names.get(o, o)} {pct(g.share(o))}" for o in cat.OUTCOMES)


def _spend_line(r: Readout) -> str:
    g = r.fleet
    line = f"{dollars(g.spend)} ({dollars(g.cost[cat.WASTED])} wasted, {pct(g.wasted_spend_share)})"
    if r.unpriced_tokens:
        line += f"; {count(r.unpriced_tokens)} unpriced tokens not included"
    return line


def _cold_line(r: Readout) -> str:
    if not r.first_calls:
        return "none recorded"
    firsts = round(sum(r.first_calls.values()))
    starts = round(max(r.first_calls.values()))
    plural = "s" if starts != 1 else ""
    return f"{firsts:,} first calls of {len(r.first_calls)} tools ({starts} replica start{plural})"


def classic_rows(r: Readout, p: Progress) -> list[tuple[str, str]]:
    g = r.fleet
    return [
        ("runs", count(g.total)),
        ("success rate", pct(g.success_rate)),
        ("error rate", pct(g.share(cat.EXHAUSTED, cat.FAILED))),
        ("MTBF", mtbf(p.traffic_seconds, g.surfaced_failures)),
    ]


def agentrel_rows(r: Readout, p: Progress) -> list[tuple[str, str]]:
    g = r.fleet
    absorbed, surfaced = r.failures.get("true", 0.0), r.failures.get("false", 0.0)
    every = interval(p.traffic_seconds / absorbed) if absorbed else "—"
    wasted = g.tokens[cat.WASTED]
    wasted_share = wasted / g.all_tokens if g.all_tokens else None
    return [
        ("outcomes", _outcomes_line(g)),
        (
            "retry depth",
            f"p50 {bound(g.depth_quantile(0.5))}  p95 {bound(g.depth_quantile(0.95))}  "
            f"p99 {bound(g.depth_quantile(0.99))}",
        ),
        (
            "attempts per run",
            f"{times(g.attempt_ratio)} designed (1.00×): "
            f"{num(g.attempts_per_run)} made, {num(g.designed_per_run)} designed",
        ),
        (
            "token amplification",
            f"{times(g.amplification)} (1.00× = no waste): {count(wasted)} of "
            f"{count(g.all_tokens)} tokens wasted ({pct(wasted_share)})",
        ),
        ("spend", _spend_line(r)),
        (
            "failures absorbed",
            f"{count(absorbed)} (one every {every}), surfaced {count(surfaced)}",
        ),
        ("answers served by", _tiers_line(r)),
        ("fallbacks", _fallbacks_line(r)),
        ("unsafe retries", _unsafe_line(r)),
        ("cold starts", _cold_line(r)),
        (
            "backoff waits",
            f"{count(r.delay_count)} waits, {num(r.delay_sum)} s in total (computed, not slept)",
        ),
    ]


COHORT_HEADER = (
    "cohort",
    "runs",
    "success rate",
    "clean",
    "recovered",
    "attempts",
    "tokens",
    "spend",
    "wasted $",
    "depth p95",
)


#: The per-cohort columns as two blocks (indexes into ``COHORT_HEADER``), each with the cohort
#: first: what happened to the runs, then what they cost. The plain summary always prints the
#: two; the live view prints one table where it fits the terminal and the two where it does
#: not (an 80-column terminal).
COHORT_BLOCKS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("runs", (0, 1, 2, 3, 4, 9)),
    ("attempts, tokens and spend", (0, 5, 6, 7, 8)),
)


def cohort_rows(r: Readout) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name in COHORTS:
        g = r.cohorts.get(name)
        if g is None or not g.total:
            continue
        rows.append(
            (
                name,
                count(g.total),
                pct(g.success_rate),
                pct(g.share(cat.SUCCESS)),
                pct(g.share(cat.RECOVERED)),
                times(g.attempt_ratio),
                times(g.amplification),
                dollars(g.spend),
                pct(g.wasted_spend_share),
                bound(g.depth_quantile(0.95)),
            )
        )
    return rows


def _title(p: Progress) -> str:
    return (
        f"agentrel demo: scenario {p.scenario}, seed {p.seed}, {p.runs:,} runs "
        f"({p.traffic_seconds:,.1f} s of traffic at {p.rate:g} runs/s)"
    )


def verdict_sentence(r: Readout) -> str:
    g = r.fleet
    return (
        f"Classic monitoring says {pct(g.success_rate)} success; agentrel shows "
        f"{pct(g.share(cat.SUCCESS))} clean, {times(g.attempt_ratio)} the designed attempts "
        f"and {times(g.amplification)} the tokens the answers needed."
    )


def summary_text(r: Readout, p: Progress) -> str:
    """The final summary, as plain text (identical for the same seed, scenario and runs)."""
    lines = ["=" * 78, _title(p), "=" * 78, "", "What classic monitoring sees"]
    lines += [f"  {k:<21}{v}" for k, v in classic_rows(r, p)]
    lines += ["", "What agentrel sees"]
    lines += [f"  {k:<21}{v}" for k, v in agentrel_rows(r, p)]
    table = [COHORT_HEADER, *cohort_rows(r)]
    for title, columns in COHORT_BLOCKS:
        lines += ["", f"Per cohort: {title}"]
        widths = [max(len(row[i]) for row in table) for i in columns]
        for row in table:
            cells = [row[columns[0]].ljust(widths[0])]
            cells += [row[i].rjust(w) for i, w in zip(columns[1:], widths[1:], strict=True)]
            lines.append("  " + "   ".join(cells).rstrip())
    if r.fleet.total:
        lines += ["", verdict_sentence(r)]
    return "\n".join(lines) + "\n"


def status_line(r: Readout, p: Progress) -> str:
    """One line for plain-text progress output."""
    g = r.fleet
    done = f"{p.runs}/{p.total}" if p.total is not None else f"{p.runs}"
    return (
        f"[{done} runs] success {pct(g.success_rate)} | clean {pct(g.share(cat.SUCCESS))} "
        f"recovered {pct(g.share(cat.RECOVERED))} | attempts {times(g.attempt_ratio)} | "
        f"tokens {times(g.amplification)} | depth p95 {bound(g.depth_quantile(0.95))}"
    )


class CohortTables:
    """The live view's per-cohort figures (a rich renderable): one table where the console is
    wide enough for it, else the ``COHORT_BLOCKS`` stacked, so no figure is ever cut."""

    def __init__(self, rows: list[tuple[str, ...]]) -> None:
        self.rows = rows

    def table(self, title: str, columns: Sequence[int]) -> Any:
        from rich import box
        from rich.table import Table

        t = Table(box=box.SIMPLE_HEAD, title=title)
        for i in columns:
            t.add_column(COHORT_HEADER[i], justify="left" if i == 0 else "right", no_wrap=True)
        for row in self.rows:
            t.add_row(*(row[i] for i in columns))
        return t

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.measure import Measurement

        full = self.table("per cohort", range(len(COHORT_HEADER)))
        # measured unconstrained: a measurement within the console's width is clamped to it
        natural = Measurement.get(console, options.update(max_width=10_000), full).maximum
        if natural <= options.max_width:
            yield full
            return
        for title, columns in COHORT_BLOCKS:
            yield self.table(f"per cohort: {title}", columns)


# --- views ---------------------------------------------------------------------------------------
class PlainView:
    """Plain text: a status line every few seconds, then the summary."""

    def __init__(self, out: TextIO | None = None, every: float = 5.0) -> None:
        self.out = out or sys.stdout
        self.every = every
        self._next = every

    def start(self, p: Progress) -> None:
        runs = f"{p.total:,} runs" if p.total is not None else "until Ctrl-C"
        self._write(
            f"agentrel demo: scenario {p.scenario}, seed {p.seed}, {p.rate:g} runs/s, {runs}\n"
        )

    def update(self, r: Readout, p: Progress, elapsed: float) -> None:
        if elapsed >= self._next:
            self._next = elapsed + self.every
            self._write(status_line(r, p) + "\n")

    def stop(self, r: Readout, p: Progress) -> None:
        self._write("\n" + summary_text(r, p))

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


class RichView:
    """A live terminal view (rich), refreshed by ``update`` (once a second)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console if console is not None else Console()
        self._live = Live(console=self.console, auto_refresh=False, transient=True)

    def start(self, p: Progress) -> None:
        self._live.start()

    def update(self, r: Readout, p: Progress, elapsed: float) -> None:
        self._live.update(self.render(r, p), refresh=True)

    def stop(self, r: Readout, p: Progress) -> None:
        self._live.stop()
        self.console.print(self.render(r, p, final=True))

    def render(self, r: Readout, p: Progress, final: bool = False) -> Any:
        """The view as a rich renderable (what ``update`` shows; ``final`` for ``stop``)."""
        from rich.columns import Columns
        from rich.console import Group as RGroup
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        def kv(rows: list[tuple[str, str]], style: str) -> Table:
            t = Table.grid(padding=(0, 2))
            t.add_column(style="bold")
            t.add_column(style=style)
            for k, v in rows:
                t.add_row(k, v)
            return t

        g = r.fleet
        ok = g.success_rate is None or g.success_rate >= 0.95
        verdict = Text(
            "all green: nothing to see" if ok else "alerting: users see failures",
            style="bold green" if ok else "bold red",
        )
        left = Panel(
            RGroup(kv(classic_rows(r, p), "green" if ok else "red"), Text(""), verdict),
            title="What classic monitoring sees",
            border_style="green" if ok else "red",
        )
        right = Panel(
            kv(agentrel_rows(r, p), "yellow"),
            title="What agentrel sees",
            border_style="yellow",
        )
        cohorts = CohortTables(cohort_rows(r))
        parts: list[Any] = [Text(_title(p), style="bold"), Columns([left, right]), cohorts]
        if final and g.total:
            parts.append(Text(verdict_sentence(r), style="bold"))
        elif p.url:
            parts.append(Text(f"Prometheus scrapes {p.url}", style="dim"))
        if p.total and not final:
            parts.append(ProgressBar(total=p.total, completed=p.runs, width=60))
        elif not final:
            parts.append(Text("Ctrl-C ends the demo with a summary.", style="dim"))
        return RGroup(*parts)
