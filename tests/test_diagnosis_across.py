"""Mistakes named across exercises, through the real engine: outputs swapped, softmax backward slips.

The grader knows every output's expected value for a case, so a wrong output that equals another
one's expected value is a swap (or one gradient assigned to another's name), whatever the exercise.
"""

from __future__ import annotations

import pytest

from grader.engine import Engine
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict
from tests.submission_helpers import EXERCISES_DIR, solution

pytestmark = pytest.mark.sandbox


@pytest.mark.parametrize(
    ("slug", "returned", "swapped", "named"),
    [
        ("batchnorm-backward", "return dx, dgamma, dbeta", "return dx, dbeta, dgamma", {"dgamma", "dbeta"}),
        ("attention-backward", "return dq, dk, dv", "return dk, dq, dv", {"dq", "dk"}),
        (
            "multihead-attention-backward",
            "return dx, dw_q, dw_k, dw_v, dw_o",
            "return dx, dw_q, dw_v, dw_k, dw_o",
            {"dw_k", "dw_v"},
        ),
    ],
)
def test_two_gradients_returned_in_each_others_place_are_named(
    engine: Engine, slug: str, returned: str, swapped: str, named: set[str]
) -> None:
    reference = solution(slug)
    assert returned in reference
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / slug), reference.replace(returned, swapped))

    assert result.verdict == Verdict.WRONG_ANSWER
    by_output = {diagnosis.output: diagnosis for diagnosis in result.diagnosis}
    assert set(by_output) == named, [(d.output, d.mistake, d.title) for d in result.diagnosis]
    for output, diagnosis in by_output.items():
        other = (named - {output}).pop()
        assert diagnosis.mistake == "outputs_swapped"
        assert diagnosis.title == f"{output} holds what {other} should be"
        assert "returned in the wrong order" in diagnosis.why
    assert "order of your return statement" in result.feedback


def test_one_gradient_assigned_to_another_is_named_too(engine: Engine) -> None:
    """Not a swap of the return, but the same class: dw_q's value also returned as dw_k."""
    reference = solution("multihead-attention-backward")
    source = reference.replace("return dx, dw_q, dw_k, dw_v, dw_o", "return dx, dw_q, dw_q, dw_v, dw_o")
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / "multihead-attention-backward"), source)

    assert result.verdict == Verdict.WRONG_ANSWER
    assert [(d.output, d.mistake, d.title) for d in result.diagnosis] == [
        ("dw_k", "outputs_swapped", "dw_k holds what dw_q should be")
    ]


def test_a_kinds_own_mistake_model_is_named_before_a_swap(engine: Engine) -> None:
    """dgamma summed without x_hat equals dbeta: the batch-norm model explains why, so it is named."""
    reference = solution("batchnorm-backward")
    source = reference.replace("return dx, dgamma, dbeta", "return dx, dbeta, dbeta")
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / "batchnorm-backward"), source)

    assert [d.output for d in result.diagnosis] == ["dgamma"]
    assert result.diagnosis[0].mistake != "outputs_swapped"


# The softmax backward written three wrong ways, in both attention exercises (their solutions share
# the line `ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))`).
SOFTMAX_LINE = "ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))"


@pytest.mark.parametrize(
    ("written", "title"),
    [
        ("ds = p * (dp - dp.sum(axis=-1, keepdims=True))", "the softmax Jacobian subtracts the plain row sum of dp"),
        ("ds = p * (dp - (dp * p).sum(axis=-2, keepdims=True))", "the softmax Jacobian sums over the wrong axis"),
        ("ds = p * dp", "uses only the diagonal of the softmax Jacobian"),
    ],
)
@pytest.mark.parametrize(
    ("slug", "affected"),
    [("attention-backward", {"dq", "dk"}), ("multihead-attention-backward", {"dx", "dw_q", "dw_k"})],
)
def test_a_softmax_backward_slip_is_named_in_both_attention_exercises(
    engine: Engine, slug: str, affected: set[str], written: str, title: str
) -> None:
    reference = solution(slug)
    assert SOFTMAX_LINE in reference
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / slug), reference.replace(SOFTMAX_LINE, written))

    assert result.verdict == Verdict.WRONG_ANSWER
    named = {diagnosis.output: diagnosis for diagnosis in result.diagnosis}
    assert set(named) == affected, [(d.output, d.title) for d in result.diagnosis]
    for diagnosis in named.values():
        assert diagnosis.mistake == "wrong_derivative"
        assert title in diagnosis.title


DX_LINE = "dx = dq @ w_q.T + dk @ w_k.T + dv @ w_v.T"


@pytest.mark.parametrize(
    ("written", "title"),
    [
        ("dx = dq @ w_q.T + dk @ w_k.T", "dx misses the path through the values"),
        ("dx = dk @ w_k.T + dv @ w_v.T", "dx misses the path through the queries"),
        ("dx = dv @ w_v.T", "dx keeps only the path through the values"),
        ("dx = dq @ w_q.T", "dx keeps only the path through the queries"),
    ],
)
def test_a_path_of_x_left_out_of_multihead_dx_is_named(engine: Engine, written: str, title: str) -> None:
    """x feeds three projections: its gradient adds the three paths (the rule the backprop lesson teaches)."""
    reference = solution("multihead-attention-backward")
    assert DX_LINE in reference
    source = reference.replace(DX_LINE, written)
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / "multihead-attention-backward"), source)

    assert result.verdict == Verdict.WRONG_ANSWER
    assert [(d.output, d.mistake, d.title) for d in result.diagnosis] == [("dx", "missing_chain_rule", title)]


CONV_LOOPS = """\
import numpy as np


def conv2d_backward(dout, x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for i in range(n):
        for k in range(f):
            for r in range(h_out):
                for s in range(w_out):
                    window = x_pad[i, :, r * stride : r * stride + hh, s * stride : s * stride + ww]
                    dw[k] {dw_op} window * dout[i, k, r, s]
                    dx_pad[i, :, r * stride : r * stride + hh, s * stride : s * stride + ww] {dx_op} w[k] * dout[i, k, r, s]
    db = dout.sum(axis=(0, 2, 3))
    return dx_pad[:, :, pad : pad + h, pad : pad + wd], dw, db
"""


@pytest.mark.parametrize(
    ("dx_op", "dw_op", "named"), [("=", "+=", {"dx"}), ("+=", "=", {"dw"}), ("=", "=", {"dx", "dw"})]
)
def test_loops_that_assign_where_they_must_add_are_named(
    engine: Engine, dx_op: str, dw_op: str, named: set[str]
) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES_DIR / "conv2d-backward")
    assert engine.grade(spec, CONV_LOOPS.format(dx_op="+=", dw_op="+=")).verdict == Verdict.ACCEPTED
    result = engine.grade(spec, CONV_LOOPS.format(dx_op=dx_op, dw_op=dw_op))

    assert result.verdict == Verdict.WRONG_ANSWER
    found = {d.output: d for d in result.diagnosis}
    assert set(found) == named, [(d.output, d.mistake, d.title) for d in result.diagnosis]
    for diagnosis in found.values():
        assert diagnosis.mistake == "overwritten_not_added"
        assert "assign (=)" in diagnosis.why


def test_a_max_pool_window_one_short_is_named(engine: Engine) -> None:
    reference = solution("maxpool2d-backward")
    full = "window = x[:, :, top : top + pool, left : left + pool].reshape(n, c, pool * pool)"
    assert full in reference
    short = "window = x[:, :, top : top + pool - 1, left : left + pool - 1].reshape(n, c, (pool - 1) ** 2)"
    source = reference.replace(full, short).replace("np.divmod(winner, pool)", "np.divmod(winner, pool - 1)")
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / "maxpool2d-backward"), source)

    assert result.verdict == Verdict.WRONG_ANSWER
    assert [(d.output, d.mistake, d.title) for d in result.diagnosis] == [
        ("dx", "pool_wrong_position", "dx: each window is one row and one column short")
    ]
