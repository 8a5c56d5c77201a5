"""The diagnosis rules name the likely mistake of a wrong gradient, or say they cannot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from grader.diagnosis import Mistake, diagnose_array, worst_elements
from grader.examples import json_number

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


# --- General detectors: on mistakes no kind models, in several exercises and styles -------------

from grader.kinds import KINDS  # noqa: E402


def kind_diagnosis(slug: str, function: Any, *, case_index: int = 0, output: str | None = None, models: bool = False):
    """Diagnose what `function` returns on one of the kind's cases; kind models off unless asked."""
    from grader.engine import Engine  # noqa: F401  (kinds import their dependencies eagerly)

    kind = KINDS[slug]
    case = kind.make_cases(np.random.default_rng(1))[case_index]
    expected = kind.reference(case)
    args = {name: value.copy() if isinstance(value, np.ndarray) else value for name, value in case.args.items()}
    got = kind.split_result(function(*kind.call_args(args)))
    name = output or kind.outputs[0].name
    evaluated: list[Any] = []
    if models:
        for model in [*kind.mistake_models(), *kind.generic_mistake_models()]:
            values = model.compute(case) or {}
            if name in values and (model.outputs is None or name in model.outputs):
                evaluated.append((model.mistake, model.title, model.why, values[name]))
    return diagnose_array(
        output=name,
        expected=expected[name],
        got=got[name],
        case_args=case.args,
        upstream=kind.upstream,
        models=evaluated,
        hints=kind.hints,
        lesson_url=kind.lesson_url(),
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


NEIGHBOUR_DERIVATIVES = [
    ("tanh-backward", lambda dout, x: dout * np.tanh(x) * (1 - np.tanh(x)), "t(1 - t)"),
    ("tanh-backward", lambda dout, x: dout * (1 - x**2), "1 - x^2"),
    ("sigmoid-backward", lambda dout, x: dout * (1 - sigmoid(x) ** 2), "1 - s^2"),
    ("sigmoid-backward", lambda dout, x: np.multiply(dout, x * (1.0 - x)), "x(1 - x)"),
    ("sigmoid-backward", lambda dout, x: dout * (1 - np.tanh(x) ** 2), "1 - tanh(x)^2"),
    ("tanh-backward", lambda dout, x: dout * sigmoid(x) * (1 - sigmoid(x)), "s(1 - s)"),
    ("relu-backward", lambda dout, x: dout * sigmoid(x) * (1 - sigmoid(x)), "s(1 - s)"),
]


@pytest.mark.parametrize(("slug", "function", "named"), NEIGHBOUR_DERIVATIVES)
def test_it_names_the_derivative_of_a_neighbouring_function(slug: str, function: Any, named: str) -> None:
    result = kind_diagnosis(slug, function)
    assert result.mistake == Mistake.WRONG_DERIVATIVE, result.title
    assert named in result.why, result.why
    assert "expected local derivative" in result.why


def relu_boundary_ge(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, dout, 0.0)


def relu_boundary_loop(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = np.zeros_like(dout)
    for index in np.ndindex(x.shape):
        if not x[index] < 0:
            dx[index] = dout[index]
    return dx


@pytest.mark.parametrize("function", [relu_boundary_ge, relu_boundary_loop])
def test_it_names_a_mask_that_includes_its_boundary(function: Any) -> None:
    kind = KINDS["relu-backward"]
    index = next(i for i, c in enumerate(kind.make_cases(np.random.default_rng(1))) if (c.args["x"] == 0).any())
    result = kind_diagnosis("relu-backward", function, case_index=index, models=True)
    assert result.mistake == Mistake.WRONG_MASK, result.title
    assert "exactly 0" in result.title and ">=" in result.why


def linear_dx_float32(dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    dx = dout.astype(np.float32) @ w.T.astype(np.float32)
    return dx, x.T @ dout, dout.sum(axis=0)


def linear_dx_float32_inside(dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    dx = (np.float32(1.0) * dout.astype("f4")).dot(w.astype("f4").T).astype(np.float64)
    return dx, x.T @ dout, dout.sum(axis=0)


def tanh_float32(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    t = np.tanh(x.astype(np.float32))
    return dout * (1 - t * t)


@pytest.mark.parametrize(
    ("slug", "function"),
    [
        ("linear-backward", linear_dx_float32),
        ("linear-backward", linear_dx_float32_inside),
        ("tanh-backward", tanh_float32),
    ],
)
def test_it_names_float32_round_off(slug: str, function: Any) -> None:
    result = kind_diagnosis(slug, function, models=True)
    assert result.mistake == Mistake.PRECISION_LOSS, result.title
    assert "digits" in result.why and "formula looks right" in result.why


def test_a_missing_eps_is_not_mistaken_for_anything_but_lost_digits() -> None:
    rng = np.random.default_rng(3)
    expected = rng.standard_normal((4, 5))
    result = diagnose("dx", expected, expected * (1 + 3e-6 * rng.standard_normal((4, 5))))
    assert result.mistake == Mistake.PRECISION_LOSS
    assert "eps" in result.why


def batchnorm_keepdims(dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> Any:
    mu = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + eps)
    n = x.shape[0]
    dx_hat = dout * gamma
    dx = (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0)) / (n * np.sqrt(var + eps))
    return dx, np.sum(dout * x_hat, axis=0, keepdims=True), np.sum(dout, axis=0, keepdims=True)


@pytest.mark.parametrize("output", ["dgamma", "dbeta"])
def test_a_kept_dimension_is_explained_by_its_shape_and_not_called_unsummed(output: str) -> None:
    result = kind_diagnosis("batchnorm-backward", batchnorm_keepdims, output=output, models=True)
    assert result.mistake != Mistake.BIAS_NOT_SUMMED, result.title
    assert result.title == f"{output} has the wrong shape"
    assert "keepdims=True" in result.why and "your values are right" in result.why


def conv_crop_pad_minus_pad(dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int):
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    kh, kw = w.shape[2:]
    for r in range(dout.shape[2]):
        for s in range(dout.shape[3]):
            window = x_pad[:, :, r * stride : r * stride + kh, s * stride : s * stride + kw]
            dw += np.einsum("nf,nkij->fkij", dout[:, :, r, s], window)
            dx_pad[:, :, r * stride : r * stride + kh, s * stride : s * stride + kw] += np.einsum(
                "nf,fkij->nkij", dout[:, :, r, s], w
            )
    return dx_pad[:, :, pad:-pad, pad:-pad], dw, dout.sum(axis=(0, 2, 3))


def test_an_empty_slice_is_explained() -> None:
    kind = KINDS["conv2d-backward"]
    index = next(i for i, c in enumerate(kind.make_cases(np.random.default_rng(1))) if c.args["pad"] == 0)
    result = kind_diagnosis("conv2d-backward", conv_crop_pad_minus_pad, case_index=index, models=True)
    assert result.title == "dx has the wrong shape"
    assert "empty" in result.why and "p = 0" in result.why


def test_shape_explanations_for_transposed_unreduced_and_padded_results() -> None:
    expected = RNG.standard_normal((3, 5))
    transposed = diagnose("dw", expected, RNG.standard_normal((5, 3)))
    assert "another order" in transposed.why and transposed.mistake == Mistake.UNKNOWN
    unreduced = diagnose("dw", expected, RNG.standard_normal((4, 3, 5)))
    assert "not summed over the batch" in unreduced.why and unreduced.mistake == Mistake.UNKNOWN
    padded = diagnose("dx", RNG.standard_normal((2, 1, 4, 4)), RNG.standard_normal((2, 1, 6, 6)))
    assert "border of 1" in padded.why


def relu_leaky_by_accident(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, dout, 0.1 * dout)


def linear_last_row_skipped(dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    dx = np.zeros_like(x)
    for n in range(x.shape[0] - 1):
        dx[n] = w @ dout[n]
    return dx, x.T @ dout, dout.sum(axis=0)


def linear_bias_plus_one(dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    return dout @ w.T, x.T @ dout, dout.sum(axis=0) + 1.0


def test_unknown_mistakes_are_described_in_words_by_where_they_are() -> None:
    negative = kind_diagnosis("relu-backward", relu_leaky_by_accident)
    assert negative.mistake == Mistake.UNKNOWN
    assert "exactly the entries where x < 0" in negative.why
    assert "0.1 times dout" in negative.why and "expected gradient is 0 there" in negative.why
    last_row = kind_diagnosis("linear-backward", linear_last_row_skipped)
    assert "index" in last_row.why and "the last of" in last_row.why and "is 0 at every one" in last_row.why
    offset = kind_diagnosis("linear-backward", linear_bias_plus_one, output="db")
    assert "same amount, 1" in offset.why


def test_the_example_shows_inputs_expected_got_and_marks_the_differences() -> None:
    from grader.examples import example_of

    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    expected = np.array([[1.0, 0.0], [1.0, 1.0]])
    got = np.array([[1.0, 0.0], [2.0, 1.0]])
    example = example_of("tiny", {"dout": np.ones((2, 2)), "x": x, "pad": 0}, expected, got)
    assert example is not None
    assert example["differs"] == [[False, False], [True, False]]
    assert example["inputs"]["pad"] == 0 and example["inputs"]["x"] == x.tolist()
    result = diagnose("dx", expected, got)
    result.example = example
    shown = dict(result.example_shown)
    assert shown["your dx (* = differs)"].splitlines()[1].strip().startswith("[2*")
    assert "input x" in shown and result.to_json()["example"] == example


# --- What a score means ---------------------------------------------------------------------


def test_the_score_counts_only_correctness_checks_of_a_complete_run() -> None:
    from grader.engine import score_of
    from grader.result import CheckResult
    from grader.verdicts import Verdict

    planned = ["load", "signature", "outputs", "no_inplace", "autograd", "numerical", "edge_cases: big", "training"]
    admitted = [CheckResult("load", True, ""), CheckResult("signature", True, "")]
    crashed = [*admitted, CheckResult("outputs", False, "ZeroDivisionError")]
    slow = [*admitted, CheckResult("outputs", True, ""), CheckResult("no_inplace", False, "too slow")]
    wrong = [*admitted, *(CheckResult(name, name in ("outputs", "no_inplace"), "") for name in planned[2:])]
    assert score_of(Verdict.RUNTIME_ERROR, crashed, planned) == 0.0
    assert score_of(Verdict.MEMORY_LIMIT_EXCEEDED, crashed, planned) == 0.0
    assert score_of(Verdict.FORBIDDEN, admitted[:1], planned) == 0.0
    right_but_slow = score_of(Verdict.TIME_LIMIT_EXCEEDED, slow, planned)
    assert score_of(Verdict.RUNTIME_ERROR, crashed, planned) <= right_but_slow
    assert score_of(Verdict.WRONG_ANSWER, wrong, planned) == round(2 / 6, 4)
    assert score_of(Verdict.WRONG_ANSWER, [*admitted, CheckResult("outputs", False, "")], planned) == 0.0
    assert score_of(Verdict.ACCEPTED, [*admitted, *(CheckResult(n, True, "") for n in planned[2:])], planned) == 1.0


def linear_db_keepdims(dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    return dout @ w.T, x.T @ dout, dout.sum(axis=0, keepdims=True)


def softmax_ce_float32(logits: np.ndarray, y: np.ndarray) -> Any:
    z = logits.astype(np.float32)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = float(-np.log(p[np.arange(n), y]).mean())
    p[np.arange(n), y] -= 1
    return loss, p / n


def mse_float32(pred: np.ndarray, target: np.ndarray) -> Any:
    diff = (pred - target).astype(np.float32)
    return float((diff**2).mean()), 2 * diff / diff.size


@pytest.mark.parametrize(
    ("slug", "function", "output"),
    [("softmax-cross-entropy", softmax_ce_float32, "dlogits"), ("mse-loss", mse_float32, "dpred")],
)
def test_float32_round_off_is_named_in_loss_exercises_too(slug: str, function: Any, output: str) -> None:
    result = kind_diagnosis(slug, function, output=output, models=True)
    assert result.mistake == Mistake.PRECISION_LOSS, result.title


def test_a_kept_dimension_in_a_linear_bias_gradient_is_a_shape_problem() -> None:
    result = kind_diagnosis("linear-backward", linear_db_keepdims, output="db", models=True)
    assert result.mistake != Mistake.BIAS_NOT_SUMMED and "keepdims=True" in result.why
