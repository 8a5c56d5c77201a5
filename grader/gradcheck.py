"""Gradient checks: the relative error, and central differences on sampled coordinates.

Relative error (CS231n's `rel_error`), for two arrays `a` and `b` of the same shape:

    rel_error(a, b) = max over elements i of  |a_i - b_i| / max(1e-8, |a_i| + |b_i|)

It is elementwise, so a small gradient entry that is wrong is not hidden by a large one
elsewhere; the 1e-8 floor keeps entries that are zero in both from dividing by zero.
It is 0.0 for two empty arrays, and +inf when the shapes differ or when either array
holds a NaN or an infinity anywhere: a NaN never passes (a naive
`not (abs(a - b) > tol).any()` would let it through).

The numerical gradient is the central difference in float64 with step h = 1e-6,

    dL/dx_i  ~  (L(x + h e_i) - L(x - h e_i)) / (2h),

where L is the kind's scalar function (sum(forward * dout), or the loss). As CS231n's
`grad_check_sparse`, it is evaluated at a few sampled coordinates of each array, not
all of them: each coordinate costs two forward passes. Sampling skips the entries
whose expected gradient is tiny next to the array's largest (|g_i| < 1e-3 max|g|)
when there are others: there the difference quotient's round-off (about
1e-16 |L| / h) is not small next to the gradient itself, and the autograd check covers
every entry anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

STEP = 1e-6
DENOMINATOR_FLOOR = 1e-8
TINY_FRACTION = 1e-3


def rel_error(a: Any, b: Any) -> float:
    """max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|); +inf on a shape mismatch or any non-finite value."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    # Both halved (exact for float64 down to the subnormals): the difference and the sum of two
    # finite values near float64's largest overflowed to inf, and inf / inf is NaN, which
    # Python's max() and `<=` let through as if it passed.
    half_a, half_b = 0.5 * a, 0.5 * b
    errors = np.abs(half_a - half_b) / np.maximum(0.5 * DENOMINATOR_FLOOR, np.abs(half_a) + np.abs(half_b))
    return float(errors.max())


def flat_arrays(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(display name, leaf) pairs of an output: a dict output `grads` gives `grads['fc1.weight']`..."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flat_arrays(f"{name}[{key!r}]", item)
    else:
        yield name, value


def sample_coordinates(expected: np.ndarray, rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
    """Up to `count` distinct indices of `expected`, avoiding its tiny entries when others exist."""
    if expected.size == 0:
        return []
    magnitude = np.abs(expected).ravel()
    candidates = np.flatnonzero(magnitude >= TINY_FRACTION * magnitude.max())
    if candidates.size == 0:
        candidates = np.arange(expected.size)
    chosen = rng.choice(candidates, size=min(count, candidates.size), replace=False)
    return [tuple(int(i) for i in np.unravel_index(int(flat), expected.shape)) for flat in sorted(chosen)]


@dataclass
class NumericalComparison:
    """Central differences against the learner's gradient at the sampled coordinates of one array."""

    name: str
    coordinates: list[tuple[int, ...]]
    numerical: list[float]
    analytic: list[float]

    @property
    def rel_error(self) -> float:
        return rel_error(self.numerical, self.analytic)

    def to_json(self) -> dict[str, Any]:
        return {
            "array": self.name,
            "rel_error": self.rel_error,
            "samples": [
                {"index": list(index), "numerical": num, "analytic": ana}
                for index, num, ana in zip(self.coordinates, self.numerical, self.analytic, strict=True)
            ],
        }


def numerical_derivatives(
    function: Callable[[dict[str, Any]], float],
    inputs: dict[str, Any],
    path: tuple[str, ...],
    coordinates: list[tuple[int, ...]],
    *,
    step: float = STEP,
) -> list[float]:
    """Central differences of `function(inputs)` w.r.t. the array at `path` (keys into nested dicts).

    `inputs` is copied once; each coordinate is nudged by +-step and restored, so the
    caller's arrays are never changed.
    """
    working = _copy(inputs)
    target = working
    for key in path[:-1]:
        target = target[key]
    array = target[path[-1]]
    derivatives = []
    for index in coordinates:
        original = array[index]
        array[index] = original + step
        plus = function(working)
        array[index] = original - step
        minus = function(working)
        array[index] = original
        derivatives.append((plus - minus) / (2 * step))
    return derivatives


@dataclass
class CentralDifferences:
    """Central differences of one gradient array at its sampled coordinates: what the learner's values are held to."""

    output: str
    key: str | None  # the array's key in a dict output (one level deep), or None
    name: str  # as shown: `dw`, or `grads['fc1.weight']`
    coordinates: list[tuple[int, ...]]
    numerical: list[float]


def central_differences(
    function: Callable[[dict[str, Any]], float],
    inputs: dict[str, Any],
    expected: dict[str, Any],
    names: dict[str, str],
    *,
    rng: np.random.Generator,
    samples: int,
    step: float = STEP,
) -> list[CentralDifferences]:
    """Sample `samples` coordinates per gradient array and take central differences of `function` there.

    `names` maps each output name to the input it is the gradient of; `expected` (the
    autograd values) only guides which coordinates are sampled. Dict inputs are walked
    leaf by leaf. Nothing here depends on the learner's values: they are compared after.
    """
    differences = []
    for output, of in names.items():
        for key, display, expected_leaf in _leaves_of(output, expected[output]):
            coordinates = sample_coordinates(np.asarray(expected_leaf, dtype=np.float64), rng, samples)
            path = (of,) if key is None else (of, key)
            numerical = numerical_derivatives(function, inputs, path, coordinates, step=step)
            differences.append(CentralDifferences(output, key, display, coordinates, numerical))
    return differences


def compare_numerically(differences: list[CentralDifferences], got: dict[str, Any]) -> list[NumericalComparison]:
    """The learner's gradients `got` at the sampled coordinates, against the central differences there."""
    comparisons = []
    for difference in differences:
        leaf = got[difference.output] if difference.key is None else got[difference.output][difference.key]
        array = np.asarray(leaf, dtype=np.float64)
        analytic = [float(array[index]) for index in difference.coordinates]
        comparisons.append(NumericalComparison(difference.name, difference.coordinates, difference.numerical, analytic))
    return comparisons


def check_numerically(
    function: Callable[[dict[str, Any]], float],
    inputs: dict[str, Any],
    expected: dict[str, Any],
    got: dict[str, Any],
    names: dict[str, str],
    *,
    rng: np.random.Generator,
    samples: int,
    step: float = STEP,
) -> list[NumericalComparison]:
    """Compare the learner's gradients `got` with central differences at `samples` coordinates per array."""
    differences = central_differences(function, inputs, expected, names, rng=rng, samples=samples, step=step)
    return compare_numerically(differences, got)


def _leaves_of(output: str, expected: Any) -> Iterator[tuple[str | None, str, Any]]:
    """(dict key or None, display name, expected array) per array; dict outputs (one level deep) per key."""
    if isinstance(expected, dict):
        for key in expected:
            yield key, f"{output}[{key!r}]", expected[key]
    else:
        yield None, output, expected


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.astype(np.float64, copy=True)
    return value
