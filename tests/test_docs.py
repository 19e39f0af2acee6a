"""The docs follow the code: the metric catalogue and docs/metrics.md agree, every public
name is documented."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import agentrel
from agentrel import _catalogue as cat

ROOT = Path(__file__).resolve().parent.parent


def test_metrics_doc_is_generated_from_catalogue() -> None:
    """docs/metrics.md's tables are exactly what the catalogue renders."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "metrics_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_metrics_doc_lists_every_metric_and_label() -> None:
    """Every metric (both names) and every attribute used by a metric appears in the doc."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    for m in cat.METRICS:
        assert f"`{m.name}`" in text
        assert m.prometheus_name in text
        for a in m.attributes:
            assert f"| `{a}` | `{cat.prometheus_label(a)}` |" in text, a


def test_every_public_name_has_a_docstring() -> None:
    """Each name in agentrel.__all__ (and the testing module's) is documented."""
    from agentrel import testing

    for mod in (agentrel, testing):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if name in ("METRICS", "__version__"):
                continue
            assert inspect.getdoc(obj), f"{mod.__name__}.{name} has no docstring"


def test_api_doc_mentions_every_public_name() -> None:
    """docs/api.md names every public function and class."""
    text = (ROOT / "docs" / "api.md").read_text()
    for name in agentrel.__all__:
        if name not in ("METRICS", "__version__"):
            assert f"`agentrel.{name}" in text, name


def test_instrumentation_names_are_documented() -> None:
    """Every name of agentrel.instrumentation has a docstring (classes and functions) and is
    named in docs/api.md's integration section."""
    from agentrel import instrumentation

    text = (ROOT / "docs" / "api.md").read_text()
    section = text[text.index("## Writing an integration") :]
    for name in instrumentation.__all__:
        obj = getattr(instrumentation, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"instrumentation.{name} has no docstring"
        assert f"`{name}" in section or f", {name}" in section, name


def test_reliability_doc_cites_tests_that_exist() -> None:
    """Every test docs/reliability.md names as pinning a rule exists, and every test of
    tests/reliability/ is cited there."""
    import re

    doc = (ROOT / "docs" / "reliability.md").read_text()
    cited = set(re.findall(r"`(test_\w+)`", doc))
    suite: set[str] = set()
    everywhere: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names = set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
        everywhere |= names
        if path.parent.name == "reliability":
            suite |= names
    assert sorted(cited - everywhere) == []
    assert sorted(suite - cited) == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: the rendered text (code marks and emphasis
    stars gone, a link's text kept) in lower case, punctuation dropped except ``-`` and ``_``,
    each space a ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    text = re.sub(r"[`*]", "", text.lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        pytest.param("Quickstart (30 seconds)", "quickstart-30-seconds", id="parentheses"),
        pytest.param(
            "The host libraries' own test suites",
            "the-host-libraries-own-test-suites",
            id="apostrophe",
        ),
        pytest.param(
            "`agentrel.current_run() -> Run | None`",
            "agentrelcurrent_run---run--none",
            id="code-keeps-underscores",
        ),
        pytest.param(
            "Writing an integration: `agentrel.instrumentation`",
            "writing-an-integration-agentrelinstrumentation",
            id="colon",
        ),
        pytest.param("See [the API](api.md)", "see-the-api", id="link-text"),
    ],
)
def test_slug_is_githubs(heading: str, slug: str) -> None:
    """Anchors are checked against the slugs GitHub gives headings."""
    assert _slug(heading) == slug


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        slug = _slug(line.lstrip("#"))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _user_docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_in_the_docs_resolves() -> None:
    """Every relative link in README, CHANGELOG and docs/ points at a file of the repository,
    and every #anchor into a Markdown file at one of its headings."""
    link = re.compile(r"\]\(([^)\s]+)\)")
    broken: list[str] = []
    for doc in _user_docs():
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for target in link.findall(line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                file, _, anchor = target.partition("#")
                dest = (doc.parent / file).resolve() if file else doc
                where = f"{doc.relative_to(ROOT)}:{n}: {target}"
                if not dest.exists():
                    broken.append(where)
                elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                    broken.append(where + " (no such heading)")
    assert broken == []


def test_user_docs_and_code_stand_alone() -> None:
    """Users have only this repository: nothing they read (docs, code, examples, tests, tools)
    cites a design document outside it or an issue number."""
    stale = re.compile(r"DESIGN\s*§|DESIGN\.md|shared/|\b[Ii]ssue #?\d+|\bissue-\d+")
    for cited in ("DESIGN §2", "see ../shared/DESIGN.md", "fixed in issue 42", "Issue #7"):
        assert stale.search(cited), cited
    assert not stale.search("the issue is the retry budget; see docs/concepts.md")
    files = [
        *_user_docs(),
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "examples").glob("*.py"),
        *(ROOT / "bench").glob("*.py"),
        *(ROOT / "tools").rglob("*.py"),
        *(p for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__).resolve()),
    ]
    assert _lines_matching(stale, files) == []


def _lines_matching(pattern: re.Pattern[str], files: list[Path]) -> list[str]:
    """``path:line`` of every line of ``files`` that ``pattern`` finds something in."""
    return [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_every_install_hint_names_the_distribution() -> None:
    """No hint in src/ or the docs tells users to install the registry's unrelated
    ``agentrel``: every ``agentrel[...]`` spelled out is ``agentrel-otel[...]``."""
    stale = re.compile(r"(?<![\w-])agentrel\[")
    files = [*(ROOT / "src").rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    assert _lines_matching(stale, files) == []
