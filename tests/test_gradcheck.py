"""The gradient check: CS231n's relative error (NaN never passes) and sampled central differences."""

from __future__ import annotations

import numpy as np
import pytest

from grader.gradcheck import (
    check_numerically,
    numerical_derivatives,
    rel_error,
    sample_coordinates,
)


def test_identical_arrays_have_zero_relative_error() -> None:
    a = np.array([[1.0, -2.0], [3.0, 0.0]])
    assert rel_error(a, a.copy()) == 0.0


def test_relative_error_is_the_worst_elementwise_ratio() -> None:
    a = np.array([100.0, 1.0])
    b = np.array([100.0, 1.1])
    # |1 - 1.1| / (1 + 1.1): the small entry's error is not hidden by the large entry.
    assert rel_error(a, b) == pytest.approx(0.1 / 2.1)


def test_entries_zero_in_both_arrays_divide_by_the_floor_not_by_zero() -> None:
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.zeros(1), np.array([1e-17])) == pytest.approx(1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_nan_or_infinite_entry_never_passes(bad: float) -> None:
    a = np.array([1.0, 2.0, 3.0])
    b = a.copy()
    b[1] = bad
    assert rel_error(a, b) == float("inf")
    assert not rel_error(a, b) <= 1e6
    assert rel_error(b, b) == float("inf")


def test_finite_values_near_the_float64_limit_have_a_finite_relative_error() -> None:
    """Opposite values near float64's largest: |a - b| and |a| + |b| overflowed to inf, inf / inf
    was NaN, and a NaN error compares as passing in max(0.0, nan) and is no failure for `<=`."""
    largest = np.finfo(np.float64).max
    a = np.array([largest, 1.0])
    b = np.array([-largest, 1.0])
    with np.errstate(all="raise"):
        assert rel_error(a, b) == 1.0
    assert rel_error(np.array([largest]), np.array([largest / 2])) == pytest.approx(1 / 3)


def test_arrays_of_different_shapes_never_pass() -> None:
    assert rel_error(np.ones((2, 3)), np.ones((3, 2))) == float("inf")


def test_scalars_compare_like_one_element_arrays() -> None:
    assert rel_error(2.0, 2.0) == 0.0
    assert rel_error(1.0, -1.0) == pytest.approx(1.0)


def test_central_differences_match_the_analytic_gradient_and_leave_inputs_alone() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    weights = rng.standard_normal((3, 4))
    original = x.copy()

    def function(inputs: dict[str, np.ndarray]) -> float:
        return float(np.sum(np.sin(inputs["x"]) * weights))

    coordinates = [(0, 0), (1, 2), (2, 3)]
    numerical = numerical_derivatives(function, {"x": x}, ("x",), coordinates)
    analytic = [np.cos(x[index]) * weights[index] for index in coordinates]
    assert rel_error(numerical, analytic) < 1e-8
    assert np.array_equal(x, original)


def test_sampling_skips_entries_that_are_tiny_next_to_the_largest() -> None:
    expected = np.array([1.0, 1e-9, 2.0, 0.0, -3.0])
    chosen = sample_coordinates(expected, np.random.default_rng(1), count=10)
    assert sorted(chosen) == [(0,), (2,), (4,)]


def test_sampling_returns_distinct_indices_up_to_the_count() -> None:
    expected = np.arange(1.0, 21.0).reshape(4, 5)
    chosen = sample_coordinates(expected, np.random.default_rng(2), count=6)
    assert len(chosen) == len(set(chosen)) == 6
    assert all(0 <= i < 4 and 0 <= j < 5 for i, j in chosen)


def test_the_numerical_check_flags_a_wrong_gradient_and_passes_a_right_one() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 3))

    def function(inputs: dict[str, np.ndarray]) -> float:
        return float(np.sum(np.tanh(inputs["x"]) * dout))

    right = dout * (1 - np.tanh(x) ** 2)
    wrong = dout * (1 - x**2)
    names = {"dx": "x"}
    good = check_numerically(function, {"x": x}, {"dx": right}, {"dx": right}, names, rng=rng, samples=5)
    bad = check_numerically(function, {"x": x}, {"dx": right}, {"dx": wrong}, names, rng=rng, samples=5)
    assert good[0].rel_error < 1e-7
    assert bad[0].rel_error > 1e-3
    assert len(good[0].to_json()["samples"]) == 5


def test_dict_inputs_are_checked_key_by_key() -> None:
    rng = np.random.default_rng(4)
    params = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 2))}

    def function(inputs: dict[str, dict[str, np.ndarray]]) -> float:
        p = inputs["params"]
        return float(np.sum(p["a"] ** 2) + np.sum(3 * p["b"]))

    grads = {"a": 2 * params["a"], "b": np.full((2, 2), 3.0)}
    comparisons = check_numerically(
        function, {"params": params}, {"grads": grads}, {"grads": grads}, {"grads": "params"}, rng=rng, samples=4
    )
    assert [c.name for c in comparisons] == ["grads['a']", "grads['b']"]
    assert all(c.rel_error < 1e-7 for c in comparisons)
