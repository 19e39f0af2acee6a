"""Shared fixtures: every test starts from a clean agentrel and records into memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentrel import _clock, testing


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
