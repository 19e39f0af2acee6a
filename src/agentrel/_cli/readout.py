"""The demo's figures, read back from the metric data Prometheus scrapes.

``Readout.collect(registry)`` reads the prometheus_client ``CollectorRegistry`` behind the
``/metrics`` endpoint (fed by the same OpenTelemetry SDK reader), so every number the demo
prints is one a PromQL query over the scraped series gives too. The demo keeps no counters of
its own; the only inputs besides the metrics are the design (``fleet.designed_attempts``) and
the simulated clock (runs ÷ rate) for "MTBF".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _catalogue as cat

_L = cat.prometheus_label
AGENT, COHORT, OUTCOME = _L(cat.AGENT), _L(cat.COHORT), _L(cat.OUTCOME)
TOOL, ERROR_TYPE, ABSORBED = _L(cat.TOOL), _L(cat.ERROR_TYPE), _L(cat.ABSORBED)
DISPOSITION = _L(cat.DISPOSITION)
FROM_TIER, TO_TIER = _L(cat.FALLBACK_FROM), _L(cat.FALLBACK_TO)

_RETRY_DEPTH = cat.RUN_RETRY_DEPTH.prometheus_name
_RUN_ATTEMPTS = cat.RUN_ATTEMPTS.prometheus_name
_TOOL_ATTEMPTS = cat.TOOL_ATTEMPTS.prometheus_name
_FAILURES = cat.TOOL_FAILURES.prometheus_name
_TOKENS = cat.TOKENS.prometheus_name
_FALLBACKS = cat.FALLBACKS.prometheus_name
_UNSAFE = cat.UNSAFE_RETRIES.prometheus_name
_DELAY = cat.RETRY_DELAY.prometheus_name
_COST = cat.COST.prometheus_name
_UNPRICED = cat.UNPRICED_TOKENS.prometheus_name
_FIRST_CALL = cat.FIRST_CALL_DURATION.prometheus_name


def quantile_bound(q: float, buckets: Mapping[float, float]) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (cumulative ``le`` counts).

    Exact for retry depths up to 6, where the buckets are one apart; Grafana's
    ``histogram_quantile`` interpolates inside the bucket instead.
    """
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if not total:
        return None
    rank = q * total
    previous = 0.0
    for b in bounds:
        if buckets[b] >= rank and buckets[b] > 0:
            return previous if math.isinf(b) else b
        if not math.isinf(b):
            previous = b
    return previous


@dataclass
class Group:
    """Figures of one slice of the fleet (all runs, or one cohort)."""

    runs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(cat.OUTCOMES, 0.0))
    attempts: float = 0.0
    designed: float = 0.0
    depth_buckets: dict[float, float] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=lambda: dict.fromkeys(cat.DISPOSITIONS, 0.0))
    #: US dollars by disposition (priced models only)
    cost: dict[str, float] = field(default_factory=lambda: dict.fromkeys(cat.DISPOSITIONS, 0.0))

    @property
    def total(self) -> float:
        return sum(self.runs.values())

    def share(self, *outcomes: str) -> float | None:
        total = self.total
        return sum(self.runs[o] for o in outcomes) / total if total else None

    @property
    def success_rate(self) -> float | None:
        """What classic monitoring calls success: the user got an answer."""
        return self.share(cat.SUCCESS, cat.RECOVERED)

    @property
    def surfaced_failures(self) -> float:
        return self.runs[cat.EXHAUSTED] + self.runs[cat.FAILED]

    @property
    def attempts_per_run(self) -> float | None:
        return self.attempts / self.total if self.total else None

    @property
    def designed_per_run(self) -> float | None:
        return self.designed / self.total if self.total else None

    @property
    def attempt_ratio(self) -> float | None:
        """Attempts made ÷ attempts the design calls for (1.0 = nothing retried)."""
        return self.attempts / self.designed if self.designed else None

    @property
    def all_tokens(self) -> float:
        return sum(self.tokens.values())

    @property
    def amplification(self) -> float | None:
        """All tokens ÷ useful tokens, the ratio of two counters (1.0 = nothing wasted)."""
        useful = self.tokens[cat.USEFUL]
        return self.all_tokens / useful if useful else None

    @property
    def spend(self) -> float:
        return sum(self.cost.values())

    @property
    def wasted_spend_share(self) -> float | None:
        """Wasted dollars ÷ all dollars (of priced models)."""
        spend = self.spend
        return self.cost[cat.WASTED] / spend if spend else None

    def depth_quantile(self, q: float) -> float | None:
        return quantile_bound(q, self.depth_buckets)


@dataclass
class Readout:
    """Everything the demo shows, from one collection of the registry."""

    fleet: Group = field(default_factory=Group)
    cohorts: dict[str, Group] = field(default_factory=dict)
    #: failed attempts by absorbed ("true"/"false")
    failures: dict[str, float] = field(default_factory=lambda: {"true": 0.0, "false": 0.0})
    #: failed attempts by tool
    failures_by_tool: dict[str, float] = field(default_factory=dict)
    #: logical calls by tool and outcome
    calls: dict[tuple[str, str], float] = field(default_factory=dict)
    #: fallback activations by (from tier, to tier)
    fallbacks: dict[tuple[str, str], float] = field(default_factory=dict)
    unsafe_retries: dict[str, float] = field(default_factory=dict)
    delay_count: float = 0.0
    delay_sum: float = 0.0
    #: tokens of models with no known price
    unpriced_tokens: float = 0.0
    #: first calls (cold starts) recorded, by tool
    first_calls: dict[str, float] = field(default_factory=dict)
    #: metric family names present (for the test that every catalogue metric is served)
    families: set[str] = field(default_factory=set)

    def cohort(self, name: str) -> Group:
        g = self.cohorts.get(name)
        if g is None:
            g = self.cohorts[name] = Group()
        return g

    def served(self, call: str) -> float:
        """Calls of ``call`` that returned a value (success or recovered)."""
        return self.calls.get((call, cat.SUCCESS), 0.0) + self.calls.get((call, cat.RECOVERED), 0.0)

    @classmethod
    def collect(cls, families: Iterable[Any], designed: Callable[[str, str], float]) -> Readout:
        """Build a readout from prometheus_client metric families (``registry.collect()``).

        ``designed(agent, cohort)`` gives the attempts a run makes when nothing fails.
        """
        r = cls()
        depth: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for fam in families:
            r.families.add(fam.name)
            for s in fam.samples:
                r._sample(s.name, s.labels, s.value, depth, designed)
        fleet_buckets: dict[float, float] = defaultdict(float)
        for cohort, buckets in depth.items():
            r.cohort(cohort).depth_buckets = dict(buckets)
            for le, v in buckets.items():
                fleet_buckets[le] += v
        r.fleet.depth_buckets = dict(fleet_buckets)
        return r

    def _sample(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        depth: dict[str, dict[float, float]],
        designed: Callable[[str, str], float],
    ) -> None:
        get = labels.get
        if name == _RETRY_DEPTH + "_count":
            for g in (self.fleet, self.cohort(get(COHORT, ""))):
                g.runs[get(OUTCOME, "")] = g.runs.get(get(OUTCOME, ""), 0.0) + value
                g.designed += value * designed(get(AGENT, ""), get(COHORT, ""))
        elif name == _RETRY_DEPTH + "_bucket":
            depth[get(COHORT, "")][float(get("le", "+Inf"))] += value
        elif name == _RUN_ATTEMPTS + "_sum":
            for g in (self.fleet, self.cohort(get(COHORT, ""))):
                g.attempts += value
        elif name == _TOKENS:
            disposition = get(DISPOSITION, "")
            for g in (self.fleet, self.cohort(get(COHORT, ""))):
                g.tokens[disposition] = g.tokens.get(disposition, 0.0) + value
        elif name == _COST:
            disposition = get(DISPOSITION, "")
            for g in (self.fleet, self.cohort(get(COHORT, ""))):
                g.cost[disposition] = g.cost.get(disposition, 0.0) + value
        elif name == _UNPRICED:
            self.unpriced_tokens += value
        elif name == _FIRST_CALL + "_count":
            tool = get(TOOL, "")
            self.first_calls[tool] = self.first_calls.get(tool, 0.0) + value
        elif name == _FAILURES:
            absorbed = get(ABSORBED, "")
            self.failures[absorbed] = self.failures.get(absorbed, 0.0) + value
            tool = get(TOOL, "")
            self.failures_by_tool[tool] = self.failures_by_tool.get(tool, 0.0) + value
        elif name == _TOOL_ATTEMPTS + "_count":
            key = (get(TOOL, ""), get(OUTCOME, ""))
            self.calls[key] = self.calls.get(key, 0.0) + value
        elif name == _FALLBACKS:
            key = (get(FROM_TIER, ""), get(TO_TIER, ""))
            self.fallbacks[key] = self.fallbacks.get(key, 0.0) + value
        elif name == _UNSAFE:
            tool = get(TOOL, "")
            self.unsafe_retries[tool] = self.unsafe_retries.get(tool, 0.0) + value
        elif name == _DELAY + "_count":
            self.delay_count += value
        elif name == _DELAY + "_sum":
            self.delay_sum += value
