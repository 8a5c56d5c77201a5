"""simple-nn: `simple_nn_backward(params, x, y) -> (loss, grads)` for the backpropagation lesson's SimpleNN.

Forward: `relu(x @ W1.T + b1) @ W2.T + b2`, MSE loss against y; params and grads are
dicts keyed `fc1.weight` (H, D), `fc1.bias` (H,), `fc2.weight` (O, H), `fc2.bias` (O,),
PyTorch's layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

KEYS = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
# Hidden pre-activations stay this far from ReLU's kink, so central differences never straddle it.
KINK_MARGIN = 1e-3


def init_params(rng: np.random.Generator, d: int, h: int, o: int) -> dict[str, np.ndarray]:
    """nn.Linear's default initialization: uniform in +-1/sqrt(fan_in)."""

    def uniform(fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape)

    return {
        "fc1.weight": uniform(d, (h, d)),
        "fc1.bias": uniform(d, (h,)),
        "fc2.weight": uniform(h, (o, h)),
        "fc2.bias": uniform(h, (o,)),
    }


def numpy_grads(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    mask: bool = True,
    slope: str = "mask",
    fc2_input: str = "hidden",
) -> dict[str, Any]:
    """Loss and gradients in NumPy, and mistake models: `mask=False` forgets ReLU's mask in the backward,
    `slope="value"` multiplies by relu(z) instead of its slope, `fc2_input="z"` takes fc2.weight's
    gradient from the pre-activation."""
    z = x @ params["fc1.weight"].T + params["fc1.bias"]
    hidden = np.maximum(z, 0)
    out = hidden @ params["fc2.weight"].T + params["fc2.bias"]
    dout = 2 * (out - y) / out.size
    dhidden = dout @ params["fc2.weight"]
    dz = dhidden * (hidden if slope == "value" else (z > 0)) if mask else dhidden
    return {
        "loss": float(np.mean((out - y) ** 2)),
        "grads": {
            "fc1.weight": dz.T @ x,
            "fc1.bias": dz.sum(axis=0),
            "fc2.weight": dout.T @ (z if fc2_input == "z" else hidden),
            "fc2.bias": dout.sum(axis=0),
        },
    }


@register
class SimpleNNBackward(Kind):
    slug = "simple-nn"
    function_name = "simple_nn_backward"
    arg_names = ("params", "x", "y")
    outputs = (Output("loss"), Output("grads", of="params"))
    upstream = None
    lesson_slug = "backpropagation"
    lesson_section = "code-example"
    hints = {
        Mistake.TRANSPOSED: "PyTorch stores a Linear layer's weight as (out_features, in_features): with "
        "z = x @ W.T + b, dW = dz.T @ x has W's shape.",
        Mistake.BIAS_NOT_SUMMED: "Each bias is added to every example: sum its gradient over the batch axis.",
        Mistake.WRONG_MASK: "The ReLU passes gradient only where its input z = x @ W1.T + b1 was positive: "
        "multiply by (z > 0) before going back through fc1.",
        Mistake.SCALED_BY_N: "nn.MSELoss averages over every element of the output: dout = 2 (out - y) / out.size.",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(n: int, d: int, h: int, o: int, edge: bool = False) -> Case:
            params = init_params(rng, d, h, o)
            x = rng.standard_normal((n, d))
            # Redraw x rows whose hidden pre-activations sit on the kink.
            for _ in range(100):
                z = x @ params["fc1.weight"].T + params["fc1.bias"]
                close = np.abs(z).min(axis=1) < KINK_MARGIN
                if not close.any():
                    break
                x[close] = rng.standard_normal((int(close.sum()), d))
            return Case(
                label=f"N={n}, D={d}, H={h}, O={o}",
                args={"params": params, "x": x, "y": rng.standard_normal((n, o))},
                edge=edge,
            )

        return [case(4, 10, 5, 1), case(6, 3, 7, 3), case(1, 10, 5, 1, edge=True)]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        params = args["params"]
        hidden = torch.relu(args["x"] @ params["fc1.weight"].T + params["fc1.bias"])
        out = hidden @ params["fc2.weight"].T + params["fc2.bias"]
        return torch.mean((out - args["y"]) ** 2)

    def mistake_models(self) -> list[MistakeModel]:
        def without_mask(case: Case) -> dict[str, Any]:
            return numpy_grads(case.args["params"], case.args["x"], case.args["y"], mask=False)

        return [
            MistakeModel(
                mistake=Mistake.WRONG_MASK,
                title="{output} ignores the ReLU in the backward pass",
                why="{output} matches a backward pass that sends the gradient through the ReLU unmasked, as if "
                "it were the identity.",
                compute=without_mask,
                outputs=("grads",),
            ),
            MistakeModel(
                mistake=Mistake.WRONG_DERIVATIVE,
                title="{output} multiplies by relu(z) instead of its slope",
                why="{output} matches a backward pass that multiplies the gradient reaching the ReLU by its "
                "output h = relu(z): the ReLU's local derivative is its slope, 0 or 1, not its value.",
                compute=lambda case: numpy_grads(case.args["params"], case.args["x"], case.args["y"], slope="value"),
                outputs=("grads",),
            ),
            MistakeModel(
                mistake=Mistake.WRONG_DERIVATIVE,
                title="{output} uses the pre-activation z instead of h = relu(z)",
                why="{output} matches dout.T times z = x @ W1.T + b1: the input of fc2 is the ReLU's output h, "
                "so its weight gradient pairs dout with h.",
                compute=lambda case: numpy_grads(case.args["params"], case.args["x"], case.args["y"], fc2_input="z"),
                outputs=("grads",),
            ),
        ]

    def training(self) -> TrainingSetup:
        """The lesson's SimpleNN (Linear(10, 5), ReLU, Linear(5, 1), MSELoss) with SGD(lr=0.01)."""
        d, h, o, n = 10, 5, 1, 16

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return init_params(rng, d, h, o)

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, d))
            return {"x": x, "y": np.sin(x[:, :1]) + 0.5 * x[:, 1:2]}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            return layer(params=params, x=batch["x"], y=batch["y"])

        return TrainingSetup(
            steps=25,
            lr=0.01,
            init=init,
            data=data,
            loss=loss,
            description="the lesson's SimpleNN: Linear(10, 5) -> ReLU -> Linear(5, 1), MSELoss, SGD(lr=0.01), "
            "every gradient from your function",
        )
