"""Check what `make dist` built before it is published.

    python tools/check_dist.py [DIST_DIR]      # default: dist/

Opens the one wheel and the one sdist in DIST_DIR and fails (exit 1, every problem listed)
unless both are agentrel-otel at the version in src/agentrel/_version.py, the wheel holds the
package (every module under src/agentrel, py.typed) and nothing else (no tests, no venvs, no
caches), its metadata names the distribution, Python >= 3.10, the project URLs and every extra
(``all`` included), and its entry points are the ``agentrel`` command and the
``agentrel.llm_adapters`` group. ``twine check --strict`` (run before this by `make dist`)
checks the metadata renders; this checks it says what agentrel needs.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
NAME = "agentrel-otel"
MODULE = "agentrel"


def version() -> str:
    text = (ROOT / "src" / MODULE / "_version.py").read_text(encoding="utf-8")
    found = re.search(r'__version__ = "([^"]+)"', text)
    assert found, "src/agentrel/_version.py has no __version__"
    return found.group(1)


def check_wheel(path: Path, ver: str) -> list[str]:
    problems: list[str] = []
    dist_info = f"agentrel_otel-{ver}.dist-info"
    with zipfile.ZipFile(path) as whl:
        names = set(whl.namelist())
        meta = Parser().parsestr(whl.read(f"{dist_info}/METADATA").decode())
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    sources = {
        p.relative_to(ROOT / "src").as_posix()
        for p in (ROOT / "src" / MODULE).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in {".py", ".typed"}
    }
    problems += [f"wheel lacks {name}" for name in sorted(sources - names)]
    stray = sorted(n for n in names if not (n.startswith(f"{MODULE}/") or n.startswith(dist_info)))
    problems += [f"wheel holds {name} (only the package belongs there)" for name in stray]
    problems += [
        f"wheel holds {n}" for n in sorted(names) if "__pycache__" in n or n.endswith(".pyc")
    ]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    if meta["Name"] != NAME:
        problems.append(f"metadata Name is {meta['Name']!r}, not {NAME!r}")
    if meta["Version"] != ver:
        problems.append(f"metadata Version is {meta['Version']!r}, not {ver!r}")
    if meta["Requires-Python"] != ">=3.10":
        problems.append(f"Requires-Python is {meta['Requires-Python']!r}")
    extras = set(meta.get_all("Provides-Extra") or [])
    wanted = set(pyproject["project"]["optional-dependencies"])
    problems += [f"metadata lacks the extra {e!r}" for e in sorted(wanted - extras)]
    if "all" not in extras:
        problems.append("metadata lacks the extra 'all'")
    urls = {u.split(",")[0].strip() for u in meta.get_all("Project-URL") or []}
    problems += [
        f"metadata lacks the URL {u!r}" for u in sorted(set(pyproject["project"]["urls"]) - urls)
    ]
    if "agentrel = agentrel.__main__:main" not in entry_points:
        problems.append("entry points lack the agentrel command")
    if "[agentrel.llm_adapters]" not in entry_points:
        problems.append("entry points lack the agentrel.llm_adapters group")
    return problems


def check_sdist(path: Path, ver: str) -> list[str]:
    problems: list[str] = []
    top = f"agentrel_otel-{ver}"
    with tarfile.open(path) as sdist:
        names = set(sdist.getnames())
    for needed in ("pyproject.toml", "README.md", f"src/{MODULE}/__init__.py",
                   f"src/{MODULE}/py.typed"):  # fmt: skip
        if f"{top}/{needed}" not in names:
            problems.append(f"sdist lacks {needed}")
    for n in sorted(names):
        if "/.venv" in n or "__pycache__" in n or "/node_modules/" in n or n.endswith(".pyc"):
            problems.append(f"sdist holds {n}")
    return problems


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "dist"
    ver = version()
    wheels = sorted(folder.glob("*.whl"))
    sdists = sorted(folder.glob("*.tar.gz"))
    problems: list[str] = []
    if [w.name for w in wheels] != [f"agentrel_otel-{ver}-py3-none-any.whl"]:
        problems.append(f"expected one wheel agentrel_otel-{ver}-py3-none-any.whl in {folder}")
    if [s.name for s in sdists] != [f"agentrel_otel-{ver}.tar.gz"]:
        problems.append(f"expected one sdist agentrel_otel-{ver}.tar.gz in {folder}")
    if not problems:
        problems += check_wheel(wheels[0], ver) + check_sdist(sdists[0], ver)
    for p in problems:
        print(f"check_dist: {p}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {wheels[0].name} and {sdists[0].name} are complete")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
