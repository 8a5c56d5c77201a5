"""Check 2, ``signature``: the function is a plain function taking the catalog's arguments."""

from __future__ import annotations

import ast

from grader.checks import Stop
from grader.checks.load import Function
from grader.kinds.base import Kind
from grader.result import CheckResult
from grader.verdicts import Verdict


def check(kind: Kind, function: Function | None) -> CheckResult:
    """The passed ``signature`` check; raises Stop (``runtime_error``, with the line) otherwise.

    `function` is the parsed definition (None when the name is bound some other way: the
    sandbox checks the arguments then).
    """
    expected = f"{kind.function_name}({', '.join(kind.arg_names)})"
    if function is not None:
        line = function.lineno
        if isinstance(function, ast.AsyncFunctionDef):
            message = f"{kind.function_name} must be a plain function, not async (line {line})"
            raise Stop(Verdict.RUNTIME_ERROR, CheckResult("signature", False, message, line=line))
        arguments = function.args
        positional = len(arguments.posonlyargs) + len(arguments.args)
        required = positional - len(arguments.defaults)
        wanted = len(kind.arg_names)
        if (arguments.vararg is None and positional < wanted) or required > wanted:
            message = (
                f"{kind.function_name} takes {positional} argument{'s' if positional != 1 else ''}; "
                f"it must take {wanted}: {expected} (line {line})"
            )
            raise Stop(Verdict.RUNTIME_ERROR, CheckResult("signature", False, message, line=line))
    return CheckResult("signature", True, expected)
