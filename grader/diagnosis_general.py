"""More general detectors for grader/diagnosis.py: a sum over the wrong axes, a ratio of two sizes.

Like the rules there, these look only at the expected value, what was returned and the case's
arguments, so they apply to every exercise.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from grader.mistakes import Candidate, Mistake, matches, scale_candidates


def _axes(axes: tuple[int, ...]) -> str:
    return f"axis {axes[0]}" if len(axes) == 1 else "axes (" + ", ".join(str(axis) for axis in axes) + ")"


def wrong_axis_candidates(
    output: str, expected: np.ndarray, got: np.ndarray, case_args: dict[str, Any], upstream: str | None
) -> list[Candidate]:
    """A gradient that is the upstream gradient summed (or averaged) over some axes, taken over others.

    Applies when the expected value is `upstream` summed over a set of axes (a bias, dbeta, db of
    a convolution): the returned value is then checked against sums and means over every other set.
    """
    dout = case_args.get(upstream) if upstream else None
    if not isinstance(dout, np.ndarray) or dout.ndim < 2 or dout.ndim > 5 or got.size == 0:
        return []
    subsets = [axes for size in range(1, dout.ndim) for axes in itertools.combinations(range(dout.ndim), size)]
    right = next(
        (
            axes
            for axes in subsets
            if dout.sum(axis=axes).shape == expected.shape and matches(dout.sum(axis=axes), expected)
        ),
        None,
    )
    if right is None:
        return []
    candidates = []
    for axes in subsets:
        if axes == right:
            continue
        for reduce, verb in ((np.sum, "summed"), (np.mean, "averaged")):
            value = reduce(dout, axis=axes)
            if value.shape != got.shape:
                continue
            candidates.append(
                Candidate(
                    Mistake.BIAS_NOT_SUMMED,
                    f"{output} is {upstream} {verb} over the wrong axes",
                    f"{output} equals {upstream} {verb} over {_axes(axes)} (shape {tuple(value.shape)}); the "
                    f"parameter is shared along {_axes(right)} of {upstream}, the axes its gradient adds up.",
                    value,
                )
            )
    return candidates


def ratio_candidate(output: str, expected: np.ndarray, scale: float, case_args: dict[str, Any]) -> Candidate | None:
    """`got` is `expected` times a / b for two sizes of the case: divided by b where a belongs.

    Not when the factor or its inverse is a whole number: a missing 2 (of a square) is more likely
    than two sizes that happen to differ by 2, and the constant factor is then named as such.
    """
    if any(abs(value - round(value)) <= 1e-9 for value in (scale, 1 / scale)):
        return None
    factors = scale_candidates(case_args)
    for (wrong, wrong_name), (right, right_name) in itertools.permutations(sorted(factors.items()), 2):
        if abs(scale * wrong / right - 1) <= 1e-9:
            return Candidate(
                Mistake.WRONG_DERIVATIVE,
                f"{output} is divided by {wrong} ({wrong_name}) where {right} ({right_name}) belongs",
                f"{output} equals the expected gradient times {right}/{wrong}: the normalization uses the "
                f"wrong size. Check which axis the forward's mean runs over: {wrong_name} is {wrong}, "
                f"{right_name} is {right}.",
                scale * expected,
            )
    return None
