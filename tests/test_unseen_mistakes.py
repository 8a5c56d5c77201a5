"""Typical mistakes outside the known-wrong variants, each named through the real engine.

Each mistake is the reference solution with one line changed (or a short file where the mistake
changes more than a line): the verdict is wrong_answer, and the diagnosis names the gradients that
are wrong and the class of the mistake: a slip in an activation's derivative, a sum over the wrong
axes, a normalization by the wrong size, one path of batch norm slipped, a causal mask slipped,
a max-pool gradient routed to the wrong element, a label subtracted in every row.
"""

from __future__ import annotations

import pytest

from grader.engine import Engine
from grader.result import GradeResult
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict
from tests.submission_helpers import EXERCISES_DIR, solution

pytestmark = pytest.mark.sandbox

MASK_LINE = "hidden = np.triu(np.ones((t_q, t_k), dtype=bool), k=1)"
BN_DX = "x_hat * (dx_hat * x_hat).sum(axis=0))"

# (slug, line of the reference, what it becomes, {output: (mistake, words of the title)})
ONE_LINE: list[tuple[str, str, str, dict[str, tuple[str, str]]]] = [
    ("relu-backward", "return dout * (x > 0)", "return dout * np.sign(x)", {"dx": ("wrong_derivative", "sign(x)")}),
    (
        "relu-backward",
        "return dout * (x > 0)",
        "return np.maximum(dout, 0) * (x > 0)",
        {"dx": ("wrong_mask", "masked where dout > 0 as well as where x > 0")},
    ),
    (
        "sigmoid-backward",
        "return dout * s * (1.0 - s)",
        "return dout * s * (1.0 + s)",
        {"dx": ("wrong_derivative", "s * (1 + s)")},
    ),
    (
        "sigmoid-backward",
        "return dout * s * (1.0 - s)",
        "return dout * (1.0 - s) ** 2",
        {"dx": ("wrong_derivative", "(1 - s)**2")},
    ),
    (
        "tanh-backward",
        "return dout * (1.0 - t**2)",
        "return dout * (1.0 + t**2)",
        {"dx": ("wrong_derivative", "1 + t**2")},
    ),
    (
        "tanh-backward",
        "return dout * (1.0 - t**2)",
        "return dout / np.cosh(x)",
        {"dx": ("wrong_derivative", "1 / cosh(x)")},
    ),
    (
        "tanh-backward",
        "return dout * (1.0 - t**2)",
        "return dout * (1.0 - np.tanh(x**2))",
        {"dx": ("wrong_derivative", "1 - tanh(x**2)")},
    ),
    (
        "mse-loss",
        "loss = float(np.mean(diff**2))",
        "loss = float(np.sqrt(np.mean(diff**2)))",
        {"loss": ("wrong_derivative", "root of the mean squared error")},
    ),
    (
        "mse-loss",
        "dpred = 2.0 * diff / diff.size",
        "dpred = 2.0 * np.sign(diff) / diff.size",
        {"dpred": ("wrong_derivative", "gradient of the absolute error")},
    ),
    (
        "mse-loss",
        "dpred = 2.0 * diff / diff.size",
        "dpred = 2.0 * (pred + target) / diff.size",
        {"dpred": ("wrong_derivative", "pred + target")},
    ),
    (
        "softmax-cross-entropy",
        "dlogits[rows, y] -= 1.0",
        "dlogits[:, y] -= 1.0",
        {"dlogits": ("wrong_derivative", "subtracted at the label columns of every row")},
    ),
    (
        "softmax-cross-entropy",
        "return loss, dlogits / n",
        "return loss, dlogits / logits.shape[1]",
        {"dlogits": ("wrong_derivative", "(logits.shape[1]) where")},
    ),
    (
        "linear-backward",
        "db = dout.sum(axis=0)",
        "db = dout.sum(axis=1)",
        {"db": ("bias_not_summed", "summed over the wrong axes")},
    ),
    (
        "conv2d-backward",
        "db = dout.sum(axis=(0, 2, 3))",
        "db = dout.sum(axis=(0, 2))",
        {"db": ("bias_not_summed", "summed over the wrong axes")},
    ),
    (
        "batchnorm-backward",
        "dgamma = (dout * x_hat).sum(axis=0)",
        "dgamma = (dout * x).sum(axis=0)",
        {"dgamma": ("wrong_derivative", "dgamma uses x instead of x_hat")},
    ),
    (
        "batchnorm-backward",
        "dx_hat = dout * gamma",
        "dx_hat = dout",
        {"dx": ("wrong_derivative", "missing the factor gamma")},
    ),
    (
        "batchnorm-backward",
        f"- {BN_DX}",
        f"+ {BN_DX}",
        {"dx": ("bn_missing_mean_var_terms", "the variance term has the wrong sign")},
    ),
    (
        "batchnorm-backward",
        "- dx_hat.sum(axis=0) -",
        "+ dx_hat.sum(axis=0) -",
        {"dx": ("bn_missing_mean_var_terms", "the mean term has the wrong sign")},
    ),
    (
        "attention-backward",
        MASK_LINE,
        MASK_LINE.replace("np.triu", "np.tril").replace("k=1", "k=-1"),
        {output: ("wrong_mask", "hides the past instead of the future") for output in ("dq", "dk", "dv")},
    ),
    (
        "maxpool2d-backward",
        "winner = window.argmax(axis=2)",
        "winner = window.argmin(axis=2)",
        {"dx": ("pool_wrong_position", "routed to the minimum")},
    ),
    (
        "simple-nn",
        "d_z = d_h * (z > 0)",
        "d_z = d_h * h",
        {f"grads['fc1.{name}']": ("wrong_derivative", "relu(z) instead of its slope") for name in ("weight", "bias")},
    ),
    (
        "simple-nn",
        '"fc2.weight": d_out.T @ h',
        '"fc2.weight": d_out.T @ z',
        {"grads['fc2.weight']": ("wrong_derivative", "pre-activation z instead of h")},
    ),
]


def _assert_named(result: GradeResult, named: dict[str, tuple[str, str]]) -> None:
    assert result.verdict == Verdict.WRONG_ANSWER
    found = {d.output: (str(d.mistake), d.title) for d in result.diagnosis}
    assert set(found) == set(named), found
    for output, (mistake, words) in named.items():
        assert found[output][0] == mistake, (output, found[output])
        assert words in found[output][1], (output, found[output])


@pytest.mark.parametrize(("slug", "line", "written", "named"), ONE_LINE, ids=lambda v: v if isinstance(v, str) else "")
def test_a_one_line_mistake_is_named(
    engine: Engine, slug: str, line: str, written: str, named: dict[str, tuple[str, str]]
) -> None:
    reference = solution(slug)
    assert reference.count(line) == 1, line
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / slug), reference.replace(line, written))
    _assert_named(result, named)


# Mistakes that take more than one line: (slug, source, {output: (mistake, words of the title)}).
WHOLE: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "log of an underflowed softmax": (
        "softmax-cross-entropy",
        """\
import numpy as np
def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    g = p.copy()
    g[np.arange(n), y] -= 1
    return loss, g / n
""",
        {"loss": ("softmax_overflow", "the log of a probability that underflowed to 0")},
    ),
    "softmax over the batch axis": (
        "softmax-cross-entropy",
        """\
import numpy as np
def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    loss = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(n), y])
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    p = e / e.sum(axis=0, keepdims=True)
    p[np.arange(n), y] -= 1
    return loss, p / n
""",
        {"dlogits": ("wrong_derivative", "softmax is taken over the batch axis")},
    ),
    "variance divided by N - 1 in one place": (
        "batchnorm-backward",
        """\
import numpy as np
def batchnorm_backward(dout, x, gamma, beta, eps):
    n = x.shape[0]
    xc = x - x.mean(0)
    std = np.sqrt(x.var(0) + eps)
    dxhat = dout * gamma
    dvar = np.sum(dxhat * xc, 0) * -0.5 * std ** -3
    dmu = -np.sum(dxhat / std, 0) + dvar * np.mean(-2 * xc, 0)
    dx = dxhat / std + dvar * 2 * xc / (n - 1) + dmu / n
    return dx, np.sum(dout * xc / std, 0), dout.sum(0)
""",
        {"dx": ("unbiased_variance", "the variance term is divided by N - 1")},
    ),
    "mask applied after the softmax": (
        "attention-backward",
        """\
import numpy as np
def attention_backward(dout, q, k, v, causal):
    scale = 1.0 / np.sqrt(q.shape[-1])
    s = q @ k.transpose(0, 2, 1) * scale
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    if causal:
        p = p * np.tril(np.ones(s.shape[1:]))
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return ds @ k * scale, ds.transpose(0, 2, 1) @ q * scale, p.transpose(0, 2, 1) @ dout
""",
        {output: ("wrong_mask", "applied after the softmax") for output in ("dq", "dk", "dv")},
    ),
    "mask hiding the diagonal": (
        "attention-backward",
        solution("attention-backward")
        .replace(MASK_LINE, MASK_LINE.replace("k=1", "k=0"))
        .replace("np.where(hidden, -np.inf, scores)", "np.where(hidden, -1e9, scores)"),
        {output: ("wrong_mask", "also hides the diagonal") for output in ("dq", "dk", "dv")},
    ),
    "max-pool corner without the stride": (
        "maxpool2d-backward",
        """\
import numpy as np
def maxpool2d_backward(dout, x, pool, stride):
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = x[n, c, i * stride:i * stride + pool, j * stride:j * stride + pool]
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, i + r, j + q] += dout[n, c, i, j]
    return dx
""",
        {"dx": ("pool_wrong_position", "corner is placed without the stride")},
    ),
}


@pytest.mark.parametrize("mistake", list(WHOLE))
def test_a_mistake_written_out_is_named(engine: Engine, mistake: str) -> None:
    slug, source, named = WHOLE[mistake]
    _assert_named(engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / slug), source), named)


def test_the_large_logit_case_has_a_true_class_far_below_its_row_maximum() -> None:
    """Without it, log(softmax) passes whenever every label happens to be its row's maximum."""
    import numpy as np

    from grader.kinds import get_kind

    for seed in range(20):
        case = next(c for c in get_kind("softmax-cross-entropy").make_cases(np.random.default_rng(seed)) if c.edge)
        logits, y = case.args["logits"], case.args["y"]
        gaps = logits.max(axis=1) - logits[np.arange(len(y)), y]
        assert gaps.max() >= 800, (seed, gaps)
