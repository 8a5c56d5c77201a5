"""Check 1, ``load``: the source parses and defines the exercise's function (never executed here).

Parsing with `ast` in the trusted process gives the common load errors a precise message without
a sandbox round trip; the sandbox checks the same again for what a parse cannot see.
"""

from __future__ import annotations

import ast

from grader.checks import Stop
from grader.kinds.base import Kind
from grader.result import CheckResult
from grader.verdicts import Verdict

Function = ast.FunctionDef | ast.AsyncFunctionDef


def check(kind: Kind, source: str) -> tuple[CheckResult, Function | None]:
    """The passed ``load`` check and the function's last top-level definition (None if bound otherwise).

    Raises Stop (``syntax_error`` with the line, or ``runtime_error`` when the function is missing).
    """
    try:
        tree = ast.parse(source, filename="submission.py")
    except SyntaxError as error:
        line = error.lineno
        message = f"SyntaxError: {error.msg}" + (f" (line {line})" if line else "")
        raise Stop(Verdict.SYNTAX_ERROR, CheckResult("load", False, message, line=line)) from None
    except (ValueError, RecursionError, MemoryError) as error:
        message = f"the source cannot be parsed: {type(error).__name__}"
        raise Stop(Verdict.SYNTAX_ERROR, CheckResult("load", False, message)) from None
    definitions = [node for node in tree.body if isinstance(node, Function) and node.name == kind.function_name]
    if not definitions and not _binds_name(tree, kind.function_name):
        expected = f"{kind.function_name}({', '.join(kind.arg_names)})"
        message = f"your file does not define a function named {kind.function_name}; define {expected}"
        raise Stop(Verdict.RUNTIME_ERROR, CheckResult("load", False, message))
    return CheckResult("load", True, f"defines {kind.function_name}"), (definitions[-1] if definitions else None)


def _binds_name(tree: ast.Module, name: str) -> bool:
    """True if a top-level statement other than a def binds `name` (assignment, import, class...)."""
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(sub, ast.Name) and sub.id == name for t in targets for sub in ast.walk(t)):
                return True
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any((alias.asname or alias.name.split(".")[0]) == name for alias in node.names):
                return True
        elif isinstance(node, ast.ClassDef) and node.name == name:
            return True
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Expr | ast.Pass) and any(
            isinstance(sub, ast.FunctionDef) and sub.name == name for sub in ast.walk(node)
        ):
            return True  # defined inside an if/try/with block: let the sandbox decide
    return False
