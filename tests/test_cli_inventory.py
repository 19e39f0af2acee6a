"""``agentrel inventory``: the blast-radius inventory, run as the real command."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tenacity")

from agentrel._cli import fleet

#: What the demo's tools declare (the source of truth is fleet.py's decorators).
DECLARED: dict[str, dict[str, Any]] = {
    "cached_answer": {
        "system": "redis",
        "idempotent": True,
        "reversible": True,
        "owner": "support-platform",
        "description": "A canned answer for the request's topic, from the answer cache.",
    },
    "issue_refund": {
        "system": "stripe",
        "idempotent": False,
        "reversible": False,
        "owner": "payments-oncall",
        "description": "Refund an order through the payment provider.",
    },
    "lookup_order": {
        "system": "orders-db",
        "idempotent": True,
        "reversible": True,
        "owner": "commerce-oncall",
        "description": "Look up an order, its items and its payment.",
    },
    "search_kb": {
        "system": "knowledge-base",
        "idempotent": True,
        "reversible": True,
        "owner": "support-platform",
        "description": "Search the help-centre articles.",
    },
}


def _agentrel(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentrel", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def _where(name: str) -> tuple[str, int]:
    fn = inspect.unwrap(getattr(fleet, name))
    return inspect.getsourcefile(fn) or "", fn.__code__.co_firstlineno


def test_json_matches_declared_metadata() -> None:
    """--json lists the demo's tools with exactly the metadata their decorators declare."""
    proc = _agentrel("inventory", "agentrel._cli.fleet", "--json")
    assert proc.returncode == 0, proc.stderr
    tools = {t["name"]: t for t in json.loads(proc.stdout)["tools"]}
    assert set(tools) == set(DECLARED)
    for name, declared in DECLARED.items():
        t = tools[name]
        assert {k: t[k] for k in declared} == declared
        file, line = _where(name)
        assert (t["file"], t["line"]) == (file, line)
        assert t["where"] == f"{file}:{line}"
        assert t["module"] == "agentrel._cli.fleet"
        assert t["qualname"] == name
        assert t["flags"] == []


def test_markdown_matches_declared_metadata() -> None:
    """The Markdown table has one row per tool with the declared metadata, in name order."""
    proc = _agentrel("inventory", "agentrel._cli.fleet")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = "| tool | system | idempotent | reversible | owner | description | where |"
    assert header in lines
    rows = [ln for ln in lines if ln.startswith("| ") and ln != header and "---" not in ln]
    assert [r.split(" | ")[0] for r in rows] == [f"| {n}" for n in sorted(DECLARED)]
    for row, name in zip(rows, sorted(DECLARED), strict=True):
        d = DECLARED[name]
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        yes_no = {True: "yes", False: "**no**"}
        expected = [name, d["system"], yes_no[d["idempotent"]], yes_no[d["reversible"]]]
        expected += [d["owner"], d["description"]]
        assert cells[:6] == expected
        file, line = _where(name)
        assert cells[6].endswith(f"{Path(file).name}:{line}")
    assert "4 tools, 0 flagged." in lines


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_irreversible_tool_without_owner_is_flagged(tmp_path: Path) -> None:
    """reversible=False with no owner is flagged in Markdown and JSON; a file path works."""
    _write(tmp_path, "helpers.py", "SYSTEM = 'billing'\n")
    path = _write(
        tmp_path,
        "billing_tools.py",
        """
        import agentrel
        from helpers import SYSTEM  # a sibling module: the file's directory is importable

        @agentrel.tool(system=SYSTEM, idempotent=False, reversible=False)
        def close_account(account_id: str) -> None:
            '''Close a customer account | for good.'''
        """,
    )
    md = _agentrel("inventory", str(path))
    assert md.returncode == 0, md.stderr
    assert "| close_account ⚠ | billing | **no** | **no** | — |" in md.stdout
    assert "Close a customer account \\| for good." in md.stdout
    assert "1 tools, 1 flagged." in md.stdout
    assert "- `close_account` (" in md.stdout
    js = _agentrel("inventory", str(path), "--json")
    assert js.returncode == 0, js.stderr
    (tool,) = json.loads(js.stdout)["tools"]
    assert tool["name"] == "close_account"
    assert (tool["owner"], tool["reversible"], tool["idempotent"]) == (None, False, False)
    assert tool["flags"] == ["irreversible_without_owner"]
    assert tool["file"] == str(path.resolve())
    assert tool["line"] == 5


def test_dotted_module_from_the_working_directory(tmp_path: Path) -> None:
    """A dotted name resolves from the current directory, as for `python -m`."""
    pkg = tmp_path / "myapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(
        pkg,
        "tools.py",
        """
        import agentrel

        print("imported")  # goes to stderr: stdout is the inventory only

        @agentrel.tool(owner="team-a")
        def lookup(x: int) -> int:
            return x
        """,
    )
    proc = _agentrel("inventory", "myapp.tools", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [t["name"] for t in json.loads(proc.stdout)["tools"]] == ["lookup"]
    assert "imported" in proc.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param(
            "no_such_module_xyz",
            "agentrel inventory: cannot import 'no_such_module_xyz': "
            "ModuleNotFoundError: No module named 'no_such_module_xyz'",
            id="dotted",
        ),
        pytest.param(
            "missing/tools.py",
            "agentrel inventory: cannot import 'missing/tools.py': no such file",
            id="path",
        ),
    ],
)
def test_bad_module_exits_2_with_one_line(target: str, message: str) -> None:
    """A module that cannot be imported: one clear line on stderr, exit 2, nothing on stdout."""
    proc = _agentrel("inventory", "agentrel._cli.fleet", target)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == message


def test_module_raising_on_import_exits_2(tmp_path: Path) -> None:
    """An exception while importing is reported as one line (no traceback)."""
    path = _write(tmp_path, "broken.py", "raise RuntimeError('config missing\\nsecond line')\n")
    proc = _agentrel("inventory", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        f"agentrel inventory: cannot import {str(path)!r}: RuntimeError: config missing"
    )


def test_inventory_needs_a_module() -> None:
    """No module is a usage error (argparse's exit code 2)."""
    proc = _agentrel("inventory")
    assert proc.returncode == 2
    assert "MODULE" in proc.stderr


def test_instrumented_client_tools_are_listed(tmp_path: Path) -> None:
    """Methods turned into tools by agentrel.instrument(obj, tools=...) appear with their
    declared metadata, next to decorated tools."""
    path = _write(
        tmp_path,
        "crm_tools.py",
        """
        import agentrel

        class CRM:
            def update_contact(self, contact_id: str) -> None:
                '''Update a contact record.'''

        crm = agentrel.instrument(
            CRM(),
            tools={"update_contact": {"system": "salesforce", "idempotent": True,
                                      "reversible": False, "owner": "crm-oncall"}},
        )
        """,
    )
    js = _agentrel("inventory", str(path), "--json")
    assert js.returncode == 0, js.stderr
    (tool,) = json.loads(js.stdout)["tools"]
    assert tool["name"] == "update_contact"
    assert (tool["system"], tool["idempotent"], tool["reversible"], tool["owner"]) == (
        "salesforce",
        True,
        False,
        "crm-oncall",
    )
    assert tool["description"] == "Update a contact record."
    assert tool["flags"] == []
