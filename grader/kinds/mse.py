"""mse-loss: `mse_loss(pred, target) -> (loss, dpred)` for `loss = mean((pred - target)**2)` over all elements."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup


@register
class MseLoss(Kind):
    slug = "mse-loss"
    function_name = "mse_loss"
    arg_names = ("pred", "target")
    outputs = (Output("loss"), Output("dpred", of="pred"))
    upstream = None
    lesson_slug = "backpropagation"
    lesson_section = "theoretical-background"
    hints = {
        Mistake.SCALED_BY_N: "The loss is a mean over all N*M elements, so it and every entry of dpred carry a "
        "factor 1 / pred.size.",
        Mistake.SCALED_BY_1_OVER_N: "Divide by the number of elements once: loss = sum(diff**2) / pred.size and "
        "dpred = 2 * diff / pred.size.",
        Mistake.WRONG_DERIVATIVE: "d/dp (p - t)**2 = 2 (p - t): keep the factor 2 from the square.",
        Mistake.SIGN_FLIPPED: "Differentiate with respect to pred: d/dp (p - t)**2 = 2 (p - t), not 2 (t - p).",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        # No dimension equals 2, so a missing factor 2 is never mistaken for a missing 1/N.
        def case(shape: tuple[int, ...], edge: bool = False) -> Case:
            return Case(
                label=f"pred of shape {shape}",
                args={"pred": rng.standard_normal(shape), "target": rng.standard_normal(shape)},
                edge=edge,
            )

        return [case((4, 3)), case((7, 5)), case((1, 1), edge=True), case((6,), edge=True)]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return torch.mean((args["pred"] - args["target"]) ** 2)

    def mistake_models(self) -> list[MistakeModel]:
        def rows_only(case: Case) -> dict[str, Any] | None:
            pred, target = case.args["pred"], case.args["target"]
            if pred.ndim < 2 or pred.shape[1] == 1:
                return None
            n = pred.shape[0]
            return {"loss": float(np.sum((pred - target) ** 2) / n), "dpred": 2 * (pred - target) / n}

        def other(loss: Any, dpred: Any) -> Any:
            def compute(case: Case) -> dict[str, Any]:
                diff, size = case.args["pred"] - case.args["target"], case.args["pred"].size
                return {"loss": float(loss(diff, size)), "dpred": dpred(case, diff, size)}

            return compute

        def slip(title: str, why: str, compute: Any, output: str) -> MistakeModel:
            return MistakeModel(Mistake.WRONG_DERIVATIVE, title, why, compute, outputs=(output,))

        return [
            slip(
                "loss is the root of the mean squared error",
                "loss equals sqrt(mean((pred - target)**2)): the loss is the mean of the squares itself, "
                "without a square root.",
                other(lambda d, n: np.sqrt(np.mean(d**2)), lambda c, d, n: 2 * d / n),
                "loss",
            ),
            slip(
                "loss has an extra factor 1/2",
                "loss equals half the mean of the squares: the 1/2 of some textbooks' squared error is not in "
                "this loss (nor in PyTorch's MSELoss).",
                other(lambda d, n: np.mean(d**2) / 2, lambda c, d, n: d / n),
                "loss",
            ),
            slip(
                "dpred is the gradient of the absolute error",
                "dpred equals 2 * sign(pred - target) / N: the size of each error is lost, as for a loss "
                "|pred - target|; the derivative of a square grows with the error.",
                other(lambda d, n: 0.0, lambda c, d, n: 2 * np.sign(d) / n),
                "dpred",
            ),
            slip(
                "dpred uses pred + target",
                "dpred equals 2 * (pred + target) / N: a sign slipped in one term; the square is of "
                "the difference pred - target.",
                other(lambda d, n: 0.0, lambda c, d, n: 2 * (c.args["pred"] + c.args["target"]) / n),
                "dpred",
            ),
            MistakeModel(
                mistake=Mistake.SCALED_BY_N,
                title="{output} divides by the number of rows, not the number of elements",
                why="{output} matches a mean over the N rows only; the loss averages over all N*M elements of pred.",
                compute=rows_only,
            ),
        ]

    def training(self) -> TrainingSetup:
        """Linear regression x @ w + b trained with your MSE gradient."""
        d, o, n = 5, 3, 16

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {"w": rng.standard_normal((d, o)) / np.sqrt(d), "b": np.zeros(o)}

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, d))
            return {"x": x, "y": x @ rng.standard_normal((d, o)) + 0.1 * rng.standard_normal((n, o))}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            return layer(pred=batch["x"] @ params["w"] + params["b"], target=batch["y"])

        return TrainingSetup(
            steps=25,
            lr=0.1,
            init=init,
            data=data,
            loss=loss,
            description="linear regression x (16, 5) @ w (5, 3) + b, with your MSE gradient",
        )
