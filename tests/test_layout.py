"""The layout holds (issue "One home per idea"): integrations use only public names, the core
never imports an integration, the core's modules import each other without a cycle, only
``_record`` calls instruments, and adding a metric is one catalogue entry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentrel
from agentrel import _catalogue as cat
from agentrel._runtime import T

PKG = Path(agentrel.__file__).parent
CORE = sorted(p for p in PKG.glob("*.py"))
INTEGRATIONS = sorted((PKG / "integrations").glob("*.py"))


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Absolute names of what ``path`` imports (``TYPE_CHECKING`` blocks left out; with
    ``top_level_only``, imports inside functions too): each module, and module.name."""
    package = list(path.relative_to(PKG.parent).parts[:-1])
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return out


@pytest.mark.parametrize("path", INTEGRATIONS, ids=lambda p: p.name)
def test_integrations_import_no_private_agentrel_name(path: Path) -> None:
    """An integration builds on ``agentrel.instrumentation`` and public names only."""
    private = {
        m
        for m in _imports(path, top_level_only=False)
        if m.startswith("agentrel.")
        and any(part.startswith("_") for part in m.split(".")[1:])
        and not m.startswith("agentrel.integrations")
    }
    assert private == set()


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_never_imports_an_integration(path: Path) -> None:
    """Adapters depend on the core, never the reverse (they load through entry points)."""
    assert not {
        m for m in _imports(path, top_level_only=False) if m.startswith("agentrel.integrations")
    }


def test_core_modules_import_each_other_without_a_cycle() -> None:
    """Module-level imports among the core's modules form no cycle."""
    names = {f"agentrel.{p.stem}" for p in CORE if p.stem != "__init__"}
    graph = {
        f"agentrel.{p.stem}": {m for m in _imports(p, top_level_only=True) if m in names}
        for p in CORE
        if p.stem != "__init__"
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def dfs(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend([*path, node, nxt])
                return True
            if nxt not in state and dfs(nxt, [*path, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if node not in state and dfs(node, []):
            break
    assert cycle == []


def test_only_record_calls_instruments() -> None:
    """``T.<instrument>.record/add`` appears in ``_record`` only."""
    slots = {spec.slot for spec in cat.METRICS}
    offenders = []
    for path in [*CORE, *INTEGRATIONS]:
        if path.name == "_record.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("record", "add")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr in slots
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_every_catalogue_entry_is_an_instrument() -> None:
    """Adding a metric is one edit: each catalogue entry is bound as ``T.<slot>``, with its
    own name, and no two entries share a slot."""
    slots = [spec.slot for spec in cat.METRICS]
    assert len(set(slots)) == len(slots)
    for spec in cat.METRICS:
        assert hasattr(T, spec.slot), spec.name
