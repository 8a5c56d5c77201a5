"""The diagnosis rules name the likely mistake of a wrong gradient, or say they cannot."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.diagnosis import Mistake, diagnose_array, json_number, worst_elements

RNG = np.random.default_rng(0)
DOUT = RNG.standard_normal((4, 3))
X = RNG.standard_normal((4, 5))
W = RNG.standard_normal((5, 3))
ARGS = {"dout": DOUT, "x": X, "w": W, "b": RNG.standard_normal(3)}


def diagnose(output: str, expected: Any, got: Any, models: list[Any] | None = None) -> Any:
    return diagnose_array(
        output=output,
        expected=expected,
        got=got,
        case_args=ARGS,
        upstream="dout",
        models=models or [],
        hints={Mistake.TRANSPOSED: "shapes!"},
        lesson_url="/lessons/backpropagation/#mathematical-foundations",
    )


def test_it_names_a_transposed_weight_gradient_of_the_wrong_shape() -> None:
    dw = X.T @ DOUT
    result = diagnose("dw", dw, dw.T.copy())
    assert result.mistake == Mistake.TRANSPOSED
    assert result.title == "dw looks transposed"
    assert result.hint == "shapes!"
    assert result.lesson_url.endswith("#mathematical-foundations")


def test_it_names_a_transposed_square_gradient() -> None:
    square = RNG.standard_normal((4, 4))
    assert diagnose("dx", square, square.T.copy()).mistake == Mistake.TRANSPOSED


def test_it_names_a_sign_flip_and_shows_the_worst_elements() -> None:
    dx = DOUT @ W.T
    result = diagnose("dx", dx, -dx)
    assert result.mistake == Mistake.SIGN_FLIPPED
    assert len(result.worst) == 5
    top = np.unravel_index(np.argmax(np.abs(dx)), dx.shape)
    assert result.worst[0]["index"] == [int(i) for i in top]
    assert result.worst[0]["got"] == -result.worst[0]["expected"]


def test_it_names_a_sum_where_a_mean_belongs_with_the_factor() -> None:
    db = DOUT.sum(axis=0)
    result = diagnose("db", db, db / 4)
    assert result.mistake == Mistake.SCALED_BY_1_OVER_N
    assert "4" in result.title
    result = diagnose("db", db, db * 4)
    assert result.mistake == Mistake.SCALED_BY_N


def test_it_names_a_bias_gradient_that_was_not_summed_over_the_batch() -> None:
    db = DOUT.sum(axis=0)
    assert diagnose("db", db, DOUT.copy()).mistake == Mistake.BIAS_NOT_SUMMED
    assert diagnose("db", db, DOUT[0].copy()).mistake == Mistake.BIAS_NOT_SUMMED


def test_a_matching_mistake_model_wins_over_the_generic_rules() -> None:
    dx = DOUT @ W.T
    local = np.ones_like(DOUT) @ W.T
    models = [(Mistake.MISSING_CHAIN_RULE, "dx lacks dout", "why", local)]
    result = diagnose("dx", dx, local.copy(), models)
    assert result.mistake == Mistake.MISSING_CHAIN_RULE
    assert result.title == "dx lacks dout"


def test_a_constant_factor_that_is_no_size_is_a_wrong_derivative() -> None:
    dx = DOUT @ W.T
    result = diagnose("dx", dx, 0.5 * dx)
    # 0.5 is 1/2 and no dimension of the case is 2.
    assert result.mistake == Mistake.WRONG_DERIVATIVE
    assert "0.5" in result.title


def test_an_unexplained_difference_is_unknown_with_the_worst_entries() -> None:
    dx = DOUT @ W.T
    got = dx.copy()
    got[1, 2] += 10.0
    got[3, 0] -= 1.0
    result = diagnose("dx", dx, got)
    assert result.mistake == Mistake.UNKNOWN
    assert result.worst[0]["index"] == [1, 2]
    assert result.worst[1]["index"] == [3, 0]
    assert len(result.worst) == 2  # only the entries that differ
    assert "2 of 20 entries" in result.why


def test_nan_entries_are_reported_and_travel_as_json_strings() -> None:
    dx = DOUT @ W.T
    got = dx.copy()
    got[0, 0] = np.nan
    result = diagnose("dx", dx, got)
    assert result.mistake == Mistake.UNKNOWN
    assert "NaN" in result.title
    assert result.worst[0] == {"index": [0, 0], "expected": dx[0, 0], "got": "nan"}
    assert json_number(float("-inf")) == "-inf"


def test_a_scalar_off_by_an_arbitrary_factor_is_not_called_scaled() -> None:
    result = diagnose("loss", 1.25, 1.7)
    assert result.mistake == Mistake.UNKNOWN


def test_worst_elements_are_empty_when_shapes_differ() -> None:
    assert worst_elements(np.ones((2, 3)), np.ones((3, 2))) == []
