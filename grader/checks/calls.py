"""Calling the learner's function once per case, and what the checks may do with what it returned.

A returned value is learner data: it may have any shape and any of the wire's dtypes, up to the
sandbox's frame cap. The checks convert, compare or walk a returned array only when it has at
most `Call.bound` elements: BOUND_FACTOR times the case's largest argument or expected output
(room for honest mistakes such as a padded or unsummed gradient), and at least BOUND_FLOOR. A
larger array is dropped as soon as it arrives and judged by its shape alone, so the work and the
memory of the trusted process stay bounded by what the case declares, whatever is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.kinds.base import Case, Kind
from grader.sandbox import Session

BOUND_FACTOR = 16
BOUND_FLOOR = 4096
FLOAT_MAX_INT = int(np.finfo(np.float64).max)  # a larger Python int has no float64 value


@dataclass(frozen=True)
class Oversized:
    """Stands for a returned array too large to look into: only its shape and dtype are kept."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]


@dataclass
class Call:
    """One call of the learner's function on one case."""

    case: Case
    expected: dict[str, Any]
    returned: dict[str, Any] | None  # by output name; None when the result could not be split
    problems: list[str]  # outputs-check problems (type, shape, dtype, finite)
    args_after: list[Any]
    bound: int  # the most elements of a returned array the checks will look into

    def inspectable(self, value: Any) -> bool:
        """True if `value` is a number or an array the checks may convert (within `bound`)."""
        return comparable(value) and int(np.size(value)) <= self.bound


def call_case(session: Session, kind: Kind, case: Case, reference: Callable[[], dict[str, Any]] | None = None) -> Call:
    """Call the function on `case` in the sandbox; the outputs-check problems come with it.

    `reference` gives the case's expected outputs (the engine computes them ahead, grader/backlog.py);
    by default `kind.reference(case)`.
    """
    result, args_after = session.call_with_inputs(*kind.call_args(case.args))
    expected = reference() if reference is not None else kind.reference(case)
    problems: list[str] = []
    returned: dict[str, Any] | None
    try:
        returned = kind.split_result(result)
    except ValueError as error:
        returned = None
        problems.append(f"{kind.function_name} must return {returns(kind)}: {error}")
    if returned is not None:
        for output in kind.outputs:
            problems += output_problems(output.name, expected[output.name], returned[output.name])
    largest = max((int(np.size(leaf)) for leaf in _leaves([case.args, expected])), default=1)
    bound = max(BOUND_FACTOR * largest, BOUND_FLOOR)
    # Arrays beyond the bound are dropped now: the checks read only their shape.
    if returned is not None:
        returned = {name: _trimmed(value, bound) for name, value in returned.items()}
    return Call(case, expected, returned, problems, [_trimmed(value, bound) for value in args_after], bound)


def returns(kind: Kind) -> str:
    names = [output.name for output in kind.outputs]
    return names[0] if len(names) == 1 else f"a tuple ({', '.join(names)})"


def comparable(value: Any) -> bool:
    """A number or an array the comparison can read as float64 (not a bool, not an int beyond float range)."""
    if isinstance(value, bool) or not isinstance(value, np.ndarray | float | int | np.floating):
        return False
    return not isinstance(value, int) or abs(value) <= FLOAT_MAX_INT


def _finite_number(value: Any) -> bool:
    """True if the number is finite as a float64 (an int beyond float range is not)."""
    if isinstance(value, int):
        return abs(value) <= FLOAT_MAX_INT
    return bool(np.isfinite(float(value)))


def output_problems(name: str, expected: Any, got: Any) -> list[str]:
    """Type, shape, dtype and finiteness problems of one returned value (empty if fine).

    Shape and dtype are read before any entry, so a value of the wrong size is never walked.
    """
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{name} must be a dict with keys {', '.join(expected)} (got {type_name(got)})"]
        missing = [key for key in expected if key not in got]
        extra = [key for key in got if key not in expected]
        problems = []
        if missing:
            problems.append(f"{name} is missing key(s) {', '.join(map(repr, missing))}")
        if extra:
            problems.append(f"{name} has unexpected key(s) {', '.join(map(repr, extra))}")
        for key in expected:
            if key in got:
                problems += output_problems(f"{name}[{key!r}]", expected[key], got[key])
        return problems
    if isinstance(expected, float):
        value = got
        if isinstance(got, np.ndarray) and got.size == 1:
            if got.dtype != np.float64:
                return [f"{name} must be a float64 number (got dtype {got.dtype})"]
            value = float(got.reshape(()))
        if isinstance(value, bool) or not isinstance(value, float | int | np.floating):
            return [f"{name} must be a number (got {type_name(got)})"]
        if not _finite_number(value):
            shown = "an integer beyond float64's range" if isinstance(value, int) else float(value)
            return [f"{name} is {shown}: it must be finite"]
        return []
    expected_shape = tuple(np.shape(expected))
    if not isinstance(got, np.ndarray):
        return [f"{name} must be a NumPy array of shape {expected_shape} (got {type_name(got)})"]
    if got.shape != expected_shape:
        return [f"{name} has shape {got.shape}; expected {expected_shape}"]
    if got.dtype != np.float64:
        return [f"{name} has dtype {got.dtype}; gradients must be float64"]
    if not np.isfinite(got).all():
        count = int((~np.isfinite(got)).sum())
        return [f"{name} has {count} NaN or infinite entr{'y' if count == 1 else 'ies'}"]
    return []


def type_name(value: Any) -> str:
    if value is None:
        return "None"
    article = "an" if type(value).__name__[0] in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


def _trimmed(value: Any, bound: int) -> Any:
    """`value` with every array of more than `bound` elements replaced by its Oversized stand-in."""
    if isinstance(value, np.ndarray):
        return Oversized(value.shape, value.dtype) if value.size > bound else value
    if isinstance(value, dict):
        return {key: _trimmed(item, bound) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_trimmed(item, bound) for item in value)
    return value


def _leaves(value: Any) -> Iterator[Any]:
    """Arrays and numbers inside nested lists and dicts (a case's arguments, its expected outputs)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, np.ndarray | float | int | np.number):
        yield value
