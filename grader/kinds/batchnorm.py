"""batchnorm-backward: training-mode batch normalization over axis 0, biased variance."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

DEFAULT_EPS = 1e-5


def batchnorm_forward(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, *, unbiased: bool = False
) -> torch.Tensor:
    """Batch norm with batch statistics; `unbiased=True` is the N - 1 variance mistake."""
    if not unbiased:
        # PyTorch's own kernel is the trusted reference; training=True uses the biased variance.
        return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
    mean = x.mean(dim=0)
    var = x.var(dim=0, unbiased=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def _statistics_as_constants(args: dict[str, Any]) -> torch.Tensor:
    """The forward with mean and variance detached: its dx is the 'direct path only' mistake."""
    x = args["x"]
    mean = x.mean(dim=0).detach()
    var = x.var(dim=0, unbiased=False).detach()
    return args["gamma"] * (x - mean) / torch.sqrt(var + args["eps"]) + args["beta"]


def _x_hat(case: Case) -> np.ndarray:
    x = case.args["x"]
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + case.args["eps"])


def terms(case: Case, mean: float, variance: float, *, gamma: bool = True) -> np.ndarray:
    """dx = (g - mean * sum(g) / N - variance * x_hat * sum(g * x_hat) / N) / std, g = dout * gamma.

    mean = variance = 1 is the exact gradient; other coefficients model a slip in one path.
    """
    x, dout = case.args["x"], case.args["dout"]
    n = x.shape[0]
    std = np.sqrt(x.var(axis=0) + case.args["eps"])
    x_hat = (x - x.mean(axis=0)) / std
    g = dout * case.args["gamma"] if gamma else dout
    return (g - mean * g.sum(axis=0) / n - variance * x_hat * (g * x_hat).sum(axis=0) / n) / std


def projection_formula(case: Case, *, ddof: int) -> dict[str, np.ndarray]:
    """dx and dgamma by the usual closed form, with the variance computed with `ddof`.

    With ddof=1 this is what a learner gets by plugging np.var(x, ddof=1) into the right
    formula, which differs from the exact gradient of an unbiased-variance forward.
    """
    x, dout, gamma = case.args["x"], case.args["dout"], case.args["gamma"]
    n = x.shape[0]
    inv_std = 1.0 / np.sqrt(x.var(axis=0, ddof=ddof) + case.args["eps"])
    x_hat = (x - x.mean(axis=0)) * inv_std
    g = dout * gamma
    dx = (inv_std / n) * (n * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))
    return {"dx": dx, "dgamma": (dout * x_hat).sum(axis=0)}


@register
class BatchNormBackward(Kind):
    slug = "batchnorm-backward"
    function_name = "batchnorm_backward"
    arg_names = ("dout", "x", "gamma", "beta", "eps")
    outputs = (Output("dx", of="x"), Output("dgamma", of="gamma"), Output("dbeta", of="beta"))
    lesson_slug = "batch-normalization"
    lesson_section = "mathematical-foundations"
    hints = {
        Mistake.BN_MISSING_MEAN_VAR_TERMS: "Each x_i also moves the batch mean and variance, which every output "
        "depends on: add the two sums over the batch (the mean term and the x_hat-weighted variance term).",
        Mistake.UNBIASED_VARIANCE: "Training-mode batch norm divides the squared deviations by N, not N - 1 "
        "(np.var's default ddof=0).",
        Mistake.BIAS_NOT_SUMMED: "beta and gamma are shared by every row of the batch, so their gradients add "
        "up the contributions of all N rows: sum over axis 0.",
        Mistake.WRONG_DERIVATIVE: "out = gamma * x_hat + beta, so d out / d gamma = x_hat: dgamma = sum(dout * x_hat).",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(
            label: str,
            n: int,
            d: int,
            *,
            eps: float = DEFAULT_EPS,
            loc: float = 0.0,
            scale: float = 1.0,
            edge: bool = False,
        ) -> Case:
            return Case(
                label=label,
                args={
                    "dout": rng.standard_normal((n, d)),
                    "x": loc + scale * rng.standard_normal((n, d)),
                    "gamma": rng.uniform(0.5, 2.0, d) * rng.choice([-1.0, 1.0], d),
                    "beta": rng.standard_normal(d),
                    "eps": eps,
                },
                edge=edge,
            )

        return [
            case("N=4, D=3", 4, 3),
            case("N=6, D=2, input with mean 5 and standard deviation 3", 6, 2, loc=5.0, scale=3.0),
            case("N=3, D=5: a small batch", 3, 5, edge=True),
            case("N=5, D=4, eps=0.1 (eps must be inside the square root)", 5, 4, eps=0.1, edge=True),
        ]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return batchnorm_forward(args["x"], args["gamma"], args["beta"], args["eps"])

    def mistake_models(self) -> list[MistakeModel]:
        def direct_path_only(case: Case) -> dict[str, Any]:
            return {"dx": self.reference_with(case, _statistics_as_constants)["dx"]}

        def one_path_left_out(path: str) -> Any:
            """dx through x_hat and one of the statistics only: the other held constant."""

            def compute(case: Case) -> dict[str, Any]:
                x, gamma, eps, dout = (case.args[name] for name in ("x", "gamma", "eps", "dout"))
                n = x.shape[0]
                std = np.sqrt(x.var(axis=0) + eps)
                x_hat = (x - x.mean(axis=0)) / std
                g = dout * gamma
                mean_term = g.sum(axis=0) if path != "mean" else 0.0
                variance_term = x_hat * (g * x_hat).sum(axis=0) if path != "variance" else 0.0
                return {"dx": (n * g - mean_term - variance_term) / (n * std)}

            return compute

        def unbiased(case: Case) -> dict[str, Any]:
            result = self.reference_with(
                case, lambda a: batchnorm_forward(a["x"], a["gamma"], a["beta"], a["eps"], unbiased=True)
            )
            return {"dx": result["dx"], "dgamma": result["dgamma"]}

        def unbiased_in_formula(case: Case) -> dict[str, Any]:
            return projection_formula(case, ddof=1)

        def one_row(row: int) -> Any:
            def compute(case: Case) -> dict[str, Any]:
                dout = case.args["dout"]
                return {"dbeta": dout[row].copy(), "dgamma": (dout * _x_hat(case))[row]}

            return compute

        def dgamma_without_x_hat(case: Case) -> dict[str, Any]:
            return {"dgamma": case.args["dout"].sum(axis=0)}

        def dgamma_from_x(case: Case) -> dict[str, Any]:
            return {"dgamma": (case.args["dout"] * case.args["x"]).sum(axis=0)}

        def without_gamma(case: Case) -> dict[str, Any]:
            return {"dx": terms(case, 1.0, 1.0, gamma=False)}

        def statistics_per_row(case: Case) -> dict[str, Any]:
            def forward(a: dict[str, Any]) -> torch.Tensor:
                x = a["x"]
                mean, var = x.mean(dim=1, keepdim=True), x.var(dim=1, unbiased=False, keepdim=True)
                return a["gamma"] * (x - mean) / torch.sqrt(var + a["eps"]) + a["beta"]

            result = self.reference_with(case, forward)
            return {"dx": result["dx"], "dgamma": result["dgamma"]}

        def one_term(mean: str, variance: str) -> Any:
            """dx with one path's coefficient slipped, named by the slip (see `terms`)."""

            def compute(case: Case) -> dict[str, Any]:
                n = case.args["x"].shape[0]
                coefficient = {"kept": 1.0, "has the wrong sign": -1.0, "is not averaged": float(n),
                               "is divided by N - 1": n / (n - 1)}  # fmt: skip
                return {"dx": terms(case, coefficient[mean], coefficient[variance])}

            return compute

        one_row_why = (
            "{output} equals the contribution of a single row of the batch: the per-example gradients "
            "must be added up over the batch, not overwritten."
        )
        return [
            MistakeModel(
                Mistake.BN_MISSING_MEAN_VAR_TERMS,
                title="dx is missing the mean and variance terms",
                why="dx equals dout * gamma / sqrt(var + eps), the gradient through x_hat with the batch mean "
                "and variance held constant; but both depend on every x_i.",
                compute=direct_path_only,
                outputs=("dx",),
            ),
            MistakeModel(
                Mistake.BN_MISSING_MEAN_VAR_TERMS,
                title="dx is missing the variance path",
                why="dx matches the gradient through x_hat and the batch mean, with the variance held constant: "
                "the term -x_hat_i * sum_j(g_j * x_hat_j) / N, the path through the variance, is left out.",
                compute=one_path_left_out("variance"),
                outputs=("dx",),
            ),
            MistakeModel(
                Mistake.BN_MISSING_MEAN_VAR_TERMS,
                title="dx is missing the mean path",
                why="dx matches the gradient through x_hat and the batch variance, with the mean held constant: "
                "the term -sum_j(g_j) / N, the path through the mean, is left out.",
                compute=one_path_left_out("mean"),
                outputs=("dx",),
            ),
            MistakeModel(
                Mistake.UNBIASED_VARIANCE,
                title="{output} uses the unbiased variance",
                why="{output} matches batch norm computed with the variance divided by N - 1; the forward "
                "pass in training mode divides by N.",
                compute=unbiased,
                outputs=("dx", "dgamma"),
            ),
            MistakeModel(
                Mistake.UNBIASED_VARIANCE,
                title="{output} uses the unbiased variance",
                why="{output} matches the batch-norm gradient formula evaluated with the variance divided by "
                "N - 1; the forward pass in training mode divides by N.",
                compute=unbiased_in_formula,
                outputs=("dx", "dgamma"),
            ),
            MistakeModel(
                Mistake.BIAS_NOT_SUMMED,
                title="{output} is not summed over the batch",
                why=one_row_why,
                compute=one_row(-1),
                outputs=("dgamma", "dbeta"),
            ),
            MistakeModel(
                Mistake.BIAS_NOT_SUMMED,
                title="{output} is not summed over the batch",
                why=one_row_why,
                compute=one_row(0),
                outputs=("dgamma", "dbeta"),
            ),
            *[
                MistakeModel(
                    Mistake.UNBIASED_VARIANCE if "N - 1" in slip else Mistake.BN_MISSING_MEAN_VAR_TERMS,
                    title=f"dx: the {term} term {slip}",
                    why=f"dx matches the three-path gradient with the {term} term {why}; the direct term and the "
                    "other term are right. Rederive that one path through the batch statistic on paper.",
                    compute=one_term(*((slip, "kept") if term == "mean" else ("kept", slip))),
                    outputs=("dx",),
                )
                for term in ("mean", "variance")
                for slip, why in (
                    ("has the wrong sign", "added where it is subtracted"),
                    ("is not averaged", "summed over the batch but not divided by N"),
                    ("is divided by N - 1", "divided by N - 1 where the biased variance gives N"),
                )
            ],
            MistakeModel(
                Mistake.WRONG_DERIVATIVE,
                title="dx is missing the factor gamma",
                why="dx matches the gradient of batch norm with gamma = 1: out = gamma * x_hat + beta, so the "
                "gradient reaching x_hat is dout times gamma, before the three paths back to x.",
                compute=without_gamma,
                outputs=("dx",),
            ),
            MistakeModel(
                Mistake.WRONG_DERIVATIVE,
                title="dgamma uses x instead of x_hat",
                why="dgamma equals the sum of dout * x over the batch: gamma multiplies the normalized input "
                "x_hat, not the raw input x.",
                compute=dgamma_from_x,
                outputs=("dgamma",),
            ),
            MistakeModel(
                Mistake.WRONG_DERIVATIVE,
                title="{output}: the statistics are taken over the wrong axis",
                why="{output} matches a normalization with the mean and variance of each row (axis 1, the features "
                "of one example); batch norm takes them over the batch, axis 0, one per feature.",
                compute=statistics_per_row,
                outputs=("dx", "dgamma"),
            ),
            MistakeModel(
                Mistake.WRONG_DERIVATIVE,
                title="dgamma is missing x_hat",
                why="dgamma equals the sum of dout over the batch, which is dbeta; gamma multiplies x_hat, "
                "so each row's contribution is dout * x_hat.",
                compute=dgamma_without_x_hat,
                outputs=("dgamma",),
            ),
        ]

    def training(self) -> TrainingSetup:
        n, d_in, hidden, d_out = 16, 4, 6, 3

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {
                "w1": rng.standard_normal((d_in, hidden)) / np.sqrt(d_in),
                "b1": np.zeros(hidden),
                "gamma": np.ones(hidden),
                "beta": np.zeros(hidden),
                "w2": rng.standard_normal((hidden, d_out)) / np.sqrt(hidden),
                "b2": np.zeros(d_out),
            }

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = 3.0 + 2.0 * rng.standard_normal((n, d_in))  # off-centre, so normalising matters
            target = np.tanh(x @ rng.standard_normal((d_in, d_out)) / 4.0)
            return {"x": x, "target": target}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            h = batch["x"] @ params["w1"] + params["b1"]
            h = layer(x=h, gamma=params["gamma"], beta=params["beta"], eps=DEFAULT_EPS)
            out = torch.relu(h) @ params["w2"] + params["b2"]
            return ((out - batch["target"]) ** 2).mean()

        return TrainingSetup(
            steps=20,
            lr=0.1,
            init=init,
            data=data,
            loss=loss,
            description="MLP Linear(4, 6) -> BatchNorm -> ReLU -> Linear(6, 3), MSE loss, batch of 16",
        )
