"""The ``agentrel`` command: ``demo`` and ``inventory``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from .._instrumentor import DIST
from .._version import __version__

DEMO_HELP = """\
Run a simulated fleet of support agents in this process (no API key, no server) and show,
side by side, what classic monitoring sees (success rate, error rate, MTBF) and what
agentrel sees (clean vs recovered runs, retry depth, attempts, token amplification, fallback
tiers, unsafe retries, per cohort). /metrics is served while it runs; OTLP is exported when
OTEL_EXPORTER_OTLP_ENDPOINT is set. Ctrl-C ends it with a summary.
"""

INVENTORY_HELP = """\
Import the named modules and print every tool registered with @agentrel.tool (or
agentrel.instrument(client, tools=...)): system, idempotent, reversible, owner, description
and where it is defined. Tools declared reversible=False with no owner are flagged.
"""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentrel",
        description="agentrel: make an LLM agent's self-healing visible.",
    )
    parser.add_argument("--version", action="version", version=f"agentrel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a simulated agent fleet and show what success rate hides",
        description=DEMO_HELP,
    )
    demo.add_argument(
        "--scenario",
        choices=("healthy", "degraded", "outage"),
        default="degraded",
        help="how the upstreams behave (default: degraded)",
    )
    demo.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="run rate × SECONDS runs, then print the summary and exit (default: until Ctrl-C)",
    )
    demo.add_argument(
        "--rate",
        type=_positive,
        default=20.0,
        metavar="RUNS_PER_S",
        help="agent runs per second (default: 20)",
    )
    demo.add_argument(
        "--seed", type=int, default=1, metavar="N", help="same seed, same numbers (default: 1)"
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=9464,
        help="serve /metrics on this port (default: 9464; 0 picks a free one)",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to bind /metrics to (default: 127.0.0.1)"
    )
    demo.add_argument(
        "--plain", action="store_true", help="plain text even on a terminal (no live view)"
    )

    inv = sub.add_parser(
        "inventory",
        help="list every registered tool and what it touches (blast radius)",
        description=INVENTORY_HELP,
    )
    inv.add_argument(
        "modules",
        nargs="+",
        metavar="MODULE",
        help="dotted module name (myapp.tools) or file path (src/myapp/tools.py)",
    )
    inv.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``agentrel`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if importlib.util.find_spec("tenacity") is None:
            # The simulated fleet retries with the real tenacity: say what to install.
            print(
                f"agentrel demo needs tenacity: pip install '{DIST}[cli]'",
                file=sys.stderr,
            )
            return 2
        from . import demo

        return demo.run(
            scenario=args.scenario,
            duration=args.duration,
            rate=args.rate,
            seed=args.seed,
            host=args.host,
            port=args.port,
            plain=args.plain,
        )
    if args.command == "inventory":
        from . import inventory

        return inventory.run(args.modules, args.json)
    parser.print_help(sys.stderr)
    return 2
