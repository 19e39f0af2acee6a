"""The one clock of agentrel's durations (monotonic, high resolution).

Modules read it as ``_clock.now()`` so that tests can move time by replacing ``now`` here.
"""

from __future__ import annotations

import time

now = time.perf_counter
