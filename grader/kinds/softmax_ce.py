"""softmax-cross-entropy: `softmax_cross_entropy(logits, y) -> (loss, dlogits)`, mean over the batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grader.diagnosis import Diagnosis, Mistake, worst_elements
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

# Logits at least this large overflow exp() in float64 (exp(710) = inf) when the max is not subtracted.
LARGE_LOGITS = 700.0
# A logit this far below its row's maximum has a softmax probability of exactly 0 (exp(-745) underflows).
UNDERFLOW_GAP = 800.0


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=1, keepdims=True)


def _one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((y.shape[0], classes))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


@register
class SoftmaxCrossEntropy(Kind):
    slug = "softmax-cross-entropy"
    function_name = "softmax_cross_entropy"
    arg_names = ("logits", "y")
    outputs = (Output("loss"), Output("dlogits", of="logits"))
    upstream = None
    lesson_slug = "activation-functions"
    lesson_section = "mathematical-foundations"
    hints = {
        Mistake.SOFTMAX_OVERFLOW: "exp(1000) is inf in float64. Subtract each row's maximum from the logits "
        "first (softmax is unchanged), and take the log of the shifted sum: "
        "log p = z - max - log(sum(exp(z - max))).",
        Mistake.SCALED_BY_N: "The loss is the mean over the N examples, so dlogits = (softmax - one_hot) / N.",
        Mistake.SCALED_BY_1_OVER_N: "Divide by N once, for the mean over the batch; nothing else is averaged.",
        Mistake.MISSING_LOG_SOFTMAX_GRAD: "-log softmax(z)_y = -z_y + log(sum(exp(z))): the second term "
        "contributes softmax(z) to every logit's gradient, so dlogits = (softmax - one_hot) / N.",
        Mistake.WRONG_DERIVATIVE: "dlogits = (softmax - one_hot) / N: subtract 1 at each example's true class.",
        Mistake.SIGN_FLIPPED: "The gradient is softmax - one_hot (positive for the wrong classes): descending it "
        "lowers their logits.",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(n: int, c: int, scale: float, edge: bool = False) -> Case:
            logits = rng.standard_normal((n, c)) * scale
            label = f"N={n}, C={c}" + (f", logits of magnitude up to about {3 * scale:g}" if scale > 10 else "")
            return Case(label=label, args={"logits": logits, "y": rng.integers(0, c, size=n)}, edge=edge)

        large = case(3, 4, 1000.0, edge=True)
        # One example's true class scores far below its row's maximum: its softmax probability
        # underflows to 0, so log(softmax) gives inf where the log-sum-exp form stays exact.
        row, label = large.args["logits"][0], int(np.argmin(large.args["logits"][0]))
        row[label] = min(row[label], row.max() - UNDERFLOW_GAP)
        large.args["y"][0] = label
        return [case(4, 5, 1.0), case(7, 3, 3.0), large, case(1, 6, 1.0, edge=True)]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(args["logits"], args["y"])

    def mistake_models(self) -> list[MistakeModel]:
        def only_target_term(case: Case) -> dict[str, Any]:
            logits, y = case.args["logits"], case.args["y"]
            return {"dlogits": -_one_hot(y, logits.shape[1]) / logits.shape[0]}

        def forgot_one_hot(case: Case) -> dict[str, Any]:
            logits = case.args["logits"]
            return {"dlogits": _softmax(logits) / logits.shape[0]}

        def label_columns_in_every_row(case: Case) -> dict[str, Any]:
            logits, y = case.args["logits"], case.args["y"]
            grad = _softmax(logits)
            grad[:, y] -= 1.0  # as the learner's line does: once per distinct label, in every row
            return {"dlogits": grad / logits.shape[0]}

        def softmax_over_batch(case: Case) -> dict[str, Any]:
            logits, y = case.args["logits"], case.args["y"]
            shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
            return {"dlogits": (shifted / shifted.sum(axis=0, keepdims=True) - _one_hot(y, logits.shape[1])) / len(y)}

        return [
            MistakeModel(
                mistake=Mistake.WRONG_DERIVATIVE,
                title="{output}: 1 is subtracted at the label columns of every row",
                why="{output} equals softmax / N with 1 / N subtracted in every row at every column that is some "
                "example's label, as p[:, y] -= 1 does; each example's 1 belongs only at its own label, in "
                "its own row (one row index and one column index per example).",
                compute=label_columns_in_every_row,
                outputs=("dlogits",),
            ),
            MistakeModel(
                mistake=Mistake.WRONG_DERIVATIVE,
                title="{output}: the softmax is taken over the batch axis",
                why="{output} matches a softmax normalized down each column (axis 0, across examples); each "
                "example's probabilities are normalized over its own classes, along axis 1.",
                compute=softmax_over_batch,
                outputs=("dlogits",),
            ),
            MistakeModel(
                mistake=Mistake.MISSING_LOG_SOFTMAX_GRAD,
                title="{output} lacks the gradient of the log-sum-exp term",
                why="{output} is -one_hot(y) / N: only the -z_y term of the loss was differentiated.",
                compute=only_target_term,
                outputs=("dlogits",),
            ),
            MistakeModel(
                mistake=Mistake.WRONG_DERIVATIVE,
                title="{output} is softmax / N without subtracting the one-hot target",
                why="{output} is softmax(logits) / N: the -1 at each example's true class is missing.",
                compute=forgot_one_hot,
                outputs=("dlogits",),
            ),
        ]

    def likely_mistakes(self, case: Case, output_name: str, expected: Any, got: Any) -> list[Diagnosis]:
        """Non-finite values at large logits only: exp() overflowed (the max was not subtracted)."""
        logits = case.args["logits"]
        values = np.asarray(got, dtype=np.float64)
        if np.abs(logits).max() < LARGE_LOGITS or np.isfinite(values).all():
            return []
        title, why = f"{output_name} overflows for large logits", "exp() of a large logit overflows."
        if output_name == "loss" and values.size == 1 and float(values) == np.inf:
            title = "loss is inf for large logits: the log of a probability that underflowed to 0"
            why = (
                "The probability of a true class far below its row's maximum is smaller than the smallest "
                "float64, so softmax gives exactly 0 and its log is -inf. The log of a softmax is best taken "
                "without computing the softmax first."
            )
        return [
            Diagnosis(
                output=output_name,
                mistake=Mistake.SOFTMAX_OVERFLOW,
                title=title,
                why=f"With logits of magnitude about {np.abs(logits).max():.0f}, {output_name} has NaN or infinite "
                f"entries, while it is finite for small logits: {why}",
                worst=worst_elements(expected, got),
                hint=self.hints[Mistake.SOFTMAX_OVERFLOW],
                lesson_url=self.lesson_url(),
            )
        ]

    def training(self) -> TrainingSetup:
        """A linear classifier x @ w + b trained with your softmax cross-entropy gradient."""
        d, c, n = 5, 4, 24

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {"w": rng.standard_normal((d, c)) * 0.1, "b": np.zeros(c)}

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, d))
            return {"x": x, "y": np.argmax(x @ rng.standard_normal((d, c)), axis=1)}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            return layer(logits=batch["x"] @ params["w"] + params["b"], y=batch["y"])

        return TrainingSetup(
            steps=25,
            lr=0.5,
            init=init,
            data=data,
            loss=loss,
            description="linear classifier x (24, 5) @ w (5, 4) + b, with your softmax cross-entropy gradient",
        )
