"""Run a snippet in a fresh interpreter (the global OpenTelemetry providers can be set only
once per process) with a clean environment: PATH, and only the variables a test names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def run_py(code: str, timeout: float = 120, **env: str) -> str:
    """The snippet's stdout, stripped; its stderr in the assertion when it exits non-zero."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()
