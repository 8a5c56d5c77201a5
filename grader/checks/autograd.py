"""Check 5, ``autograd``: each output of the regular cases against float64 PyTorch autograd."""

from __future__ import annotations

from grader.checks.calls import Call
from grader.checks.compare import compare, compare_message
from grader.checks.diagnose import Diagnoser
from grader.kinds.base import Kind
from grader.result import CheckResult


def check(kind: Kind, calls: list[Call], tolerance: float, outputs_ok: bool, diagnoser: Diagnoser) -> CheckResult:
    """Passed when every array is within `tolerance` (skipped, failed, when the outputs check failed)."""
    arrays, worst = compare(kind, calls, tolerance)
    passed = outputs_ok and worst <= tolerance
    if outputs_ok and not passed:
        for call in calls:
            diagnoser.diagnose_call(call, tolerance)
    message = (
        compare_message(arrays, tolerance, "PyTorch autograd") if outputs_ok else "skipped: the outputs check failed"
    )
    return CheckResult("autograd", passed, message, rel_error=worst, tolerance=tolerance, arrays=arrays)
