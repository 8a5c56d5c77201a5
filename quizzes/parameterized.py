"""Trusted generators for parameterized quiz questions.

A question in `content/quizzes/*.yaml` names a generator (`generator: linear_backward_dw`);
the YAML never carries code. A generator takes a NumPy random generator seeded
server-side for one learner, question and attempt, and returns a `Variant`: the
numbers shown in the prompt (as Markdown/TeX snippets filling the prompt's
`{{name}}` slots), the raw input arrays (so tests can recompute the answer
independently), the expected answer and the tolerance stated to the learner.

Numbers are small integers or one-decimal values so the arithmetic can be done by
hand, and inputs stay away from kinks (ReLU at 0, max-pool ties).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from quizzes.grading import Tolerance, format_number


@dataclass(frozen=True)
class Variant:
    """One learner's version of a parameterized question."""

    values: dict[str, str]
    answer: np.ndarray
    tolerance: Tolerance
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def answer_shape(self) -> tuple[int, ...]:
        return tuple(self.answer.shape)


Generator = Callable[[np.random.Generator], Variant]
GENERATORS: dict[str, Generator] = {}


def generator(function: Generator) -> Generator:
    """Register a generator under its function name (the name YAML files refer to)."""
    GENERATORS[function.__name__] = function
    return function


def variant_for(name: str, seed: int) -> Variant:
    """Build the variant of generator `name` for `seed`; raises KeyError for an unknown name."""
    return GENERATORS[name](np.random.default_rng(seed))


# --- Formatting -------------------------------------------------------------------


def tex(value: float | np.ndarray) -> str:
    """TeX for a scalar, a column-free vector (as a row) or a matrix, to sit inside `$...$`."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return format_number(float(array))
    rows = [array] if array.ndim == 1 else list(array)
    body = r" \\ ".join(" & ".join(format_number(float(v)) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _ints(
    rng: np.random.Generator, low: int, high: int, shape: tuple[int, ...], *, nonzero: bool = False
) -> np.ndarray:
    values = rng.integers(low, high + 1, size=shape).astype(float)
    if nonzero:
        while (values == 0).any():
            values[values == 0] = rng.integers(low, high + 1, size=int((values == 0).sum()))
    return values


def _tenths(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Values with one decimal in [low, high]."""
    return np.round(rng.integers(round(low * 10), round(high * 10) + 1, size=shape) / 10.0, 1)


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# --- Backpropagation -------------------------------------------------------------


def _scalar_network(rng: np.random.Generator) -> dict[str, float]:
    """A one-hidden-unit network whose ReLU is active (pre-activation >= 1) and whose error is not zero.

    An inactive ReLU would make both asked gradients 0 for half of the variants,
    which a learner could guess without understanding.
    """
    while True:
        x, w1, w2 = (float(v) for v in _ints(rng, -3, 3, (3,), nonzero=True))
        b1, b2, y = (float(v) for v in _ints(rng, -2, 2, (3,)))
        z = w1 * x + b1
        h = max(z, 0.0)
        y_hat = w2 * h + b2
        if z >= 1 and y_hat != y:
            break
    return {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2, "y": y, "z": z, "h": h, "y_hat": y_hat}


def _scalar_network_values(n: dict[str, float]) -> dict[str, str]:
    return {name: format_number(n[name]) for name in ("x", "w1", "b1", "w2", "b2", "y")}


@generator
def scalar_network_dw2(rng: np.random.Generator) -> Variant:
    """dL/dw2 for h = relu(w1 x + b1), y_hat = w2 h + b2, L = (y_hat - y)^2."""
    n = _scalar_network(rng)
    answer = 2 * (n["y_hat"] - n["y"]) * n["h"]
    return Variant(
        values=_scalar_network_values(n),
        answer=np.asarray(answer),
        tolerance=Tolerance(),
        inputs={k: np.asarray(v) for k, v in n.items()},
    )


@generator
def scalar_network_dw1(rng: np.random.Generator) -> Variant:
    """dL/dw1 for the same network: the error flows back through w2 and the ReLU gate."""
    n = _scalar_network(rng)
    gate = 1.0 if n["z"] > 0 else 0.0
    answer = 2 * (n["y_hat"] - n["y"]) * n["w2"] * gate * n["x"]
    return Variant(
        values=_scalar_network_values(n),
        answer=np.asarray(answer),
        tolerance=Tolerance(),
        inputs={k: np.asarray(v) for k, v in n.items()},
    )


@generator
def linear_backward_dw(rng: np.random.Generator) -> Variant:
    """dw = x^T dout for out = x @ w + b with x (2, 3) and dout (2, 2)."""
    x = _ints(rng, -3, 3, (2, 3))
    dout = _ints(rng, -2, 2, (2, 2), nonzero=True)
    w = _ints(rng, -2, 2, (3, 2))
    return Variant(
        values={"x": tex(x), "dout": tex(dout)},
        answer=x.T @ dout,
        tolerance=Tolerance(),
        inputs={"x": x, "dout": dout, "w": w},
    )


@generator
def mse_dpred(rng: np.random.Generator) -> Variant:
    """dpred of mean((pred - target)^2) over 4 elements: 2 (pred - target) / 4."""
    pred = _tenths(rng, -2, 2, (4,))
    target = _tenths(rng, -2, 2, (4,))
    return Variant(
        values={"pred": tex(pred), "target": tex(target)},
        answer=2 * (pred - target) / pred.size,
        tolerance=Tolerance(absolute=1e-3),
        inputs={"pred": pred, "target": target},
    )


# --- Activation functions -----------------------------------------------------------


@generator
def sigmoid_local_gradient(rng: np.random.Generator) -> Variant:
    """sigma'(x) = sigma(x) (1 - sigma(x)) at a one-decimal x in [-3, 3]."""
    x = float(_tenths(rng, -3, 3))
    s = 1 / (1 + math.exp(-x))
    return Variant(
        values={"x": format_number(x)},
        answer=np.asarray(s * (1 - s)),
        tolerance=Tolerance(absolute=1e-3, relative=0.01),
        inputs={"x": np.asarray(x)},
    )


@generator
def tanh_backward_vector(rng: np.random.Generator) -> Variant:
    """dx = dout * (1 - tanh(x)^2) for three elements."""
    x = _tenths(rng, -2, 2, (3,))
    dout = _ints(rng, -3, 3, (3,), nonzero=True)
    return Variant(
        values={"x": tex(x), "dout": tex(dout)},
        answer=dout * (1 - np.tanh(x) ** 2),
        tolerance=Tolerance(absolute=0.01),
        inputs={"x": x, "dout": dout},
    )


@generator
def relu_backward_vector(rng: np.random.Generator) -> Variant:
    """dx = dout * [x > 0] for five elements, none of them at the kink."""
    x = _tenths(rng, -2, 2, (5,))
    x[x == 0] = 0.5
    dout = _ints(rng, -4, 4, (5,), nonzero=True)
    return Variant(
        values={"x": tex(x), "dout": tex(dout)},
        answer=dout * (x > 0),
        tolerance=Tolerance(),
        inputs={"x": x, "dout": dout},
    )


@generator
def softmax_cross_entropy_dlogits(rng: np.random.Generator) -> Variant:
    """dlogits = softmax(logits) - onehot(y) for one sample with three classes."""
    logits = _ints(rng, -2, 2, (3,))
    label = int(rng.integers(0, 3))
    onehot = np.eye(3)[label]
    return Variant(
        values={"logits": tex(logits), "y": str(label)},
        answer=_softmax(logits) - onehot,
        tolerance=Tolerance(absolute=0.01),
        inputs={"logits": logits, "y": np.asarray(label)},
    )


# --- Batch normalization ------------------------------------------------------------

BATCHNORM_EPS = 1e-5


@generator
def batchnorm_forward_output(rng: np.random.Generator) -> Variant:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta for one feature over a batch of 4 (biased variance)."""
    while True:
        x = _ints(rng, -4, 4, (4,))
        if x.std() > 0:
            break
    gamma = float(_ints(rng, 1, 3, ()))
    beta = float(_ints(rng, -2, 2, ()))
    x_hat = (x - x.mean()) / np.sqrt(x.var() + BATCHNORM_EPS)
    return Variant(
        values={"x": tex(x), "gamma": format_number(gamma), "beta": format_number(beta)},
        answer=gamma * x_hat + beta,
        tolerance=Tolerance(absolute=0.01),
        inputs={"x": x, "gamma": np.asarray(gamma), "beta": np.asarray(beta)},
    )


@generator
def batchnorm_dgamma_dbeta(rng: np.random.Generator) -> Variant:
    """Row 1: dgamma = sum_n dout * x_hat; row 2: dbeta = sum_n dout; x (4, 2)."""
    while True:
        x = _ints(rng, -3, 3, (4, 2))
        if (x.std(axis=0) > 0).all():
            break
    dout = _ints(rng, -2, 2, (4, 2))
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + BATCHNORM_EPS)
    answer = np.stack([(dout * x_hat).sum(axis=0), dout.sum(axis=0)])
    return Variant(
        values={"x": tex(x), "dout": tex(dout)},
        answer=answer,
        tolerance=Tolerance(absolute=0.01),
        inputs={"x": x, "dout": dout},
    )


# --- Convolutional networks ---------------------------------------------------------


@generator
def conv_output_shape(rng: np.random.Generator) -> Variant:
    """(F, H_out, W_out) of a conv layer: H_out = floor((H + 2 pad - k) / stride) + 1."""
    channels = int(rng.choice([1, 3, 16]))
    size = int(rng.choice([7, 8, 28, 32, 33]))
    filters = int(rng.choice([4, 8, 32, 64]))
    kernel = int(rng.choice([1, 3, 5]))
    stride = int(rng.choice([1, 2]))
    pad = int(rng.integers(0, kernel // 2 + 1))
    out = (size + 2 * pad - kernel) // stride + 1
    return Variant(
        values={
            "channels": str(channels),
            "size": str(size),
            "filters": str(filters),
            "kernel": str(kernel),
            "stride": str(stride),
            "pad": str(pad),
        },
        answer=np.array([filters, out, out], dtype=float),
        tolerance=Tolerance(),
        inputs={
            "channels": np.asarray(channels),
            "size": np.asarray(size),
            "filters": np.asarray(filters),
            "kernel": np.asarray(kernel),
            "stride": np.asarray(stride),
            "pad": np.asarray(pad),
        },
    )


@generator
def conv2d_valid_output(rng: np.random.Generator) -> Variant:
    """Cross-correlation of a 3x3 input with a 2x2 kernel plus bias, stride 1, no padding."""
    x = _ints(rng, -2, 3, (3, 3))
    w = _ints(rng, -1, 2, (2, 2))
    b = float(_ints(rng, -1, 1, ()))
    out = np.array([[(x[i : i + 2, j : j + 2] * w).sum() + b for j in range(2)] for i in range(2)])
    return Variant(
        values={"x": tex(x), "w": tex(w), "b": format_number(b)},
        answer=out,
        tolerance=Tolerance(),
        inputs={"x": x, "w": w, "b": np.asarray(b)},
    )


@generator
def maxpool_backward(rng: np.random.Generator) -> Variant:
    """dx of 2x2 max pooling with stride 2 on a 4x4 input without ties."""
    x = rng.permutation(16).reshape(4, 4).astype(float) - 5
    dout = _ints(rng, 1, 5, (2, 2))
    dx = np.zeros_like(x)
    for i in range(2):
        for j in range(2):
            window = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            r, c = np.unravel_index(int(window.argmax()), window.shape)
            dx[2 * i + r, 2 * j + c] = dout[i, j]
    return Variant(
        values={"x": tex(x), "dout": tex(dout)},
        answer=dx,
        tolerance=Tolerance(),
        inputs={"x": x, "dout": dout},
    )


@generator
def conv_parameter_count(rng: np.random.Generator) -> Variant:
    """Learnable parameters of Conv2d(C_in, C_out, k) with bias: C_out * (C_in * k * k + 1)."""
    channels_in = int(rng.choice([1, 3, 8, 16, 64]))
    channels_out = int(rng.choice([8, 16, 32, 128]))
    kernel = int(rng.choice([1, 3, 5, 7]))
    return Variant(
        values={"channels_in": str(channels_in), "channels_out": str(channels_out), "kernel": str(kernel)},
        answer=np.asarray(float(channels_out * (channels_in * kernel * kernel + 1))),
        tolerance=Tolerance(),
        inputs={
            "channels_in": np.asarray(channels_in),
            "channels_out": np.asarray(channels_out),
            "kernel": np.asarray(kernel),
        },
    )


# --- Attention ------------------------------------------------------------------------


@generator
def attention_weights(rng: np.random.Generator) -> Variant:
    """softmax(k q / sqrt(d)) for one query q (d = 2) over three keys."""
    q = _ints(rng, -2, 2, (2,), nonzero=True)
    k = _ints(rng, -2, 2, (3, 2))
    return Variant(
        values={"q": tex(q), "k": tex(k)},
        answer=_softmax(k @ q / math.sqrt(2)),
        tolerance=Tolerance(absolute=0.01),
        inputs={"q": q, "k": k},
    )


@generator
def attention_dv(rng: np.random.Generator) -> Variant:
    """dv = A^T dout with A = softmax(q k^T / sqrt(d)); q (2, 2), k (3, 2), dout (2, 2)."""
    q = _ints(rng, -1, 1, (2, 2))
    k = _ints(rng, -1, 1, (3, 2))
    v = _ints(rng, -2, 2, (3, 2))
    dout = _ints(rng, -2, 2, (2, 2), nonzero=True)
    weights = _softmax(q @ k.T / math.sqrt(2))
    return Variant(
        values={"q": tex(q), "k": tex(k), "v": tex(v), "dout": tex(dout)},
        answer=weights.T @ dout,
        tolerance=Tolerance(absolute=0.01),
        inputs={"q": q, "k": k, "v": v, "dout": dout},
    )
