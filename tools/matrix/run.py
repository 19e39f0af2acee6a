"""Run agentrel's integration and core tests across the version matrix in ``cells.py``.

    python tools/matrix/run.py [--cell NAME ...] [--list]

For each cell: its interpreter (pyenv's, else one on the system: a cell whose Python is
missing is skipped, or fails when ``AGENTREL_REQUIRE_SERVERS=1``), its pins resolved with
``uv pip compile`` from ``pyproject.toml`` (``--resolution lowest-direct`` or ``highest``),
the test tools of ``requirements.txt`` resolved against those pins, a venv of its own in
``.venv-matrix/<cell>`` synced to exactly that set, agentrel installed into it (editable,
no dependencies), then the test files of ``cells.TESTS`` under pytest with JUnit XML.
A table shows each cell's versions and counts; ``.venv-matrix/summary.json`` keeps them.

The job fails when a cell fails to resolve, install or pass, when a cell ran no test, and
(when every ``lowest-direct`` cell ran) when a lower bound in ``pyproject.toml`` was reached
in none of them: each bound must be the version some cell really tested.

uv comes from PATH, else is installed into ``.venv-matrix/.tools`` (pip, from the registry).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cells import BY_NAME, CELLS, NOT_INTEGRATIONS, SHOWN, TESTS, Cell  # noqa: E402

ROOT = HERE.parent.parent
WORK = ROOT / ".venv-matrix"
UV_VERSION = "0.13.9"
PYTEST_TIMEOUT = 1200  # seconds for one cell's pytest process
RESOLVE_TIMEOUT = 600  # seconds for one uv command


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...]:
    """``1.28`` and ``1.28.0`` are the same release: trailing zeros dropped."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0].split("b")[0])]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


# --- the project ----------------------------------------------------------------------------------
def load_pyproject(path: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 runs the matrix only with tomli installed
        import tomli as tomllib  # type: ignore[no-redef]
    with path.open("rb") as f:
        return tomllib.load(f)


def integration_extras(project: dict[str, Any]) -> list[str]:
    extras = project["project"].get("optional-dependencies", {})
    return [name for name in extras if name not in NOT_INTEGRATIONS]


def lower_bounds(project: dict[str, Any]) -> dict[str, str]:
    """``{distribution: lower bound}`` over the runtime dependencies and integration extras."""
    requirements = list(project["project"].get("dependencies", []))
    extras = project["project"].get("optional-dependencies", {})
    for name in integration_extras(project):
        requirements += extras[name]
    bounds: dict[str, str] = {}
    for requirement in requirements:
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*([^;]*)", requirement)
        if m is None:
            continue
        low = re.search(r">=\s*([^,\s]+)", m.group(2))
        if low is not None:
            bounds[_norm(m.group(1))] = low.group(1)
    return bounds


def untested_bounds(bounds: dict[str, str], pins: list[dict[str, str]]) -> dict[str, str]:
    """The lower bounds that no ``lowest-direct`` cell's pins reached exactly:
    ``{distribution: "bound >=X, resolved A, B"}``."""
    missing: dict[str, str] = {}
    for name, bound in sorted(bounds.items()):
        seen = sorted({p[name] for p in pins if name in p}, key=_release)
        if not any(_release(v) == _release(bound) for v in seen):
            missing[name] = f">={bound}, resolved {', '.join(seen) or 'nowhere'}"
    return missing


# --- tools ----------------------------------------------------------------------------------------
def find_uv() -> Path:
    found = os.environ.get("AGENTREL_MATRIX_UV") or shutil.which("uv")
    if found:
        return Path(found)
    tools = WORK / ".tools"
    uv = tools / "bin" / "uv"
    if not uv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        pip = [str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"uv=={UV_VERSION}"], check=True)
    return uv


def find_python(minor: str) -> Path | None:
    """An interpreter of Python ``minor`` ("3.11"): pyenv's, else the system's."""
    candidates: list[Path] = []
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        versions = [p for p in pyenv.iterdir() if re.fullmatch(rf"{re.escape(minor)}\.\d+", p.name)]
        for version in sorted(versions, key=lambda p: _release(p.name), reverse=True):
            candidates.append(version / "bin" / f"python{minor}")
    candidates += [Path("/usr/local/bin") / f"python{minor}", Path("/usr/bin") / f"python{minor}"]
    which = shutil.which(f"python{minor}")
    if which:
        candidates.append(Path(which))
    for candidate in candidates:
        if not candidate.exists():
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return candidate
    return None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"  # interpreters come from this machine only
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


# --- one cell -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    cell: str
    status: str  # passed | failed | skipped
    reason: str = ""
    python: str = ""
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    pins: dict[str, str] = dataclasses.field(default_factory=dict)
    dropped: list[str] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    install_seconds: float = 0.0
    test_seconds: float = 0.0


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)", line.strip())
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def read_junit(path: Path) -> dict[str, int]:
    """``{"passed", "failed", "skipped"}`` counts; an error in any phase fails its test."""
    status: dict[str, str] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    for case in ET.parse(path).iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            this = "failed"
        elif case.find("skipped") is not None:
            this = "skipped"
        else:
            this = "passed"
        if rank[this] >= rank[status.get(key, "passed")]:
            status[key] = this
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for value in status.values():
        counts[value] += 1
    return counts


def _compile(
    uv: Path, python: Path, cell: Cell, extras: list[str], out: Path, constraints: Path | None
) -> subprocess.CompletedProcess[str]:
    cmd = [str(uv), "pip", "compile", str(ROOT / "pyproject.toml"), "--python", str(python)]
    cmd += ["--resolution", cell.resolution, "--quiet", "--no-header", "-o", str(out)]
    for extra in extras:
        cmd += ["--extra", extra]
    if constraints is not None:
        cmd += ["-c", str(constraints)]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=_env(), timeout=RESOLVE_TIMEOUT, check=False
    )


def resolve(
    uv: Path, python: Path, cell: Cell, extras: list[str], folder: Path
) -> tuple[dict[str, str], list[str], str]:
    """``(pins, dropped extras, error)``: the cell's pins in ``folder/pins.txt``, and the
    full set with the test tools in ``folder/all.txt``."""
    constraints = None
    if cell.constraints:
        constraints = folder / "constraints.txt"
        constraints.write_text("\n".join(cell.constraints) + "\n")
    pins_file = folder / "pins.txt"
    wanted = [e for e in extras if e not in cell.without]
    dropped: list[str] = []
    done = _compile(uv, python, cell, wanted, pins_file, constraints)
    if done.returncode != 0 and cell.drop_uninstallable:
        for extra in wanted:
            alone = _compile(uv, python, cell, [extra], folder / "probe.txt", constraints)
            if alone.returncode != 0:
                dropped.append(extra)
        wanted = [e for e in wanted if e not in dropped]
        done = _compile(uv, python, cell, wanted, pins_file, constraints)
    if done.returncode != 0:
        return {}, dropped, "resolution failed:\n" + done.stderr[-3000:]
    full = [str(uv), "pip", "compile", str(pins_file), str(HERE / "requirements.txt")]
    full += ["--python", str(python), "--quiet", "--no-header", "-o", str(folder / "all.txt")]
    done = subprocess.run(
        full, capture_output=True, text=True, env=_env(), timeout=RESOLVE_TIMEOUT, check=False
    )
    if done.returncode != 0:
        return {}, dropped, "test tools do not resolve with the pins:\n" + done.stderr[-3000:]
    return read_pins(pins_file), dropped, ""


def run_cell(cell: Cell, uv: Path, extras: list[str], require: bool) -> Result:
    result = Result(cell.name, "failed", python=cell.python)
    python = find_python(cell.python)
    if python is None:
        result.status = "failed" if require else "skipped"
        result.reason = f"no interpreter: python{cell.python}"
        return result
    folder = WORK / cell.name
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pins, result.dropped, error = resolve(uv, python, cell, extras, folder)
    if error:
        result.reason = error
        return result
    result.pins = pins
    venv = folder / "venv"
    steps = [
        [str(uv), "venv", "--quiet", "--allow-existing", "--python", str(python), str(venv)],
        [str(uv), "pip", "sync", "--quiet", "--python", str(venv), str(folder / "all.txt")],
        [str(uv), "pip", "install", "--quiet", "--python", str(venv), "--no-deps", "-e", str(ROOT)],
    ]
    for step in steps:
        done = subprocess.run(
            step, capture_output=True, text=True, env=_env(), timeout=RESOLVE_TIMEOUT, check=False
        )
        if done.returncode != 0:
            result.reason = f"install failed: {' '.join(step[:3])}\n{done.stderr[-3000:]}"
            return result
    result.install_seconds = time.monotonic() - started
    result.versions = {name: pins[name] for name in SHOWN if name in pins}
    for name in ("httpx", "httpx2", "pytest"):  # the test tools may bring these
        if name not in result.versions and name in read_pins(folder / "all.txt"):
            result.versions[name] = read_pins(folder / "all.txt")[name]
    junit = folder / "junit.xml"
    junit.unlink(missing_ok=True)
    log = folder / "pytest.log"
    cmd = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += [f"--junitxml={junit}", *TESTS]
    started = time.monotonic()
    with log.open("w") as out:
        try:
            done = subprocess.run(
                cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                timeout=PYTEST_TIMEOUT, check=False,
            )  # fmt: skip
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
    result.test_seconds = time.monotonic() - started
    if junit.exists():
        result.counts = read_junit(junit)
    tail = "\n".join(log.read_text().splitlines()[-40:])
    if code == -1:
        result.reason = f"pytest ran past {PYTEST_TIMEOUT}s\n{tail}"
    elif code != 0 or result.counts.get("failed", 0):
        result.reason = f"pytest exit {code} (log: {log.relative_to(ROOT)})\n{tail}"
    elif result.counts.get("passed", 0) == 0:
        result.reason = "ran no test"
    else:
        result.status = "passed"
    return result


# --- the report -----------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    header = ["package", *(r.cell for r in results)]
    rows = [["python", *(r.python for r in results)]]
    for name in SHOWN:
        if any(name in r.versions for r in results):
            rows.append([name, *(r.versions.get(name, "-") for r in results)])
    rows.append(["dropped extras", *(",".join(r.dropped) or "-" for r in results)])
    for key in ("passed", "failed", "skipped"):
        rows.append([key, *(str(r.counts.get(key, "-")) for r in results)])
    rows.append(["install s", *(f"{r.install_seconds:.0f}" for r in results)])
    rows.append(["tests s", *(f"{r.test_seconds:.0f}" for r in results)])
    rows.append(["result", *(r.status for r in results)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", action="append", choices=sorted(BY_NAME), help="repeatable")
    parser.add_argument("--list", action="store_true", help="print the cells and exit")
    args = parser.parse_args(argv)
    if args.list:
        for cell in CELLS:
            extra = f"; without {', '.join(cell.without)}" if cell.without else ""
            extra += f"; constraints {', '.join(cell.constraints)}" if cell.constraints else ""
            print(f"{cell.name:13} python {cell.python}, {cell.resolution}{extra}: {cell.summary}")
        return 0
    selected = [BY_NAME[name] for name in args.cell] if args.cell else list(CELLS)
    require = os.environ.get("AGENTREL_REQUIRE_SERVERS") == "1"
    project = load_pyproject()
    extras = integration_extras(project)
    WORK.mkdir(exist_ok=True)
    uv = find_uv()
    results: list[Result] = []
    for cell in selected:
        print(f"matrix: {cell.name} (python {cell.python}, {cell.resolution}) ...", flush=True)
        result = run_cell(cell, uv, extras, require)
        total = result.install_seconds + result.test_seconds
        counts = ", ".join(f"{v} {k}" for k, v in result.counts.items()) or result.reason
        print(f"matrix: {cell.name}: {result.status} in {total:.0f}s ({counts})", flush=True)
        if result.status == "failed":
            print(result.reason, flush=True)
        results.append(result)
    failures = [r.cell for r in results if r.status == "failed"]
    lowest = [c.name for c in CELLS if c.resolution == "lowest-direct"]
    missing: dict[str, str] = {}
    ran = {r.cell: r for r in results if r.status == "passed"}
    if set(lowest) <= {c.name for c in selected}:
        missing = untested_bounds(lower_bounds(project), [ran[n].pins for n in lowest if n in ran])
    print()
    print(table(results))
    for name, why in missing.items():
        print(f"matrix: the lower bound of {name} is tested in no lowest cell ({why})")
    (WORK / "summary.json").write_text(
        json.dumps([dataclasses.asdict(r) for r in results], indent=2) + "\n"
    )
    passed = sum(r.counts.get("passed", 0) for r in results)
    failed = sum(r.counts.get("failed", 0) for r in results)
    skipped = sum(r.counts.get("skipped", 0) for r in results)
    print(f"matrix: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failures or missing else 0


if __name__ == "__main__":
    sys.exit(main())
