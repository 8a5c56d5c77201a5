"""linear-backward: `linear_backward(dout, x, w, b) -> (dx, dw, db)` for `out = x @ w + b`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, Output, TrainingSetup


def linear_case(rng: np.random.Generator, n: int, d: int, m: int, *, edge: bool = False) -> Case:
    label = f"N={n}, D={d}, M={m}"
    return Case(
        label=label,
        args={
            "dout": rng.standard_normal((n, m)),
            "x": rng.standard_normal((n, d)),
            "w": rng.standard_normal((d, m)),
            "b": rng.standard_normal(m),
        },
        edge=edge,
    )


@register
class LinearBackward(Kind):
    slug = "linear-backward"
    function_name = "linear_backward"
    arg_names = ("dout", "x", "w", "b")
    outputs = (Output("dx", of="x"), Output("dw", of="w"), Output("db", of="b"))
    lesson_slug = "backpropagation"
    lesson_section = "mathematical-foundations"
    hints = {
        Mistake.TRANSPOSED: "With out = x @ w + b: dx = dout @ w.T has x's shape (N, D) and dw = x.T @ dout "
        "has w's shape (D, M). Check each product's shape.",
        Mistake.BIAS_NOT_SUMMED: "b is added to every row of the batch, so its gradient sums dout over the "
        "batch axis: db = dout.sum(axis=0), shape (M,).",
        Mistake.SCALED_BY_1_OVER_N: "Nothing in out = x @ w + b is averaged over the batch: dw = x.T @ dout and "
        "db = dout.sum(axis=0) add up the N rows. A 1/N belongs to a mean loss, and dout already carries it.",
        Mistake.SCALED_BY_N: "Each row of the batch contributes once: dw = x.T @ dout and db = dout.sum(axis=0) "
        "need no extra factor of N.",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        return [
            linear_case(rng, 4, 3, 5),
            linear_case(rng, 7, 6, 2),
            linear_case(rng, 1, 4, 3, edge=True),
            linear_case(rng, 5, 4, 4, edge=True),
        ]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return args["x"] @ args["w"] + args["b"]

    def training(self) -> TrainingSetup:
        """Two linear layers with a ReLU between them, both using the learner's backward, MSE loss."""
        d, h, o, n = 4, 8, 3, 16

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {
                "w1": rng.standard_normal((d, h)) / np.sqrt(d),
                "b1": np.zeros(h),
                "w2": rng.standard_normal((h, o)) / np.sqrt(h),
                "b2": np.zeros(o),
            }

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, d))
            return {"x": x, "y": np.tanh(x @ rng.standard_normal((d, o)))}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            hidden = torch.relu(layer(x=batch["x"], w=params["w1"], b=params["b1"]))
            out = layer(x=hidden, w=params["w2"], b=params["b2"])
            return torch.mean((out - batch["y"]) ** 2)

        return TrainingSetup(
            steps=25,
            lr=0.1,
            init=init,
            data=data,
            loss=loss,
            numpy_network="linear-relu-linear-mse",
            description="x (16, 4) -> linear(4, 8) -> ReLU -> linear(8, 3) -> MSE; both use your backward",
        )
