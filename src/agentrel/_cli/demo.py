"""``agentrel demo``: a simulated fleet of support agents, served on ``/metrics`` and shown live.

The fleet runs single-threaded in this process, at ``--rate`` runs per second. With
``--duration`` it makes exactly ``rate × duration`` runs (paced on the wall clock, caught up
if the machine is slow), so the numbers depend on the seed, never on the machine's speed.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Protocol

from .._instrumentor import DIST
from .readout import Readout
from .view import PlainView, Progress, RichView

#: how often the view is refreshed (wall-clock seconds)
REFRESH = 1.0


class View(Protocol):
    def start(self, p: Progress) -> None: ...
    def update(self, r: Readout, p: Progress, elapsed: float) -> None: ...
    def stop(self, r: Readout, p: Progress) -> None: ...


def _make_view(plain: bool) -> View:
    if not plain and sys.stdout.isatty():
        try:
            return RichView()
        except ImportError:
            print(
                f"agentrel demo: install '{DIST}[cli]' (rich) for the live view; "
                "showing plain text",
                file=sys.stderr,
            )
    return PlainView()


class _Stop:
    """SIGINT/SIGTERM end the demo cleanly after the run in progress; a second Ctrl-C
    interrupts at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.event.set()


def restart_replica() -> None:
    """Simulate a replica restart (a deploy): every tool is cold again, and agentrel, like a
    new process, has seen no first call yet."""
    from .. import _coldstart
    from . import fleet as fleet_mod

    _coldstart.forget()
    fleet_mod.restart()


def run(
    *,
    scenario: str,
    duration: float | None,
    rate: float,
    seed: int,
    host: str,
    port: int,
    plain: bool = False,
) -> int:
    """Run the demo; return the exit code."""
    import agentrel

    from . import fleet as fleet_mod
    from . import verdicts as judges

    # configure() never raises for a busy port (it logs and counts it, the process goes on);
    # the demo exists to serve /metrics, so it says so in its own words and stops.
    held = _HeldRecords()
    logging.getLogger("agentrel").addFilter(held)
    try:
        cfg = agentrel.configure(
            service_name="agentrel-demo",
            prometheus_port=port,
            prometheus_addr=host,
            cohorts=fleet_mod.COHORTS,
            prices=fleet_mod.PRICES,
            verdict_sources=judges.SOURCES,
        )
    except ValueError as exc:  # e.g. --host that is not an IP address
        print(f"agentrel demo: {exc}", file=sys.stderr)
        return 2
    finally:
        logging.getLogger("agentrel").removeFilter(held)
    server = cfg.metrics_server
    if server is None and agentrel.telemetry_errors().get("prometheus.endpoint"):
        print(
            f"agentrel demo: cannot serve /metrics on {host}:{port}: the port is in use "
            "(choose another --port; 0 picks a free one)",
            file=sys.stderr,
        )
        cfg.shutdown()
        return 1
    held.replay()
    if server is None:  # an application-level MeterProvider was already set: not in the CLI
        print("agentrel demo: no /metrics endpoint could be started", file=sys.stderr)
        cfg.shutdown()
        return 1
    fleet = fleet_mod.Fleet(fleet_mod.SCENARIOS[scenario], seed)
    total = None if duration is None else max(1, round(rate * duration))

    def readout() -> Readout:
        return Readout.collect(server.registry.collect(), fleet_mod.designed_attempts)

    print(f"agentrel demo: serving {server.url}", flush=True)
    if cfg.otlp_endpoint:
        print(f"agentrel demo: exporting OTLP to {cfg.otlp_endpoint}", flush=True)
    view = _make_view(plain)
    stop = _Stop()
    stop.install()
    done = 0
    progress = Progress(scenario, seed, rate, 0, total, server.url)
    try:
        view.start(progress)
        start = time.monotonic()
        next_refresh = start + REFRESH
        while not stop.event.is_set() and (total is None or done < total):
            now = time.monotonic()
            if now >= next_refresh:
                progress = Progress(scenario, seed, rate, done, total, server.url)
                view.update(readout(), progress, now - start)
                next_refresh = now + REFRESH
            due = start + done / rate
            if due > now:
                stop.event.wait(min(due, next_refresh) - now)
                continue
            if done and done % fleet_mod.RESTART_EVERY == 0:
                restart_replica()
            fleet.run(done)
            done += 1
        progress = Progress(scenario, seed, rate, done, total, server.url)
        view.stop(readout(), progress)
    finally:
        stop.restore()
        cfg.shutdown()
    return 0


class _HeldRecords(logging.Filter):
    """Holds agentrel's log records while the demo configures (to replay them unless the
    demo reports the problem itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def replay(self) -> None:
        for record in self.records:
            logging.getLogger(record.name).handle(record)
