"""The demo's provider moves ``gpt-4o`` to a new snapshot mid-stream: the LLM calls of runs
before ``MODEL_SWAP_AT`` report the old ``gen_ai.response.model``, those from it on the new."""

from __future__ import annotations

import agentrel
from agentrel import _catalogue as cat
from agentrel import testing
from agentrel._cli import fleet


def _served(first: int, last: int) -> dict[tuple[str, str], int]:
    """Operations by (request, response model) of runs ``first..last`` of the seeded stream."""
    with testing.capture() as cap:
        agentrel.configure(
            cohorts=fleet.COHORTS,
            tracer_provider=cap.tracer_provider,
            meter_provider=cap.meter_provider,
        )
        demo = fleet.Fleet(fleet.SCENARIOS["healthy"], seed=3)
        for index in range(first, last + 1):
            demo.run(index)
        out: dict[tuple[str, str], int] = {}
        for a, p in cap.points(cat.CLIENT_OPERATION_DURATION.name):
            if cat.RESPONSE_MODEL in a:
                key = (a[cat.REQUEST_MODEL], a[cat.RESPONSE_MODEL])
                out[key] = out.get(key, 0) + p.count
        agentrel.current_configuration().shutdown()  # type: ignore[union-attr]
        # The fleet instrumented tenacity for its retries: leave the process as it was.
        from agentrel.integrations import tenacity as agentrel_tenacity

        agentrel_tenacity.uninstrument()
        fleet.instrument_retries.cache_clear()
        return out


def test_the_served_model_changes_at_the_swap() -> None:
    """Every run makes one primary-model answer at least (healthy: almost never more): the
    ten runs before the swap are served by the old snapshot only, the ten from it by the new."""
    swap = fleet.MODEL_SWAP_AT
    old, new = fleet.PRIMARY_SERVED
    before = _served(swap - 10, swap - 1)
    after = _served(swap, swap + 9)
    assert set(before) == {(fleet.PRIMARY_MODEL, old)} and before[(fleet.PRIMARY_MODEL, old)] >= 10
    assert set(after) == {(fleet.PRIMARY_MODEL, new)} and after[(fleet.PRIMARY_MODEL, new)] >= 10
