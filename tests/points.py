"""Every metric point a capture holds, in a form two captures can be compared in."""

from __future__ import annotations

from typing import Any

from agentrel import testing


def snapshot(cap: testing.Capture) -> dict[str, list[tuple[Any, ...]]]:
    """Every metric point agentrel recorded; timings reduced to their count."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name in sorted(cap.metric_names()):
        rows = []
        for attrs, p in cap.points(name):
            key = tuple(sorted(attrs.items()))
            if hasattr(p, "bucket_counts"):
                timed = name.endswith("duration") or name.endswith("recovery_time")
                rows.append((key, p.count, None if timed else p.sum))
            else:
                rows.append((key, p.value))
        out[name] = sorted(rows)
    return out
