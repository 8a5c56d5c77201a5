"""Check 3, ``outputs``: every returned value has the expected type, shape, float64 dtype, finite entries."""

from __future__ import annotations

from grader.checks.calls import Call, returns
from grader.checks.diagnose import Diagnoser
from grader.kinds.base import Kind
from grader.result import CheckResult

SHOWN_PROBLEMS = 5


def check(kind: Kind, calls: list[Call], diagnoser: Diagnoser, tolerance: float) -> CheckResult:
    """Passed when no call of the regular cases has a problem; a failure diagnoses each call."""
    problems = [f"{call.case.label}: {problem}" for call in calls for problem in call.problems]
    message = "; ".join(problems[:SHOWN_PROBLEMS]) or (
        f"{returns(kind)}: types, shapes, float64 dtype and finite values as expected"
    )
    if problems:
        for call in calls:
            diagnoser.diagnose_call(call, tolerance)
    return CheckResult("outputs", not problems, message)
