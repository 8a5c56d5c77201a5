"""Percentiles, defined once for the dashboard and the benchmarks.

The definition is PostgreSQL's `percentile_cont`: sort the values, take the position
`fraction * (n - 1)` and interpolate linearly between the two values around it. The dashboard
computes the same figure in SQL on PostgreSQL and with this function on SQLite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The `fraction` (0..1) percentile of `values`, in any order; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
