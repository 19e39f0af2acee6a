"""Compare two JUnit XML results of one test suite (without and with agentrel), per test id.

A test's id is its pytest node id (the ``nodeid`` property the plugin adds), else
``classname::name``. Its status is the worst of its entries: ``failed`` (a failure or an
error, in any phase), ``skipped``, ``passed``. A test *regresses* when it passed without
agentrel and failed, or was not run at all, with it. Tests that fail in both runs, or that
only appear in one run without having passed in the other, are not regressions.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

PASSED, SKIPPED, FAILED, MISSING = "passed", "skipped", "failed", "missing"
_RANK = {PASSED: 0, SKIPPED: 1, FAILED: 2}


def read_junit(path: Path) -> dict[str, str]:
    """Test id -> status, from one JUnit XML file."""
    results: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = None
        for prop in case.iter("property"):
            if prop.get("name") == "nodeid":
                test_id = prop.get("value")
        if not test_id:
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            status = FAILED
        elif case.find("skipped") is not None:
            status = SKIPPED
        else:
            status = PASSED
        old = results.get(test_id)
        if old is None or _RANK[status] > _RANK[old]:
            results[test_id] = status
    return results


def counts(results: Mapping[str, str]) -> dict[str, int]:
    """``{"passed": n, "failed": n, "skipped": n, "total": n}``."""
    c = Counter(results.values())
    return {
        PASSED: c[PASSED],
        FAILED: c[FAILED],
        SKIPPED: c[SKIPPED],
        "total": len(results),
    }


@dataclasses.dataclass(frozen=True)
class Difference:
    test_id: str
    without: str
    with_agentrel: str


def regressions(without: Mapping[str, str], with_: Mapping[str, str]) -> list[Difference]:
    """Tests that passed without agentrel and did not pass with it, sorted by id."""
    out = []
    for test_id, status in sorted(without.items()):
        if status != PASSED:
            continue
        other = with_.get(test_id, MISSING)
        if other != PASSED:
            out.append(Difference(test_id, status, other))
    return out


def parse_expected(lines: Iterable[str]) -> dict[tuple[str, str], str]:
    """The expected-differences file: ``SUITE TEST_ID`` per line, after ``#`` comment lines
    that give the reason. An entry's reason is the comment block just above it; entries
    that follow each other share it; a blank line ends a block."""
    expected: dict[tuple[str, str], str] = {}
    reason: list[str] = []
    after_entry = False
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            reason, after_entry = [], False
            continue
        if line.startswith("#"):
            if after_entry:
                reason, after_entry = [], False
            reason.append(line.lstrip("#").strip())
            continue
        after_entry = True
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"line {number}: expected 'SUITE TEST_ID', got {line!r}")
        if not reason:
            raise ValueError(f"line {number}: {line!r} has no '#' reason above it")
        expected[(parts[0], parts[1].strip())] = " ".join(reason)
    return expected


@dataclasses.dataclass(frozen=True)
class Verdict:
    unexpected: list[Difference]
    expected: list[tuple[Difference, str]]
    stale: list[str]  # expected differences of this suite that did not happen


def judge(
    suite: str, diffs: Iterable[Difference], expected: Mapping[tuple[str, str], str]
) -> Verdict:
    """Split one suite's regressions into expected (listed, with the reason) and unexpected,
    and name the listed ones that did not happen."""
    unexpected: list[Difference] = []
    known: list[tuple[Difference, str]] = []
    seen: set[str] = set()
    for d in diffs:
        reason = expected.get((suite, d.test_id))
        if reason is None:
            unexpected.append(d)
        else:
            known.append((d, reason))
            seen.add(d.test_id)
    stale = sorted(t for (s, t) in expected if s == suite and t not in seen)
    return Verdict(unexpected, known, stale)


def span_shortfalls(spans: Mapping[str, object], minimum: Mapping[str, int]) -> list[str]:
    """What the span report lacks: ``minimum`` maps ``execute_tool`` (spans of that name) or
    ``execute_tool>1`` (calls of that name with more than one attempt) to a least count."""
    raw_spans = spans.get("spans", {})
    raw_retried = spans.get("calls_with_retries", {})
    by_name = raw_spans if isinstance(raw_spans, Mapping) else {}
    retried = raw_retried if isinstance(raw_retried, Mapping) else {}
    out = []
    for key, least in sorted(minimum.items()):
        if key.endswith(">1"):
            got = int(retried.get(key[:-2], 0))
            what = f"{key[:-2]} calls with more than one attempt"
        else:
            got = int(by_name.get(key, 0))
            what = f"{key} spans"
        if got < least:
            out.append(f"{what}: {got}, expected at least {least}")
    return out
