"""tools/ops spells no series or label name: every one comes from agentrel's catalogue."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from agentrel import _catalogue as cat

from .conftest import ROOT, require_binary

OPS = ROOT / "tools" / "ops"
GENERATED = ("prometheus", "dashboards")
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Attribute keys renamed in the catalogue copy, and the namespace they are renamed into.
RENAMES = {'"agentrel.': '"zzrel.', '"gen_ai.': '"zzai.', '"error.type"': '"zzerror.type"'}


def _is_docstring(parents: dict[ast.AST, ast.AST], node: ast.Constant) -> bool:
    expr = parents.get(node)
    owner = parents.get(expr) if isinstance(expr, ast.Expr) else None
    body = getattr(owner, "body", None)
    return bool(body) and body[0] is expr


def literal_names(source: str) -> list[tuple[int, str]]:
    """(line, token) of each series or label name spelled in a string literal of ``source``
    (f-string parts included, docstrings not): ``agentrel_*``, ``gen_ai_*`` or a catalogue
    label such as ``error_type``."""
    labels = {label for m in cat.METRICS for label in m.prometheus_labels}
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if _is_docstring(parents, node):
            continue
        for token in TOKEN.findall(node.value):
            if token.startswith(("agentrel_", "gen_ai_")) or token in labels:
                found.append((node.lineno, token))
    return found


def test_the_scanner_finds_literal_names() -> None:
    """The helper itself: literals and f-string parts found; names built from variables and
    docstrings not."""
    source = (
        '"""Docstring naming agentrel_tokens_total."""\n'
        'A = "rate(agentrel_run_retry_depth_bucket[5m])"\n'
        'B = f"sum by ({X}, error_type) ({Y})"\n'
        'C = f"{{{{ $labels.gen_ai_agent_name }}}}"\n'
        'D = f"sum by ({AGENT}) (rate({series(TOKENS)}[5m]))"\n'
    )
    assert literal_names(source) == [
        (2, "agentrel_run_retry_depth_bucket"),
        (3, "error_type"),
        (4, "gen_ai_agent_name"),
    ]


def test_no_module_spells_a_series_or_label_name() -> None:
    """Every ``agentrel_*`` / ``gen_ai_*`` series and every label in tools/ops comes from the
    catalogue (tools/ops/_series.py), never from a literal."""
    files = sorted(OPS.glob("*.py"))
    assert len(files) >= 8
    found = {
        f"{path.name}:{line}": token
        for path in files
        for line, token in literal_names(path.read_text(encoding="utf-8"))
    }
    assert not found


def test_renaming_the_catalogue_renames_every_generated_name(tmp_path: Path) -> None:
    """Generate from a copy of the catalogue whose metric names and attribute keys are all
    renamed: no old name is left in any rule, alert or dashboard."""
    shutil.copytree(OPS, tmp_path / "tools" / "ops", ignore=shutil.ignore_patterns("__pycache__"))
    catalogue = tmp_path / "src" / "agentrel" / "_catalogue.py"
    catalogue.parent.mkdir(parents=True)
    text = (ROOT / "src" / "agentrel" / "_catalogue.py").read_text(encoding="utf-8")
    for old, new in RENAMES.items():
        assert old in text
        text = text.replace(old, new)
    catalogue.write_text(text, encoding="utf-8")
    generator = tmp_path / "tools" / "ops" / "generate.py"
    subprocess.run([sys.executable, str(generator), "--out", str(tmp_path)], check=True)
    outputs = [p for d in GENERATED for p in sorted((tmp_path / d).glob("*.*"))]
    assert len(outputs) == 4
    old_names = re.compile(r"\b(agentrel_[a-z]|gen_ai_|error_type\b)")
    for path in outputs:
        body = path.read_text(encoding="utf-8")
        left = sorted(set(old_names.findall(body)))
        assert not left, f"{path.name} still names {left}"
    rules = (tmp_path / "prometheus" / "agentrel.rules.yml").read_text(encoding="utf-8")
    assert "rate(zzrel_run_retry_depth_count[5m])" in rules
    assert "zzai_execute_tool_duration_seconds_bucket" in rules
    assert "zzerror_type" in rules
    overview = (tmp_path / "dashboards" / "agentrel-overview.json").read_text(encoding="utf-8")
    assert "zzrel_run_retry_depth_bucket" in overview
    assert (
        "$labels.zzai_agent_name" in (tmp_path / "prometheus" / "agentrel.alerts.yml").read_text()
    )


def _rules_with(tmp_path: Path, **knobs: str) -> Path:
    """prometheus/agentrel.rules.yml generated with some knobs changed, in tmp_path."""
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('gen', {str(OPS / 'generate.py')!r})\n"
        "gen = importlib.util.module_from_spec(spec); spec.loader.exec_module(gen)\n"
        "knobs = gen._module('knobs')\n"
        + "".join(f"knobs.{k} = {v!r}\n" for k, v in knobs.items())
        + f"sys.exit(gen.main(['--out', {str(tmp_path)!r}]))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    return tmp_path / "prometheus" / "agentrel.rules.yml"


def test_last_tier_regex_names_last_tiers_the_data_cannot_show(tmp_path: Path) -> None:
    """With LAST_TIER_REGEX set, a chain that was never exhausted (its last tier never fails)
    has its named last tier watched too; promtool evaluates both branches."""
    promtool = require_binary("promtool")
    rules = _rules_with(tmp_path, LAST_TIER_REGEX="static_.*")
    last = "chain_tier:agentrel_fallbacks_last_tier:rate5m"

    def fallbacks(chain: str, from_tier: str, to_tier: str) -> str:
        return (
            f'{cat.FALLBACKS.prometheus_name}{{agentrel_fallback_chain="{chain}",'
            f'agentrel_fallback_from_tier="{from_tier}",agentrel_fallback_to_tier="{to_tier}",'
            'error_type="TimeoutError"}'
        )

    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # never exhausted: the regex names its last tier
                    {"series": fallbacks("faq", "model", "static_faq"), "values": "0+6x10"},
                    # never exhausted, not named: no known last tier
                    {"series": fallbacks("kb", "index", "mirror"), "values": "0+6x10"},
                ],
                "promql_expr_test": [
                    {
                        "expr": last,
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": f'{last}{{agentrel_fallback_chain="faq",'
                                'agentrel_fallback_to_tier="static_faq"}',
                                "value": 0.1,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    default = (ROOT / "prometheus" / "agentrel.rules.yml").read_text(encoding="utf-8")
    assert "static_" not in default and 'to_tier=~"' not in default
