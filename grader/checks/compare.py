"""The comparison the autograd and edge-case checks share: per-array worst relative error."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.calls import Call
from grader.gradcheck import flat_arrays, rel_error
from grader.kinds.base import Kind
from grader.result import ArrayResult


def compare(kind: Kind, calls: list[Call], tolerance: float) -> tuple[tuple[ArrayResult, ...], float]:
    """Per-array worst relative error over the calls, and the worst of all (+inf if none compared).

    An array of another shape than expected is +inf without being converted.
    """
    errors: dict[str, float] = {}
    for call in calls:
        if call.returned is None:
            continue
        for output in kind.outputs:
            got = dict(flat_arrays(output.name, call.returned[output.name]))
            for name, expected in flat_arrays(output.name, call.expected[output.name]):
                value = got.get(name)
                same_shape = value is not None and call.inspectable(value) and np.shape(value) == np.shape(expected)
                error = rel_error(expected, value) if same_shape else float("inf")
                errors[name] = max(errors.get(name, 0.0), error)
    arrays = tuple(
        ArrayResult(name=name, rel_error=error, tolerance=tolerance, passed=error <= tolerance)
        for name, error in errors.items()
    )
    worst = max(errors.values(), default=float("inf"))
    return arrays, worst


def compare_message(arrays: tuple[ArrayResult, ...], tolerance: float, against: str) -> str:
    parts = [f"{a.name}: relative error {_format_error(a.rel_error)}" for a in arrays]
    wrong = [a.name for a in arrays if not a.passed]
    verdict = f"{', '.join(wrong)} differ{'s' if len(wrong) == 1 else ''}" if wrong else "all match"
    return f"against {against} (tolerance {tolerance:g}), {verdict}: " + "; ".join(parts)


def _format_error(value: Any) -> str:
    if not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.2e}"
