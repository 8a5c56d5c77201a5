"""Training networks in NumPy, and the check of a learner's gradients: the same code on both sides.

This module imports only NumPy, because the sandbox child loads it too (from a read-only bind mount,
like ``wire``). A network is one SGD step's forward and backward in float64 around the exercise's
layer: ``network(params, batch, backward) -> (loss, {parameter: gradient})``, where
``backward(args, upstream)`` returns the layer's gradients ``{argument: array}`` for one call of the
layer (the arguments without the upstream gradient, and the upstream gradient).

A training run streamed from the child (grader/training.py) runs a network on both sides: the child
to make each call of the learner's function without waiting for the trusted side, the trusted
side on its own parameters with the gradients the child sends back, so every loss it reports is its
own. ``gradients`` decides on both sides, from the same value, whether a returned gradient can be
used: the child stops where the trusted side stops.

The NumPy functions are bound here when the module is imported, before any learner code exists in
the child: learner code that replaces ``numpy.maximum`` or ``numpy.where`` does not reach them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_array = np.array
_asarray = np.asarray
_errstate = np.errstate
_float64 = np.float64
_isfinite = np.isfinite
_maximum = np.maximum
_mean = np.mean
_ndarray = np.ndarray
_where = np.where

# The dtype kinds np.issubdtype(dtype, np.number) accepts: integers, floats, complex, timedelta.
NUMBER_KINDS = "iufcm"

Backward = Callable[[dict[str, Any], Any], dict[str, Any]]
Network = Callable[[dict[str, Any], dict[str, Any], Backward], tuple[float, dict[str, Any]]]


class GradientError(ValueError):
    """A returned gradient that the training run cannot use; the message is learner-safe."""


def linear_relu_linear_mse(
    params: dict[str, Any], batch: dict[str, Any], backward: Backward
) -> tuple[float, dict[str, Any]]:
    """x -> linear(w1, b1) -> ReLU -> linear(w2, b2) -> mean squared error against y; both linears are the layer."""
    before = batch["x"] @ params["w1"] + params["b1"]
    hidden = _maximum(before, 0.0)
    out = hidden @ params["w2"] + params["b2"]
    diff = out - batch["y"]
    second = backward({"x": hidden, "w": params["w2"], "b": params["b2"]}, diff * (2.0 / diff.size))
    # torch.relu's backward: the gradient passes where the input is above 0 (NaN included).
    upstream = _where(before <= 0.0, 0.0, second["x"])
    first = backward({"x": batch["x"], "w": params["w1"], "b": params["b1"]}, upstream)
    grads = {"w1": first["w"], "b1": first["b"], "w2": second["w"], "b2": second["b"]}
    return float(_mean(diff * diff)), grads


NETWORKS: dict[str, Network] = {"linear-relu-linear-mse": linear_relu_linear_mse}


def split_result(names: Sequence[str], result: Any) -> dict[str, Any]:
    """{output name: value} from what the learner returned; ValueError if the count is wrong."""
    if len(names) == 1:
        return {names[0]: result}
    if not isinstance(result, tuple | list) or len(result) != len(names):
        count = len(result) if isinstance(result, tuple | list) else 1
        raise ValueError(f"expected a tuple of {len(names)} values ({', '.join(names)}), got {count}")
    return dict(zip(names, result, strict=True))


def gradients(
    outputs: Sequence[tuple[str, str | None]],
    result: Any,
    layout: Sequence[tuple[str, str | None]],
    shapes: Sequence[tuple[int, ...]],
) -> list[Any]:
    """The gradient of each (argument, dict key) of `layout` in `result`, as new float64 arrays.

    `outputs` are the function's outputs, (name, argument it is the gradient of, or None), in order.
    Raises GradientError when the count is wrong, or a gradient is missing, has another shape than
    its argument (`shapes`), is not a number array or has NaN or infinite entries.
    """
    try:
        returned = split_result([name for name, _ in outputs], result)
    except ValueError as error:
        raise GradientError(str(error)) from None
    by_input = {of: returned[name] for name, of in outputs if of is not None}
    grads = []
    for (name, key), shape in zip(layout, shapes, strict=True):
        value = by_input[name]
        label = name if key is None else f"{name}[{key!r}]"
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise GradientError(f"the gradient of {label} is missing")
            value = value[key]
        array = _asarray(value) if isinstance(value, _ndarray | float | int) else None
        if array is None or array.shape != tuple(shape) or array.dtype.kind not in NUMBER_KINDS:
            raise GradientError(f"the gradient of {label} does not have shape {tuple(shape)}")
        if not _isfinite(array).all():
            raise GradientError(f"the gradient of {label} has NaN or infinite entries")
        grads.append(array.astype(_float64))  # a copy: nothing the call returned is updated in place
    return grads


def layout_of(differentiable: Sequence[str], args: dict[str, Any]) -> tuple[list[tuple[str, str | None]], list[Any]]:
    """(argument, dict key) of every array the layer's gradients are for, and their shapes."""
    layout: list[tuple[str, str | None]] = []
    shapes: list[Any] = []
    for name in differentiable:
        value = args[name]
        for key, leaf in value.items() if isinstance(value, dict) else [(None, value)]:
            layout.append((name, key))
            shapes.append(tuple(_asarray(leaf).shape))
    return layout, shapes


def rebuild(
    layout: Sequence[tuple[str, str | None]], grads: Sequence[Any], upstream: Any, chain: bool
) -> dict[str, Any]:
    """{argument: gradient, or {key: gradient}}; with `chain` (a loss layer), each times the scalar upstream."""
    result: dict[str, Any] = {}
    for (name, key), grad in zip(layout, grads, strict=True):
        value = grad * upstream if chain else grad
        if key is None:
            result[name] = value
        else:
            result.setdefault(name, {})[key] = value
    return result


def train(
    network: Network,
    params: dict[str, Any],
    batch: dict[str, Any],
    backward: Backward,
    *,
    steps: int,
    lr: float,
    on_step: Callable[[int], None] | None = None,
) -> list[float]:
    """`steps` plain SGD steps (``p - lr * grad``, a new array each time) of `network`; the loss before each.

    A diverging run overflows to inf and NaN silently, as it does in torch.
    """
    params = {name: _array(value, dtype=_float64) for name, value in params.items()}
    losses = []
    with _errstate(all="ignore"):
        for step in range(steps):
            if on_step is not None:
                on_step(step)
            loss, grads = network(params, batch, backward)
            losses.append(float(loss))
            for name, grad in grads.items():
                params[name] = params[name] - lr * grad  # a new array: what a call was given stays as it was
    return losses
