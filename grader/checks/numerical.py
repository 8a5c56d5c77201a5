"""Check 6, ``numerical``: each gradient against central differences at sampled coordinates (shown)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from grader.checks.calls import Call
from grader.checks.compare import compare_message
from grader.gradcheck import CentralDifferences, central_differences, compare_numerically
from grader.kinds.base import Case, Kind
from grader.result import ArrayResult, CheckResult, Sample


def differences(
    kind: Kind, case: Case, expected: dict[str, Any], *, samples: int, rng: np.random.Generator
) -> list[CentralDifferences]:
    """The central differences (h = 1e-6) `check` compares with: they depend on the case only, not on the learner."""
    names = {output.name: output.of for output in kind.outputs if output.of is not None}
    inputs = {name: case.args[name] for name in kind.differentiable}
    return central_differences(kind.numeric_function(case), inputs, expected, names, rng=rng, samples=samples)


def check(
    kind: Kind,
    call: Call | None,
    *,
    tolerance: float,
    samples: int,
    rng: np.random.Generator,
    outputs_ok: bool,
    ahead: Callable[[], list[CentralDifferences]] | None = None,
) -> CheckResult:
    """Central differences on the first regular case; skipped, failed, without good outputs.

    `ahead` gives `differences(kind, call.case, call.expected, ...)` computed before (the same values).
    """
    if call is None or not outputs_ok or call.returned is None:
        return CheckResult("numerical", False, "skipped: the outputs check failed", tolerance=tolerance)
    sampled = ahead() if ahead is not None else differences(kind, call.case, call.expected, samples=samples, rng=rng)
    comparisons = compare_numerically(sampled, call.returned)
    worst = max((c.rel_error for c in comparisons), default=0.0)
    arrays = tuple(
        ArrayResult(
            name=c.name,
            rel_error=c.rel_error,
            tolerance=tolerance,
            passed=c.rel_error <= tolerance,
            samples=tuple(
                Sample(tuple(index), numerical, analytic)
                for index, numerical, analytic in zip(c.coordinates, c.numerical, c.analytic, strict=True)
            ),
        )
        for c in comparisons
    )
    message = compare_message(arrays, tolerance, "central differences (h = 1e-6) at sampled entries")
    return CheckResult(
        "numerical",
        worst <= tolerance,
        message,
        rel_error=worst,
        tolerance=tolerance,
        case=call.case.label,
        arrays=arrays,
    )
