"""Verdicts arriving after the runs of ``agentrel demo``: the users and the offline judge.

Some runs that passed (closed ``success`` or ``recovered``) are judged later: a thumbs up or
down, a ticket reopened, an offline judge. The verdict arrives ``DELAY`` runs after its run,
through the public ``agentrel.verdict(run.ref, ...)``, as an application would send it from
another process. Recovered runs are wrong more often than clean ones in the degraded
scenario: the fallback tier and the re-prompts that got past the validator answer worse.
Each verdict draws from its own ``random.Random`` seeded with (seed, run index), so the runs'
own numbers are unchanged.
"""

from __future__ import annotations

import random
from collections import deque

import agentrel

#: the verdict sources the demo allows (``configure(verdict_sources=...)``), and their weights
SOURCES = ("thumbs", "ticket", "judge")
SOURCE_WEIGHTS = (0.6, 0.15, 0.25)
#: the share of passed runs that get a verdict
JUDGED_SHARE = 0.3
#: a verdict arrives this many runs after its run
DELAY = 20
#: P(wrong) of a judged run, per scenario: (closed success, closed recovered)
WRONG: dict[str, tuple[float, float]] = {
    "healthy": (0.01, 0.03),
    "degraded": (0.03, 0.25),
    "outage": (0.05, 0.35),
}
_PASSED = ("success", "recovered")


class Judges:
    """Queues a verdict for some finished runs and sends each one ``DELAY`` runs later."""

    def __init__(self, scenario: str, seed: int) -> None:
        self.wrong = WRONG[scenario]
        self.seed = seed
        self.pending: deque[tuple[int, str, str, str]] = deque()

    def after(self, index: int, run: agentrel.Run) -> None:
        """Run ``index`` finished: maybe judge it later; send the verdicts now due."""
        ref = run.ref
        if ref is not None and run.outcome in _PASSED:
            rng = random.Random(f"agentrel-demo-verdict:{self.seed}:{index}")
            if rng.random() < JUDGED_SHARE:
                p_wrong = self.wrong[_PASSED.index(run.outcome)]
                verdict = "wrong" if rng.random() < p_wrong else "correct"
                source = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
                self.pending.append((index + DELAY, ref, verdict, source))
        while self.pending and self.pending[0][0] <= index:
            _, ref, verdict, source = self.pending.popleft()
            agentrel.verdict(ref, verdict, source=source)
