"""Run the host libraries' own test suites without and with agentrel, and compare.

    python tools/host_suites/run.py [--suite NAME ...] [--jobs 2]

For each suite in ``suites.py``: the library's installed version (``importlib.metadata``),
its source distribution at that version (``pip download --no-deps --no-binary :all:``, kept
in a cache folder), the sdist's ``tests/`` (and its ``pyproject.toml``, for the host's own
pytest settings) unpacked into a fresh work folder, then the subset in ``subsets/<name>.txt``
run twice with the ``agentrel_switch`` plugin: ``--agentrel=off`` and ``--agentrel=on``,
each writing JUnit XML. Tests that passed off and did not pass on are run again, both ways,
once; a test that passes off and fails on again is a regression, unless
``expected_differences.txt`` lists it (with its reason). The job fails on a regression, on
an "on" run whose span report falls short of the suite's minimum, and on a suite that ran no
test. Results: ``<work>/summary.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
from suites import SUITES, Suite  # noqa: E402

ROOT = HERE.parent.parent
DEFAULT_CACHE = Path(
    os.environ.get("AGENTREL_HOST_SUITES_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentrel-host-suites"
)
DEFAULT_WORK = ROOT / "build" / "host-suites"
EXPECTED = HERE / "expected_differences.txt"
PER_TEST_TIMEOUT = 120  # seconds (pytest-timeout); a hang fails the test, not the job's clock
PER_RUN_TIMEOUT = 900  # seconds for one pytest process


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def fetch_sdist(name: str, version: str, cache: Path) -> Path:
    """The sdist of ``name==version`` from the cache, downloaded into it the first time."""
    cache.mkdir(parents=True, exist_ok=True)

    def cached() -> Path | None:
        for path in cache.iterdir():
            if not path.name.endswith((".tar.gz", ".zip")):
                continue
            stem = path.name.removesuffix(".tar.gz").removesuffix(".zip")
            dist, _, ver = stem.rpartition("-")
            if _norm(dist) == _norm(name) and ver == version:
                return path
        return None

    found = cached()
    if found is None:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--no-binary", ":all:", f"{name}=={version}", "-d", str(cache)]
        # pip reads the sdist's metadata with a build backend: the venv's own (requirements.txt)
        # is much faster than an isolated build environment, which is the fallback.
        if subprocess.run([*cmd, "--no-build-isolation"], check=False).returncode != 0:
            subprocess.run(cmd, check=True)
        found = cached()
    if found is None:
        raise RuntimeError(f"pip download left no sdist of {name}=={version} in {cache}")
    return found


def unpack_tests(sdist: Path, dest: Path) -> bool:
    """Unpack the sdist's ``tests/`` and ``pyproject.toml`` into ``dest`` (made anew).
    Returns whether the sdist ships tests."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    found = False
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) != 2:
                continue
            inner = parts[1]
            if inner == "pyproject.toml" or inner.startswith("tests/"):
                if not (member.isfile() or member.isdir()):
                    continue
                member.name = inner
                tar.extract(member, dest, filter="data")
                found = found or (member.isfile() and inner.startswith("tests/"))
    return found


@dataclasses.dataclass
class RunResult:
    mode: str
    junit: Path
    report: Path
    seconds: float
    returncode: int
    log: Path


def run_pytest(suite: Suite, folder: Path, mode: str, tag: str, targets: list[str]) -> RunResult:
    """One pytest process over ``targets`` in ``folder``, agentrel ``mode`` "off" or "on"."""
    junit = folder / f"{tag}-{mode}.xml"
    report = folder / f"{tag}-{mode}-spans.json"
    log = folder / f"{tag}-{mode}.log"
    for stale in (junit, report):
        stale.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "agentrel_switch",
        f"--agentrel={mode}",
        f"--agentrel-report={report}",
        "-o",
        "addopts=",
        *suite.pytest_args,
        f"--junitxml={junit}",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--timeout={PER_TEST_TIMEOUT}",
        *targets,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    env.update(suite.env)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop(var, None)  # offline, and no exporter of the environment's choosing
    start = time.monotonic()
    with log.open("w") as out:
        try:
            proc = subprocess.run(
                cmd,
                cwd=folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=PER_RUN_TIMEOUT,
                check=False,
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = -1
            out.write(f"\nagentrel host suites: pytest killed after {PER_RUN_TIMEOUT}s\n")
    return RunResult(mode, junit, report, time.monotonic() - start, rc, log)


def _read(result: RunResult) -> dict[str, str]:
    if not result.junit.exists():
        raise RuntimeError(
            f"{result.mode} run wrote no JUnit XML (rc={result.returncode}), see {result.log}"
        )
    return compare.read_junit(result.junit)


def _spans(result: RunResult) -> dict[str, Any]:
    if not result.report.exists():
        return {}
    data: dict[str, Any] = json.loads(result.report.read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append", choices=[s.name for s in SUITES])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at once")
    args = parser.parse_args(argv)
    suites = [s for s in SUITES if not args.suite or s.name in args.suite]
    expected = compare.parse_expected(EXPECTED.read_text().splitlines())
    known = {s.name for s in SUITES}
    for suite_name, test_id in expected:
        if suite_name not in known:
            raise SystemExit(f"{EXPECTED.name}: unknown suite {suite_name!r} ({test_id})")
    started = time.monotonic()

    # 1. versions and sources
    prepared: dict[str, tuple[str, Path, bool]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {}
        for suite in suites:
            version = importlib.metadata.version(suite.name)
            futures[suite.name] = (
                version,
                pool.submit(fetch_sdist, suite.name, version, args.cache),
            )
        for suite in suites:
            version, future = futures[suite.name]
            folder = args.work / suite.name
            ships = unpack_tests(future.result(), folder)
            prepared[suite.name] = (version, folder, ships)
    print(f"host suites: sources ready in {time.monotonic() - started:.0f}s", flush=True)

    # 2. both runs of every suite that ships tests, --jobs at a time
    runnable = [s for s in suites if prepared[s.name][2]]
    results: dict[tuple[str, str], RunResult] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending = {
            pool.submit(run_pytest, s, prepared[s.name][1], mode, "run", s.subset): (s.name, mode)
            for s in runnable
            for mode in ("off", "on")
        }
        for future in concurrent.futures.as_completed(pending):
            name, mode = pending[future]
            results[(name, mode)] = r = future.result()
            print(f"host suites: {name} {mode}: rc={r.returncode} in {r.seconds:.0f}s", flush=True)

    # 3. compare, re-run what differs, judge
    summary: dict[str, Any] = {"suites": {}}
    failed = False
    for suite in suites:
        version, folder, ships = prepared[suite.name]
        entry: dict[str, Any] = {"version": version}
        summary["suites"][suite.name] = entry
        if not ships:
            entry["note"] = "the sdist ships no tests"
            continue
        off, on = results[(suite.name, "off")], results[(suite.name, "on")]
        without, with_ = _read(off), _read(on)
        spans = _spans(on)
        entry.update(
            without=compare.counts(without),
            with_agentrel=compare.counts(with_),
            seconds={"off": round(off.seconds, 1), "on": round(on.seconds, 1)},
            spans=spans,
        )
        problems: list[str] = []
        if not without:
            problems.append("ran no test")
        diffs = compare.regressions(without, with_)
        flaky: list[str] = []
        if diffs:
            ids = [d.test_id for d in diffs]
            again_off = _read(run_pytest(suite, folder, "off", "rerun", ids))
            again_on = _read(run_pytest(suite, folder, "on", "rerun", ids))
            confirmed = []
            for d in diffs:
                if (
                    again_off.get(d.test_id) == compare.PASSED
                    and again_on.get(d.test_id) != compare.PASSED
                ):
                    confirmed.append(d)
                else:
                    flaky.append(d.test_id)
            diffs = confirmed
        verdict = compare.judge(suite.name, diffs, expected)
        entry["regressions"] = [dataclasses.asdict(d) for d in verdict.unexpected]
        entry["expected_differences"] = [d.test_id for d, _ in verdict.expected]
        entry["not_reproduced"] = flaky
        entry["stale_expected"] = verdict.stale
        for d in verdict.unexpected:
            problems.append(
                f"REGRESSION {d.test_id}: {d.without} without agentrel, {d.with_agentrel} with it"
            )
        problems += compare.span_shortfalls(spans, dict(suite.minimum))
        if spans.get("telemetry_errors"):
            problems.append(f"agentrel counted telemetry errors: {spans['telemetry_errors']}")
        entry["problems"] = problems
        failed = failed or bool(problems)
    summary["seconds"] = round(time.monotonic() - started, 1)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    return 1 if failed else 0


def print_summary(summary: dict[str, Any]) -> None:
    print()
    print(f"{'suite':<20} {'version':<9} {'without agentrel':<18} {'with agentrel':<18} spans")
    for name, e in summary["suites"].items():
        if "without" not in e:
            print(f"{name:<20} {e['version']:<9} {e.get('note', '')}")
            continue

        def fmt(c: dict[str, int]) -> str:
            return f"{c['passed']}p {c['failed']}f {c['skipped']}s"

        spans = e["spans"].get("spans", {})
        retried = e["spans"].get("calls_with_retries", {})
        shown = ", ".join(
            f"{k} {v}" + (f" ({retried[k]} retried)" if k in retried else "")
            for k, v in spans.items()
        )
        print(
            f"{name:<20} {e['version']:<9} {fmt(e['without']):<18} "
            f"{fmt(e['with_agentrel']):<18} {shown}"
        )
    print()
    for name, e in summary["suites"].items():
        for test_id in e.get("expected_differences", ()):
            print(f"{name}: expected difference (expected_differences.txt): {test_id}")
        for test_id in e.get("not_reproduced", ()):
            print(f"{name}: failed with agentrel once, passed when run again: {test_id}")
        for test_id in e.get("stale_expected", ()):
            print(f"{name}: listed in expected_differences.txt but did not differ: {test_id}")
        for problem in e.get("problems", ()):
            print(f"{name}: {problem}")
    print(f"host suites: {summary['seconds']:.0f}s in all")


if __name__ == "__main__":
    sys.exit(main())
