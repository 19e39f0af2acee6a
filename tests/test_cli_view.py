"""The demo's live view at 80 columns: nothing cut, every cohort's figures in full.

The readout is scripted (three cohorts whose figures are worked out by hand below), rendered
by the real rich view into a recording console of a given width.
"""

from __future__ import annotations

import io

import pytest

pytest.importorskip("rich")

from rich.cells import cell_len
from rich.console import Console

from agentrel._cli.readout import Group, Readout
from agentrel._cli.view import COHORT_HEADER, Progress, RichView, summary_text

INF = float("inf")


def group(
    runs: tuple[int, int, int, int],
    attempts: tuple[int, int],
    tokens: tuple[int, int],
    cost: tuple[float, float],
    depth: dict[float, float],
) -> Group:
    g = Group()
    g.runs = dict(
        zip(("success", "recovered", "exhausted", "failed"), map(float, runs), strict=True)
    )
    g.attempts, g.designed = map(float, attempts)
    g.tokens = {"useful": float(tokens[0]), "wasted": float(tokens[1])}
    g.cost = {"useful": cost[0], "wasted": cost[1]}
    g.depth_buckets = depth
    return g


#: (success, recovered, exhausted, failed), (attempts, designed), (useful, wasted) tokens,
#: (useful, wasted) dollars, cumulative retry-depth buckets
COHORTS = {
    "enterprise": group(
        (300, 600, 90, 10), (4000, 2000), (100_000, 150_000), (150.0, 250.0),
        {0: 300, 1: 500, 2: 700, 3: 900, 4: 960, 5: 1000, INF: 1000},
    ),
    "smb": group(
        (1500, 450, 40, 10), (5000, 4000), (200_000, 50_000), (40.0, 10.0),
        {0: 1500, 1: 1900, 2: 2000, INF: 2000},
    ),
    "free": group(
        (2400, 100, 0, 0), (2750, 2500), (100_000, 10_000), (5.0, 0.0),
        {0: 2400, 1: 2500, INF: 2500},
    ),
}  # fmt: skip
#: Each cohort's row in COHORT_HEADER order, by hand: runs; success rate = (success +
#: recovered) / runs; clean = success / runs; recovered / runs; attempts / designed;
#: all / useful tokens; dollars; wasted / all dollars; the bucket holding the 95th percentile.
EXPECTED = {
    "enterprise": ("1,000", "90.0%", "30.0%", "60.0%", "2.00×", "2.50×", "$400.00", "62.5%", "4"),
    "smb": ("2,000", "97.5%", "75.0%", "22.5%", "1.25×", "1.25×", "$50.0000", "20.0%", "1"),
    "free": ("2,500", "100.0%", "96.0%", "4.0%", "1.10×", "1.10×", "$5.0000", "0.0%", "0"),
}
RUN_COLUMNS = ("runs", "success rate", "clean", "recovered", "depth p95")
COST_COLUMNS = ("attempts", "tokens", "spend", "wasted $")


def readout() -> Readout:
    r = Readout()
    r.cohorts = dict(COHORTS)
    r.fleet = group(
        (4200, 1150, 130, 20), (11750, 8500), (400_000, 210_000), (195.0, 260.0),
        {0: 4200, 1: 4900, 2: 5200, 3: 5400, 4: 5460, 5: 5500, INF: 5500},
    )  # fmt: skip
    r.failures = {"true": 3000.0, "false": 150.0}
    r.fallbacks = {("primary_model", "secondary_model"): 1234.0}
    r.unsafe_retries = {"issue_refund": 42.0}
    r.first_calls = {"search_kb": 2.0, "lookup_order": 2.0}
    r.delay_count, r.delay_sum = 3456.0, 789.1
    return r


PROGRESS = Progress("degraded", 1, 25.0, 5500, 20000, url="http://127.0.0.1:9464/metrics")


def render(width: int, final: bool) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(RichView(console).render(readout(), PROGRESS, final=final))
    return console.export_text().splitlines()


def cohort_lines(lines: list[str], name: str) -> list[list[str]]:
    return [line.split() for line in lines if line.split()[:1] == [name]]


@pytest.mark.parametrize("final", [False, True], ids=["live", "final"])
def test_view_fits_80_columns_with_every_cohort_figure(final: bool) -> None:
    """At 80 columns: no line wider than 80 cells, nothing elided, and each cohort's figures
    in full in two stacked tables (runs, then attempts, tokens and spend)."""
    lines = render(80, final)
    assert max(cell_len(line) for line in lines) <= 80
    assert not any("…" in line for line in lines)
    header = {c: i for i, c in enumerate(COHORT_HEADER[1:])}
    for name, cells in EXPECTED.items():
        runs, cost = cohort_lines(lines, name)
        assert runs == [name, *(cells[header[c]] for c in RUN_COLUMNS)]
        assert cost == [name, *(cells[header[c]] for c in COST_COLUMNS)]
    headers = [" ".join(line.split()) for line in lines if line.split()[:1] == ["cohort"]]
    assert headers == [" ".join(("cohort", *RUN_COLUMNS)), " ".join(("cohort", *COST_COLUMNS))]


def test_wide_view_has_one_cohort_table() -> None:
    """Where the console is wide enough, one row per cohort with all ten columns."""
    lines = render(140, final=False)
    for name, cells in EXPECTED.items():
        assert cohort_lines(lines, name) == [[name, *cells]]
    headers = [" ".join(line.split()) for line in lines if line.split()[:1] == ["cohort"]]
    assert headers == [" ".join(COHORT_HEADER)]


def test_plain_summary_cohort_tables_fit_80_columns() -> None:
    """The plain summary prints the same two blocks, within 80 columns, figures in full."""
    text = summary_text(readout(), PROGRESS)
    start = text.index("Per cohort: runs")
    block = text[start : text.index("Classic monitoring says")].splitlines()
    assert max(len(line) for line in block) <= 80
    header = {c: i for i, c in enumerate(COHORT_HEADER[1:])}
    for name, cells in EXPECTED.items():
        runs, cost = cohort_lines(block, name)
        assert runs == [name, *(cells[header[c]] for c in RUN_COLUMNS)]
        assert cost == [name, *(cells[header[c]] for c in COST_COLUMNS)]
