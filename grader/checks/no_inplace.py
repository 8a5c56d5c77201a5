"""Check 4, ``no_inplace``: the function leaves its arguments as they were passed.

The sandbox gives the child copies, so the trusted arrays cannot change; the child sends back the
arguments as it holds them after the call, and they are compared with the trusted copies here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.calls import Call
from grader.checks.diagnose import Diagnoser
from grader.kinds.base import Kind
from grader.result import CheckResult


def check(kind: Kind, calls: list[Call], diagnoser: Diagnoser) -> CheckResult:
    """Failed, naming the arguments, if any call changed one (each named once, and diagnosed)."""
    changed: list[str] = []
    for call in calls:
        for name, before, after in zip(kind.arg_names, kind.call_args(call.case.args), call.args_after, strict=True):
            if _modified(before, after) and name not in changed:
                changed.append(name)
                diagnoser.inplace(name, before, after)
    if changed:
        return CheckResult(
            "no_inplace", False, f"{kind.function_name} modified its argument(s) {', '.join(changed)} in place"
        )
    return CheckResult("no_inplace", True, "no argument was modified")


def _modified(before: Any, after: Any) -> bool:
    """True unless `after` equals `before` (shape first: a resized argument is never walked)."""
    if isinstance(before, dict):
        return not isinstance(after, dict) or any(_modified(before[k], after.get(k)) for k in before)
    if isinstance(before, np.ndarray):
        return not (
            isinstance(after, np.ndarray)
            and after.shape == before.shape
            and np.array_equal(before, after, equal_nan=True)
        )
    return False
