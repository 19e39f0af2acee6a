"""``agentrel`` and ``python -m agentrel``: the command line (``demo``, ``inventory``)."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentrel`` command; returns the exit code."""
    from ._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
