""" "Run on an example": the learner's function on one small fixed case, shown beside the expected values.

Not a submission: nothing is graded, no score, no verdict row. Only the learner's function
runs in the sandbox (the same session the grading uses, `Engine.session`); the case, the
expected values (float64 autograd of the kind's trusted forward) and the comparison stay
in this process. The reference solution is never involved.

`run_example(engine, spec, source)` returns a JSON-able dict:

    {"status": "ran" | "syntax_error" | "runtime_error" | ... (a Verdict value),
     "message": str,                  # what went wrong, in the learner's words ("" when it ran)
     "case": str,                     # the case's label
     "inputs": [Shown...],            # each argument: name, type, shape, values
     "outputs": [{"name", "expected": Shown, "got": Shown | None, "matches": bool, "problem": str}],
     "stdout": str}                   # what the function printed (capped)

where Shown = {"type": "ndarray float64", "shape": [4, 3] | None, "values": "[[...]]"}.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from grader.kinds.base import Case, Kind
from grader.sandbox import SandboxError
from grader.spec import ExerciseSpec

EXAMPLE_SEED = 20_251_201  # one fixed case per exercise, the same for every learner and every run
STDOUT_SHOWN_CHARS = 4000
VALUES_SHOWN_CHARS = 1500
MATCH_RTOL = 1e-6
MATCH_ATOL = 1e-9


def example_case(kind: Kind) -> Case:
    """The smallest regular case of the kind's cases for EXAMPLE_SEED (fewest numbers in its inputs)."""
    cases = kind.make_cases(np.random.default_rng(EXAMPLE_SEED))
    regular = [case for case in cases if not case.edge] or cases
    return min(regular, key=lambda case: sum(int(np.size(value)) for value in _leaves(case.args)))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def shown(value: Any) -> dict[str, Any]:
    """How a value is displayed: its type (with dtype), its shape and its values, cut to a readable length."""
    if isinstance(value, dict):
        return {"type": "dict", "shape": None, "values": _values(value)}
    if isinstance(value, np.ndarray):
        return {"type": f"ndarray {value.dtype}", "shape": list(value.shape), "values": _values(value)}
    if isinstance(value, np.generic):
        return {"type": f"{type(value).__name__}", "shape": None, "values": _values(value)}
    if isinstance(value, tuple | list):
        return {"type": f"{type(value).__name__} of {len(value)}", "shape": None, "values": _values(value)}
    return {"type": type(value).__name__, "shape": None, "values": _values(value)}


def _values(value: Any) -> str:
    text = _text(value, VALUES_SHOWN_CHARS + 1)
    return text if len(text) <= VALUES_SHOWN_CHARS else text[:VALUES_SHOWN_CHARS] + " …"


def _text(value: Any, budget: int) -> str:
    """The value as text, built only until it is `budget` characters long (what follows is left out).

    A returned value may hold thousands of arrays: writing each out only to show the first
    VALUES_SHOWN_CHARS characters cost the worker seconds per run; now the work stops with the text.
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            return np.array2string(value, precision=4, suppress_small=True, threshold=60, max_line_width=80)
        return np.array2string(value, threshold=60, max_line_width=80)
    if isinstance(value, dict):
        items = [(f"{key!r}: ", item) for key, item in value.items()]
        opening, closing = "{", "}"
    elif isinstance(value, list | tuple):
        items = [("", item) for item in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ",)" if len(value) == 1 else ")")
    else:
        return repr(value)
    parts = [opening]
    length = len(opening)
    for index, (prefix, item) in enumerate(items):
        if length > budget:
            break
        part = (", " if index else "") + prefix + _text(item, budget - length)
        parts.append(part)
        length += len(part)
    else:
        parts.append(closing)
    return "".join(parts)


def _matches(expected: Any, got: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(got, dict) and set(got) == set(expected) and all(_matches(expected[k], got[k]) for k in got)
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    expected_array = np.asarray(expected, dtype=np.float64)
    if got_array.shape != expected_array.shape:
        return False
    return bool(np.allclose(got_array, expected_array, rtol=MATCH_RTOL, atol=MATCH_ATOL, equal_nan=False))


def _problem(expected: Any, got: Any) -> str:
    """Why a returned value does not match, in a few words ("" when it does)."""
    if _matches(expected, got):
        return ""
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"expected an array of shape {tuple(expected.shape)}, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"shape {tuple(got.shape)} instead of {tuple(expected.shape)}"
        if got.dtype != np.float64:
            return f"dtype {got.dtype} instead of float64"
        if got.dtype.kind in "fc" and not np.isfinite(got).all():
            return "contains NaN or infinity"
        return "values differ"
    return "value differs"


def run_example(engine: Any, spec: ExerciseSpec, source: str) -> dict[str, Any]:
    """Run the learner's function on the exercise's example case (see the module docstring)."""
    kind = spec.get_kind()
    case = example_case(kind)
    expected = kind.reference(case)
    report: dict[str, Any] = {
        "status": "ran",
        "message": "",
        "case": case.label,
        "inputs": [{"name": name, **shown(case.args[name])} for name in kind.arg_names],
        "outputs": [],
        "stdout": "",
    }
    try:
        ast.parse(source, filename="submission.py")
    except SyntaxError as error:
        report.update(status="syntax_error", message=f"SyntaxError: {error.msg} (line {error.lineno})")
        return report
    except (ValueError, RecursionError, MemoryError) as error:
        report.update(status="syntax_error", message=f"the source cannot be parsed: {type(error).__name__}")
        return report
    try:
        with engine.session(spec, source) as session:
            try:
                result, _ = session.call_with_inputs(*kind.call_args(case.args))
            finally:
                report["stdout"] = str(getattr(session, "stdout", "") or "")[:STDOUT_SHOWN_CHARS]
    except SandboxError as error:
        report.update(status=str(error.verdict), message=error.message)
        report["stdout"] = report["stdout"] or str(error.stdout or "")[:STDOUT_SHOWN_CHARS]
        return report
    try:
        returned = kind.split_result(result)
    except ValueError as error:
        names = ", ".join(output.name for output in kind.outputs)
        report.update(message=f"{kind.function_name} must return {names}: {error}")
        report["outputs"] = [
            {
                "name": output.name,
                "expected": shown(expected[output.name]),
                "got": None,
                "matches": False,
                "problem": "",
            }
            for output in kind.outputs
        ]
        report["returned"] = shown(result)
        return report
    for output in kind.outputs:
        want, got = expected[output.name], returned[output.name]
        problem = _problem(want, got)
        report["outputs"].append(
            {
                "name": output.name,
                "expected": shown(want),
                "got": shown(got),
                "matches": not problem,
                "problem": problem,
            }
        )
    return report
