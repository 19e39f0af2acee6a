"""Shared fixtures: every test starts from a clean agentrel and records into memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentrel
from agentrel import _clock, testing

#: ``AGENTREL_TEST_INSTALLED=1`` (``make wheel-test``): the suite tests the installed wheel, so
#: an ``agentrel`` imported from this checkout's src/ would make every result meaningless.
INSTALLED = os.environ.get("AGENTREL_TEST_INSTALLED") == "1"
_SRC = Path(__file__).resolve().parent.parent / "src"
if INSTALLED and Path(agentrel.__file__).resolve().is_relative_to(_SRC):
    raise pytest.UsageError(
        f"AGENTREL_TEST_INSTALLED=1 but agentrel was imported from {agentrel.__file__}, "
        "the source tree, not the installed wheel"
    )


@pytest.fixture(autouse=True)
def _clean_agentrel() -> Iterator[None]:
    testing.reset()
    yield
    testing.reset()


@pytest.fixture
def cap() -> Iterator[testing.Capture]:
    with testing.capture() as c:
        yield c


class FakeClock:
    """A perf_counter stand-in: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(_clock, "now", c)
    return c
