"""relu-backward, sigmoid-backward, tanh-backward: `<name>_backward(dout, x) -> dx` (elementwise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

# Inputs stay this far from ReLU's kink at 0, so central differences (h = 1e-6) never straddle it.
KINK_MARGIN = 0.05


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    values = rng.standard_normal(shape) * scale
    return np.where(np.abs(values) < KINK_MARGIN, np.sign(values + 1e-300) * (KINK_MARGIN + np.abs(values)), values)


class ElementwiseActivation(Kind):
    """An elementwise activation f: dx = dout * f'(x). Subclasses give the forward and their mistakes."""

    arg_names = ("dout", "x")
    outputs = (Output("dx", of="x"),)
    lesson_slug = "activation-functions"
    lesson_section = "mathematical-foundations"
    # Magnitude of the edge case's inputs (saturated units).
    edge_scale: float = 12.0

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        shapes = [((4, 5), False, 1.0), ((3, 7), False, 2.0), ((1, 6), True, 1.0), ((3, 4, 5), True, self.edge_scale)]
        cases = []
        for shape, edge, scale in shapes:
            label = f"x of shape {shape}" + (f", entries up to about {3 * scale:g} in magnitude" if scale > 1 else "")
            cases.append(
                Case(
                    label=label,
                    args={"dout": rng.standard_normal(shape), "x": away_from_zero(rng, shape, scale)},
                    edge=edge,
                )
            )
        return cases

    def derivative_models(self) -> list[tuple[Mistake, str, str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
        """(mistake, title, why, dx(dout, x)) for the kind's typical wrong derivatives."""
        return []

    def mistake_models(self) -> list[MistakeModel]:
        models = []
        for mistake, title, why, formula in self.derivative_models():

            def compute(
                case: Case, formula: Callable[[np.ndarray, np.ndarray], np.ndarray] = formula
            ) -> dict[str, Any]:
                return {"dx": formula(case.args["dout"], case.args["x"])}

            models.append(MistakeModel(mistake=mistake, title=title, why=why, compute=compute))
        return models

    def training(self) -> TrainingSetup:
        d, h, o, n = 4, 8, 3, 16

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {
                "w1": rng.standard_normal((d, h)) / np.sqrt(d),
                "b1": rng.standard_normal(h) * 0.1,
                "w2": rng.standard_normal((h, o)) / np.sqrt(h),
                "b2": np.zeros(o),
            }

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, d))
            return {"x": x, "y": np.sin(x @ rng.standard_normal((d, o)))}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            hidden = layer(x=batch["x"] @ params["w1"] + params["b1"])
            out = hidden @ params["w2"] + params["b2"]
            return torch.mean((out - batch["y"]) ** 2)

        return TrainingSetup(
            steps=25,
            lr=0.2,
            init=init,
            data=data,
            loss=loss,
            description=f"x (16, 4) -> linear(4, 8) -> {self.function_name.removesuffix('_backward')} "
            "with your backward -> linear(8, 3) -> MSE",
        )


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _slips(
    value: str, function: Callable[[np.ndarray], np.ndarray], slips: list[tuple[str, str, Any]]
) -> list[tuple[Mistake, str, str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
    """Slips in a derivative written with the function's value ({value}): (formula, what went wrong, f(value))."""
    name = value.split(" = ", maxsplit=1)[0]
    models: list[tuple[Mistake, str, str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = []
    for formula, what, local in slips:

        def dx(dout: np.ndarray, x: np.ndarray, local: Any = local) -> np.ndarray:
            return dout * local(function(x))

        models.append(
            (
                Mistake.WRONG_DERIVATIVE,
                f"dx uses {formula} as the local derivative",
                f"dx equals dout * {formula} with {value}: {what}. Check the derivative term by term "
                f"against a finite difference at one value of {name}.",
                dx,
            )
        )
    return models


@register
class ReluBackward(ElementwiseActivation):
    slug = "relu-backward"
    function_name = "relu_backward"
    edge_scale = 5.0
    hints = {
        Mistake.WRONG_MASK: "ReLU passed x through where x > 0, so the gradient flows exactly there: "
        "dx = dout * (x > 0). The sign of dout plays no part.",
        Mistake.WRONG_DERIVATIVE: "The derivative of max(0, x) is 1 for x > 0 and 0 for x < 0, not the "
        "activation's value.",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        """The elementwise cases, plus an edge case with exact zeros: at the kink the gradient is 0, as in PyTorch."""
        cases = super().make_cases(rng)
        x = away_from_zero(rng, (3, 6))
        x[rng.random((3, 6)) < 0.3] = 0.0
        x[0, 0] = 0.0
        cases.append(
            Case(
                label="x of shape (3, 6) with exact zeros",
                args={"dout": rng.standard_normal((3, 6)), "x": x},
                edge=True,
            )
        )
        return cases

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return torch.relu(args["x"])

    def derivative_models(self) -> list[tuple[Mistake, str, str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
        return [
            (
                Mistake.WRONG_MASK,
                "dx is masked where dout > 0 instead of where x > 0",
                "dx keeps dout exactly where dout is positive: the mask comes from the upstream gradient, "
                "not from the forward's input x.",
                lambda dout, x: dout * (dout > 0),
            ),
            (
                Mistake.WRONG_MASK,
                "dx is masked where x < 0 instead of where x > 0",
                "dx keeps dout where x is negative: the comparison in the mask is reversed.",
                lambda dout, x: dout * (x < 0),
            ),
            (
                Mistake.WRONG_MASK,
                "dx is masked where dout > 0 as well as where x > 0",
                "dx keeps dout only where both x and dout are positive: the upstream gradient was passed through "
                "a ReLU too. Negative upstream gradients must flow back unchanged wherever x > 0.",
                lambda dout, x: dout * (dout > 0) * (x > 0),
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx multiplies dout by relu(x) instead of its derivative",
                "dx equals dout * max(0, x): the activation's value was used where its slope (0 or 1) belongs.",
                lambda dout, x: dout * _relu(x),
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx multiplies dout by sign(x) instead of the ReLU's slope",
                "dx equals dout * sign(x): right where x > 0, but where x < 0 it passes -dout back instead of "
                "nothing. The slope of max(0, x) on the negative side is 0, not -1.",
                lambda dout, x: dout * np.sign(x),
            ),
        ]


@register
class SigmoidBackward(ElementwiseActivation):
    slug = "sigmoid-backward"
    function_name = "sigmoid_backward"
    hints = {
        Mistake.WRONG_DERIVATIVE: "With s = sigmoid(x) computed from x, the derivative is s * (1 - s): "
        "apply the formula to s, not to x.",
    }

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return torch.sigmoid(args["x"])

    def derivative_models(self) -> list[tuple[Mistake, str, str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
        return [
            (
                Mistake.WRONG_DERIVATIVE,
                "dx uses x * (1 - x) instead of s * (1 - s)",
                "dx equals dout * x * (1 - x): the derivative formula was applied to the input x instead of "
                "to the output s = sigmoid(x).",
                lambda dout, x: dout * x * (1 - x),
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx multiplies dout by sigmoid(x) instead of its derivative",
                "dx equals dout * sigmoid(x): the activation's value was used where its slope s * (1 - s) belongs.",
                lambda dout, x: dout * _sigmoid(x),
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx uses 1 - s instead of s * (1 - s)",
                "dx equals dout * (1 - sigmoid(x)): a factor s is missing from the derivative.",
                lambda dout, x: dout * (1 - _sigmoid(x)),
            ),
            *_slips(
                "s = sigmoid(x)",
                _sigmoid,
                [
                    (
                        "s * (1 + s)",
                        "a sign slipped: the second factor adds s where it subtracts it",
                        lambda s: s * (1 + s),
                    ),
                    ("(1 - s)**2", "the factor s became a second (1 - s)", lambda s: (1 - s) ** 2),
                    ("s**2", "the factor (1 - s) became a second s", lambda s: s**2),
                    (
                        "s**2 * (1 - s)",
                        "an extra factor s (the chain rule applied to s once too often)",
                        lambda s: s**2 * (1 - s),
                    ),
                    ("s * (1 - s)**2", "an extra factor (1 - s)", lambda s: s * (1 - s) ** 2),
                ],
            ),
        ]


@register
class TanhBackward(ElementwiseActivation):
    slug = "tanh-backward"
    function_name = "tanh_backward"
    hints = {
        Mistake.WRONG_DERIVATIVE: "d tanh(x)/dx = 1 - tanh(x)**2: square the activation's output t = tanh(x), "
        "not the input x.",
    }

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return torch.tanh(args["x"])

    def derivative_models(self) -> list[tuple[Mistake, str, str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
        return [
            (
                Mistake.WRONG_DERIVATIVE,
                "dx uses 1 - x**2 instead of 1 - tanh(x)**2",
                "dx equals dout * (1 - x**2): the derivative formula was applied to the input x instead of "
                "to the output t = tanh(x).",
                lambda dout, x: dout * (1 - x**2),
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx uses 1 - tanh(x) instead of 1 - tanh(x)**2",
                "dx equals dout * (1 - tanh(x)): the square is missing.",
                lambda dout, x: dout * (1 - np.tanh(x)),
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx multiplies dout by tanh(x) instead of its derivative",
                "dx equals dout * tanh(x): the activation's value was used where its slope belongs.",
                lambda dout, x: dout * np.tanh(x),
            ),
            *_slips(
                "t = tanh(x)",
                np.tanh,
                [
                    ("1 + t**2", "a sign slipped: it adds t**2 where it subtracts it", lambda t: 1 + t**2),
                    (
                        "sqrt(1 - t**2) = 1 / cosh(x)",
                        "the square of 1 / cosh(x) is missing",
                        lambda t: np.sqrt(np.clip(1 - t**2, 0.0, None)),
                    ),
                    ("t**2 - 1", "the two terms are in the wrong order (minus the derivative)", lambda t: t**2 - 1),
                    ("1 - 2 * t", "the derivative of t**2 was taken with respect to t, not x", lambda t: 1 - 2 * t),
                ],
            ),
            (
                Mistake.WRONG_DERIVATIVE,
                "dx uses 1 - tanh(x**2) instead of 1 - tanh(x)**2",
                "dx equals dout * (1 - tanh(x**2)): the input was squared before the tanh, where the tanh's "
                "output is what gets squared (mind the parentheses).",
                lambda dout, x: dout * (1 - np.tanh(x**2)),
            ),
        ]
