"""Check 7, ``edge_cases``: one check per edge case of the kind, against PyTorch autograd."""

from __future__ import annotations

from grader.checks.calls import Call
from grader.checks.compare import compare, compare_message
from grader.checks.diagnose import Diagnoser
from grader.kinds.base import Kind
from grader.result import CheckResult

SHOWN_PROBLEMS = 5


def check(kind: Kind, calls: list[Call], tolerance: float, diagnoser: Diagnoser) -> list[CheckResult]:
    """One ``edge_cases`` result per edge-case call (its label as ``case``); failures are diagnosed."""
    results = []
    for call in calls:
        problems = call.problems
        arrays, worst = compare(kind, [call], tolerance) if not problems else ((), float("inf"))
        passed = not problems and worst <= tolerance
        if problems:
            message = "; ".join(problems[:SHOWN_PROBLEMS])
        else:
            message = compare_message(arrays, tolerance, "PyTorch autograd")
        results.append(
            CheckResult("edge_cases", passed, message, case=call.case.label, rel_error=worst, tolerance=tolerance)
        )
        if not passed:
            diagnoser.diagnose_call(call, tolerance)
    return results
