"""``agentrel inventory MODULE...``: the blast-radius inventory (docs/cli.md).

Imports the named modules (dotted names or ``.py`` paths), then lists every tool registered
with ``@agentrel.tool`` or ``agentrel.instrument(client, tools=...)``: what it touches, whether
a retry or a mistake can be undone, and who to page. Nothing is printed unless every module
imported, so a failure never leaves half a table behind.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._registry import ToolInfo, registered_tools

#: flag for a tool declared ``reversible=False`` that names nobody to page.
IRREVERSIBLE_WITHOUT_OWNER = "irreversible_without_owner"


class InventoryError(Exception):
    """A module could not be imported; the message is one line for the user."""


def _is_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or (os.altsep or os.sep) in target


def _import_path(target: str) -> None:
    path = Path(target).resolve()
    if not path.is_file():
        raise InventoryError(f"cannot import {target!r}: no such file")
    name = path.stem if path.stem != "__init__" else path.parent.name
    if name in sys.modules:
        name = f"_agentrel_inventory_{len(sys.modules)}_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InventoryError(f"cannot import {target!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    # The module's own directory is importable, as when it runs as a script.
    parent = str(path.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def import_targets(targets: Sequence[str]) -> None:
    """Import every target (a dotted module name or a file path), or raise InventoryError."""
    cwd = os.getcwd()
    if cwd not in sys.path:  # `agentrel inventory myapp.tools` from the project directory
        sys.path.insert(0, cwd)
    for target in targets:
        try:
            # Whatever a module prints while importing goes to stderr: stdout is the inventory.
            with contextlib.redirect_stdout(sys.stderr):
                if _is_path(target):
                    _import_path(target)
                else:
                    importlib.import_module(target)
        except InventoryError:
            raise
        except (Exception, SystemExit) as exc:
            detail = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
            raise InventoryError(f"cannot import {target!r}: {reason}") from exc


def flags(tool: ToolInfo) -> list[str]:
    """What an on-call engineer should know before the incident: missing owners, for now."""
    return [IRREVERSIBLE_WITHOUT_OWNER] if not tool.reversible and not tool.owner else []


def _display_where(tool: ToolInfo) -> str:
    if tool.file:
        try:
            rel = os.path.relpath(tool.file)
        except ValueError:  # another drive (Windows)
            rel = tool.file
        file = tool.file if rel.startswith("..") else rel
        return f"{file}:{tool.line}" if tool.line else file
    return tool.where


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(tools: Sequence[ToolInfo]) -> str:
    """The inventory as a Markdown table, flagged tools listed under it."""
    lines = ["# agentrel tool inventory", ""]
    if not tools:
        lines.append("_No tools registered by these modules._")
        return "\n".join(lines) + "\n"
    lines.append("| tool | system | idempotent | reversible | owner | description | where |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for t in tools:
        name = _cell(t.name) + (" ⚠" if flags(t) else "")
        cells = [name, _cell(t.system), _cell(t.idempotent), _cell(t.reversible)]
        cells += [_cell(t.owner), _cell(t.description), _cell(_display_where(t))]
        lines.append("| " + " | ".join(cells) + " |")
    flagged = [t for t in tools if flags(t)]
    lines.append("")
    lines.append(f"{len(tools)} tools, {len(flagged)} flagged.")
    if flagged:
        lines.append("")
        lines.append(
            "⚠ Declared `reversible=False` with no `owner` (who is paged when it goes wrong?):"
        )
        lines.append("")
        lines.extend(f"- `{t.name}` ({_display_where(t)})" for t in flagged)
    return "\n".join(lines) + "\n"


def render_json(tools: Sequence[ToolInfo]) -> str:
    """The inventory as JSON: ``{"tools": [...]}``, each tool with its ``flags``."""
    items = []
    for t in tools:
        d = t.as_dict()
        d["flags"] = flags(t)
        items.append(d)
    return json.dumps({"tools": items}, indent=2, sort_keys=False) + "\n"


def run(targets: Sequence[str], as_json: bool) -> int:
    """Import, render and print; return the exit code (2 when a module cannot be imported)."""
    try:
        import_targets(targets)
    except InventoryError as exc:
        print(f"agentrel inventory: {exc}", file=sys.stderr)
        return 2
    tools = registered_tools()
    text = render_json(tools) if as_json else render_markdown(tools)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
