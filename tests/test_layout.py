"""The layout holds: integrations use only public names, the core
never imports an integration, agentrel's modules import each other without a cycle, the core
reaches the LLM clients' subpackage through its façade only, no module uses another's private
names, only ``_record`` calls instruments, and adding a metric is one catalogue entry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentrel
from agentrel import _catalogue as cat
from agentrel import _llm
from agentrel._runtime import T

PKG = Path(agentrel.__file__).parent
#: the modules directly under ``agentrel/``
CORE = sorted(p for p in PKG.glob("*.py"))
#: the LLM clients' subpackage: its façade (``__init__``) and its modules
LLM = sorted((PKG / "_llm").glob("*.py"))
INTEGRATIONS = sorted((PKG / "integrations").glob("*.py"))
#: every module of agentrel, subpackages included
EVERY = sorted(PKG.rglob("*.py"))


def _name(path: Path) -> str:
    """The module's import name (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p) for p in EVERY}


def _package(path: Path) -> list[str]:
    return list(path.relative_to(PKG.parent).parts[:-1])


def _from(path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` in ``path`` reads."""
    if node.level:
        package = _package(path)
        base = package[: len(package) - node.level + 1]
        return ".".join([*base, node.module] if node.module else base)
    return node.module or ""


def _imports(path: Path, *, top_level_only: bool, type_checking: bool = False) -> set[str]:
    """Absolute names of what ``path`` imports (``TYPE_CHECKING`` blocks left out unless
    ``type_checking``; with ``top_level_only``, imports inside functions too): each module,
    and module.name."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if (
            not type_checking
            and isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test)
        ):
            return
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _from(path, node)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of ``graph`` (module -> the modules it imports), or ``[]``."""
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
    return cycle


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


@pytest.mark.parametrize("path", [*CORE, *LLM], ids=_name)
def test_the_core_never_imports_an_integration(path: Path) -> None:
    """Adapters depend on the core, never the reverse (they load through entry points)."""
    assert not {
        m for m in _imports(path, top_level_only=False) if m.startswith("agentrel.integrations")
    }


def test_core_modules_import_each_other_without_a_cycle() -> None:
    """Module-level imports among the core's modules, the ``_llm`` subpackage's modules and
    its façade (``agentrel._llm``, its ``__init__``) form no cycle, neither inside the
    subpackage nor through the core."""
    paths = [p for p in [*CORE, *LLM] if _name(p) != "agentrel"]
    names = {_name(p) for p in paths}
    graph = {
        _name(p): {m for m in _imports(p, top_level_only=True) if m in names} - {_name(p)}
        for p in paths
    }
    assert _cycle(graph) == []
    llm = {n for n in names if n.startswith("agentrel._llm")}
    assert _cycle({n: graph[n] & llm for n in llm}) == []  # the subpackage on its own


@pytest.mark.parametrize("path", LLM, ids=lambda p: p.name)
def test_llm_modules_never_import_their_facade(path: Path) -> None:
    """A module of ``agentrel._llm`` imports its siblings and the core, never the façade:
    importing a module of the package runs the façade first, so a name read from it while it
    is still importing that module would not be there yet. (The façade imports its modules.)"""
    if path.name == "__init__.py":
        return
    reads = {
        m
        for m in _imports(path, top_level_only=False, type_checking=True)
        if m.startswith("agentrel._llm.") and m.count(".") == 2 and m not in MODULES
    }
    assert reads == set()


@pytest.mark.parametrize(
    "path", [p for p in EVERY if not p.is_relative_to(PKG / "_llm")], ids=_name
)
def test_the_core_reaches_the_llm_clients_through_their_facade(path: Path) -> None:
    """Outside ``agentrel._llm``, modules import from ``agentrel._llm`` only the names its
    ``__init__`` exports (``from ._llm import instrument``), never one of its modules
    (``from ._llm.client import Client``, ``from ._llm import client``); ``TYPE_CHECKING``
    and function-level imports included. The façade's modules can move without the core
    noticing, and no import circle runs through them."""
    reached = {
        m
        for m in _imports(path, top_level_only=False, type_checking=True)
        if m.startswith("agentrel._llm.")
    }
    facade = {f"agentrel._llm.{name}" for name in _llm.__all__}
    assert reached - facade == set()
    assert facade.isdisjoint(MODULES)  # a façade name is never also a module's


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(path: Path) -> set[tuple[str, str]]:
    """(file, module.name) for each private name of another agentrel module that ``path``
    imports or reads as an attribute of a module it imported."""
    me, package = _name(path), ".".join(_package(path))
    tree = ast.parse(path.read_text())
    where = path.relative_to(PKG).as_posix()
    found: set[tuple[str, str]] = set()
    bound: dict[str, str] = {}  # local name -> the agentrel module it is
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.partition(".")[0] == "agentrel":
                    bound[a.asname or "agentrel"] = a.name if a.asname else "agentrel"
        elif isinstance(node, ast.ImportFrom):
            mod = _from(path, node)
            if mod.partition(".")[0] != "agentrel":
                continue
            for a in node.names:
                full = f"{mod}.{a.name}"
                if full in MODULES:  # a module, private or not: allowed
                    bound[a.asname or a.name] = full
                elif _private(a.name) and mod not in (me, package):
                    found.add((where, full))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain: list[str] = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            chain.insert(0, value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in bound:
            continue
        mod = bound[value.id]
        *through, attr = chain
        if all(f"{mod}.{step}" in MODULES for step in _prefixes(mod, through)):
            mod = ".".join([mod, *through])
            if f"{mod}.{attr}" not in MODULES and _private(attr) and mod != me:
                found.add((where, f"{mod}.{attr}"))
    return found


def _prefixes(mod: str, through: list[str]) -> list[str]:
    """The dotted steps of ``mod.a.b`` as names relative to ``mod``: ``a``, ``a.b``."""
    return [".".join(through[: i + 1]) for i in range(len(through))]


def test_no_module_uses_another_modules_private_names() -> None:
    """A module of agentrel never uses another module's private (``_``-prefixed, not dunder)
    names: neither ``from ._x import _y`` nor ``_x._y`` on a module it imported, at module
    level, inside functions or under ``TYPE_CHECKING``. What a module offers other modules
    has a name without the underscore; a private module (``_record``) is private to the
    package, so its public names are for agentrel's other modules. Allowed: importing a
    private *module* (``from . import _record``, ``from ._llm import flight``), and a private
    name from the module's own package's ``__init__`` (its façade). Other objects' private
    attributes (``call._x``) are not this test's business."""
    found: set[tuple[str, str]] = set()
    for path in EVERY:
        found |= _private_uses(path)
    assert found == set(), "private names used across modules"


def _private_members(tree: ast.AST) -> set[str]:
    """The private attribute and method names the classes of a module define: ``self._x``
    assignments, ``__slots__`` entries, ``def _x`` inside a class."""
    out: set[str] = set()
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef):
            continue
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
                out.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
                and _private(node.attr)
            ):
                out.add(node.attr)
            elif (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)
                and isinstance(node.value, (ast.Tuple, ast.List))
            ):
                out.update(
                    e.value
                    for e in node.value.elts
                    if isinstance(e, ast.Constant) and _private(str(e.value))
                )
    return out


def test_no_module_touches_another_modules_private_attributes() -> None:
    """State has one owner: a private attribute or method of a class (``run._lock``,
    ``call._cur``, ``T._injected``) is used only in the module that defines the class, through
    ``self``/``cls`` or another object of that class. Every other module goes through the
    owner's methods and public attributes. (A name that the using module's own classes also
    define is not told apart, so this test errs on the side of passing; wrapt's ``_self_*``
    proxy attributes and other libraries' privates, such as ``sys._getframe``, are not
    agentrel's.)"""
    trees = {p: ast.parse(p.read_text()) for p in EVERY}
    members = {p: _private_members(t) for p, t in trees.items()}
    everyone = set().union(*members.values())
    found = set()
    for path, tree in trees.items():
        own = members[path]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr.startswith("_self_") or node.attr in own:
                continue
            if node.attr in everyone:
                found.add(f"{path.relative_to(PKG)}:{node.lineno}: {ast.unparse(node)}")
    assert found == set()


def test_only_record_calls_instruments() -> None:
    """``T.<instrument>.record/add`` appears in ``_record`` only."""
    slots = {spec.slot for spec in cat.METRICS}
    offenders = []
    for path in EVERY:
        if path.name == "_record.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("record", "add")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr in slots
            ):
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert offenders == []


def test_every_catalogue_entry_is_an_instrument() -> None:
    """Adding a metric is one edit: each catalogue entry is bound as ``T.<slot>``, with its
    own name, and no two entries share a slot."""
    slots = [spec.slot for spec in cat.METRICS]
    assert len(set(slots)) == len(slots)
    for spec in cat.METRICS:
        assert hasattr(T, spec.slot), spec.name


#: a module longer than this is more than one idea: split it
MAX_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(PKG)): n
        for p in EVERY
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_architecture_doc_lists_every_module_once() -> None:
    """docs/architecture.md has one table row per file of the package, and no row for a file
    that does not exist."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text()
    rows = [
        line.split("|")[1].strip().strip("`")
        for line in doc.splitlines()
        if line.startswith("| `") and line.split("|")[1].strip().endswith(".py`")
    ]
    files = sorted(str(p.relative_to(PKG)) for p in EVERY)
    assert len(set(rows)) == len(rows), "a file listed twice"
    # integrations/__init__.py is an empty package marker: not worth a row
    assert set(rows) == set(files) - {"integrations/__init__.py"}
