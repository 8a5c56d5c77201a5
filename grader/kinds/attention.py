"""attention-backward: scaled dot-product attention softmax(q k^T / sqrt(d) + mask) v."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

# Softmax backward slips learners make, as a softmax whose backward is wrong in just that way:
# "diagonal" takes the Jacobian as diag(p) (ds = p * dp); "unweighted" subtracts the plain row sum
# of dp instead of sum(p * dp); "query_axis" takes sum(p * dp) over the queries instead of the keys.
SoftmaxSlip = Literal["diagonal", "unweighted", "query_axis"]


class _SlippedSoftmax(torch.autograd.Function):
    """softmax over the last axis forward; backward with one of the slips of SoftmaxSlip."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, slip: str) -> torch.Tensor:
        p = torch.softmax(scores, dim=-1)
        ctx.save_for_backward(p)
        ctx.slip = slip
        return p

    @staticmethod
    def backward(ctx: Any, dp: torch.Tensor) -> tuple[torch.Tensor, None]:
        (p,) = ctx.saved_tensors
        if ctx.slip == "diagonal":
            return p * dp, None
        if ctx.slip == "unweighted":
            return p * (dp - dp.sum(dim=-1, keepdim=True)), None
        return p * (dp - (dp * p).sum(dim=-2, keepdim=True)), None


def slipped_softmax(slip: SoftmaxSlip) -> Callable[[torch.Tensor], torch.Tensor]:
    """A softmax over the last axis whose backward makes `slip` (for mistake models)."""
    return lambda scores: _SlippedSoftmax.apply(scores, slip)


SOFTMAX_SLIPS: list[tuple[SoftmaxSlip, str, str]] = [
    (
        "unweighted",
        "{output}: the softmax Jacobian subtracts the plain row sum of dp",
        "{output} matches ds = p * (dp - sum(dp)); the term a row shares is sum over j of p_j dp_j, the "
        "upstream gradient weighted by the probabilities, because every p_j depends on every score of its row.",
    ),
    (
        "query_axis",
        "{output}: the softmax Jacobian sums over the wrong axis",
        "{output} matches ds = p * (dp - sum(p * dp)) with the sum taken over the queries; each row of p is "
        "normalised over the keys, so sum(p * dp) runs along the last axis, one value per query.",
    ),
]


def attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    scaled: bool = True,
    softmax: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v, written out; with causal=True key j > query i gets -inf.

    Every query keeps key 0, so no row is fully masked, whatever Tq and Tk are.
    """
    scores = q @ k.transpose(-1, -2)
    if scaled:
        scores = scores / math.sqrt(q.shape[-1])
    if causal:
        t_q, t_k = scores.shape[-2:]
        hidden = torch.triu(torch.ones(t_q, t_k, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(hidden, float("-inf"))
    weights = softmax(scores) if softmax is not None else torch.softmax(scores, dim=-1)
    return weights @ v


def _probabilities(case: Case) -> np.ndarray:
    """The attention weights p of a case, (B, Tq, Tk)."""
    args = {name: torch.tensor(case.args[name]) for name in ("q", "k")}
    with torch.no_grad():
        scores = args["q"] @ args["k"].transpose(-1, -2) / math.sqrt(case.args["q"].shape[-1])
        if case.args["causal"]:
            t_q, t_k = scores.shape[-2:]
            scores = scores.masked_fill(torch.triu(torch.ones(t_q, t_k, dtype=torch.bool), diagonal=1), -math.inf)
        return torch.softmax(scores, dim=-1).numpy()


def _score_gradient(case: Case, *, diagonal_only: bool = False) -> np.ndarray:
    """dL/dscores (B, Tq, Tk); `diagonal_only` drops the -p * sum(p * dp) term of the softmax Jacobian."""
    p = _probabilities(case)
    dp = case.args["dout"] @ case.args["v"].transpose(0, 2, 1)
    if diagonal_only:
        return p * dp
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))


# Which (query, key) pairs a slipped causal mask hides, from a (Tq, Tk) array of ones.
MASK_SLIPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "after softmax": lambda ones: np.triu(ones, k=1),
    "diagonal hidden": lambda ones: np.triu(ones, k=0),
    "past hidden": lambda ones: np.tril(ones, k=-1),
}


def masked_by_hand(case: Case, slip: str) -> dict[str, np.ndarray] | None:
    """(dq, dk, dv) by the usual backward formulas with the causal mask slipped as `slip` names.

    The mask fills a large finite negative (as np.where(mask, -1e9, s) does), so a fully hidden
    row gets uniform weights; "after softmax" zeroes the weights of the future keys afterwards,
    without renormalizing. The backward is the learner's: ds = p * (dp - sum(dp * p)).
    """
    if not case.args["causal"]:
        return None
    q, k, v, dout = (case.args[name] for name in ("q", "k", "v", "dout"))
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(0, 2, 1) * scale
    hidden = MASK_SLIPS[slip](np.ones(scores.shape[1:])).astype(bool)
    if slip != "after softmax":
        scores = np.where(hidden, -1e9, scores)
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    if slip == "after softmax":
        p = np.where(hidden, 0.0, p)
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return {"dq": ds @ k * scale, "dk": ds.transpose(0, 2, 1) @ q * scale, "dv": p.transpose(0, 2, 1) @ dout}


def softmax_diagonal_only(case: Case) -> dict[str, np.ndarray]:
    """(dq, dk) when the softmax Jacobian is taken as diag(p): ds = p * dp."""
    q, k = case.args["q"], case.args["k"]
    ds = _score_gradient(case, diagonal_only=True)
    scale = 1.0 / math.sqrt(q.shape[-1])
    return {"dq": ds @ k * scale, "dk": ds.transpose(0, 2, 1) @ q * scale}


@register
class AttentionBackward(Kind):
    slug = "attention-backward"
    function_name = "attention_backward"
    arg_names = ("dout", "q", "k", "v", "causal")
    outputs = (Output("dq", of="q"), Output("dk", of="k"), Output("dv", of="v"))
    lesson_slug = "attention-mechanisms"
    lesson_section = "attention-backward"
    hints = {
        Mistake.ATTENTION_SCALE_MISSING: "The scores are q k^T / sqrt(d): recompute p with the scale, and "
        "multiply dq and dk by 1/sqrt(d) as the chain rule through the scaling requires.",
        Mistake.CAUSAL_MASK_IGNORED: "With causal=True, set the scores of keys j > i to -inf before the "
        "softmax; those weights are then exactly 0 and get no gradient.",
        Mistake.WRONG_DERIVATIVE: "Each softmax output depends on every score of its row: "
        "ds = p * (dp - sum(dp * p, axis=-1, keepdims=True)).",
        Mistake.WRONG_MASK: "Write out the mask for Tq = Tk = 3 as a grid of booleans and check which "
        "(query, key) pairs a query may see; apply it where the scores enter the softmax.",
        Mistake.TRANSPOSED: "scores = q @ k^T, so dk = ds^T @ q (and dq = ds @ k), each times 1/sqrt(d).",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(b: int, t_q: int, t_k: int, *, d: int, d_v: int, causal: bool) -> Case:
            size = f"Tq=Tk={t_q}" if t_q == t_k else f"Tq={t_q}, Tk={t_k}"
            label = f"B={b}, {size}, d={d}, dv={d_v}, causal {'on' if causal else 'off'}"
            return Case(
                label=label,
                args={
                    "dout": rng.standard_normal((b, t_q, d_v)),
                    "q": rng.standard_normal((b, t_q, d)),
                    "k": rng.standard_normal((b, t_k, d)),
                    "v": rng.standard_normal((b, t_k, d_v)),
                    "causal": causal,
                },
                edge=causal or t_q != t_k,
            )

        return [
            case(2, 4, 4, d=3, d_v=2, causal=False),
            case(2, 5, 5, d=4, d_v=3, causal=True),
            case(3, 3, 5, d=2, d_v=4, causal=False),
            case(2, 3, 5, d=3, d_v=2, causal=True),
        ]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return attention_forward(args["q"], args["k"], args["v"], causal=args["causal"])

    def mistake_models(self) -> list[MistakeModel]:
        def unscaled(case: Case) -> dict[str, Any]:
            return self.reference_with(
                case, lambda a: attention_forward(a["q"], a["k"], a["v"], causal=a["causal"], scaled=False)
            )

        def unscaled_backward_only(case: Case) -> dict[str, Any]:
            expected = self.reference(case)
            root_d = math.sqrt(case.args["q"].shape[-1])
            return {"dq": expected["dq"] * root_d, "dk": expected["dk"] * root_d}

        def unmasked(case: Case) -> dict[str, Any] | None:
            if not case.args["causal"]:
                return None
            return self.reference_with(case, lambda a: attention_forward(a["q"], a["k"], a["v"], causal=False))

        def with_softmax_slip(slip: SoftmaxSlip) -> Callable[[Case], dict[str, Any]]:
            def compute(case: Case) -> dict[str, Any]:
                softmax = slipped_softmax(slip)
                return self.reference_with(
                    case, lambda a: attention_forward(a["q"], a["k"], a["v"], causal=a["causal"], softmax=softmax)
                )

            return compute

        def dk_from_untransposed(case: Case) -> dict[str, Any] | None:
            q = case.args["q"]
            if q.shape[1] != case.args["k"].shape[1]:
                return None  # ds @ q does not even have dk's shape
            return {"dk": _score_gradient(case) @ q / math.sqrt(q.shape[-1])}

        return [
            MistakeModel(
                Mistake.WRONG_MASK,
                title="{output}: the causal mask is applied after the softmax",
                why="{output} matches attention whose weights are zeroed for future keys after the softmax, so "
                "each row no longer sums to 1. Masked scores are set to -inf before the softmax, which "
                "then normalizes over the visible keys only.",
                compute=lambda case: masked_by_hand(case, "after softmax"),
            ),
            MistakeModel(
                Mistake.WRONG_MASK,
                title="{output}: the causal mask also hides the diagonal",
                why="{output} matches a mask where query i does not see key i itself (np.triu with k=0); a "
                "query sees every key j <= i, its own position included.",
                compute=lambda case: masked_by_hand(case, "diagonal hidden"),
            ),
            MistakeModel(
                Mistake.WRONG_MASK,
                title="{output}: the causal mask hides the past instead of the future",
                why="{output} matches a mask that hides keys j < i (the lower triangle) where the keys j > i "
                "are to be hidden: the mask is transposed.",
                compute=lambda case: masked_by_hand(case, "past hidden"),
            ),
            MistakeModel(
                Mistake.ATTENTION_SCALE_MISSING,
                title="{output} is missing the 1/sqrt(d) scale",
                why="{output} matches attention computed on raw scores q k^T, without dividing by sqrt(d).",
                compute=unscaled,
            ),
            MistakeModel(
                Mistake.ATTENTION_SCALE_MISSING,
                title="{output} is missing the 1/sqrt(d) factor of the chain rule",
                why="{output} is sqrt(d) times too large: the scores were divided by sqrt(d) in the forward "
                "pass, so their gradient must be too.",
                compute=unscaled_backward_only,
                outputs=("dq", "dk"),
            ),
            MistakeModel(
                Mistake.CAUSAL_MASK_IGNORED,
                title="{output} ignores the causal mask",
                why="{output} matches attention in which every query also sees the keys after it; with "
                "causal=True key j > query i must get zero weight.",
                compute=unmasked,
            ),
            MistakeModel(
                Mistake.WRONG_DERIVATIVE,
                title="{output} uses only the diagonal of the softmax Jacobian",
                why="{output} matches ds = p * dp, which treats the softmax as element-wise; the "
                "-p * sum(p * dp) term, from the normalisation shared by a row, is missing.",
                compute=softmax_diagonal_only,
                outputs=("dq", "dk"),
            ),
            *(
                MistakeModel(Mistake.WRONG_DERIVATIVE, title, why, with_softmax_slip(slip), outputs=("dq", "dk"))
                for slip, title, why in SOFTMAX_SLIPS
            ),
            MistakeModel(
                Mistake.TRANSPOSED,
                title="dk is computed from ds instead of its transpose",
                why="dk matches ds @ q; since scores = q @ k^T, the gradient of k is ds^T @ q.",
                compute=dk_from_untransposed,
                outputs=("dk",),
            ),
        ]

    def training(self) -> TrainingSetup:
        n, t, d_in, d, d_out = 6, 5, 3, 4, 2

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {
                "w_q": rng.standard_normal((d_in, d)) / np.sqrt(d_in),
                "w_k": rng.standard_normal((d_in, d)) / np.sqrt(d_in),
                "w_v": rng.standard_normal((d_in, d)) / np.sqrt(d_in),
                "w_head": rng.standard_normal((d, d_out)) / np.sqrt(d),
                "b_head": np.zeros(d_out),
            }

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, t, d_in))
            # Target at each position: a running mean of the sequence so far, seen through a fixed map.
            running = np.cumsum(x, axis=1) / np.arange(1, t + 1)[None, :, None]
            return {"x": x, "target": np.tanh(running @ rng.standard_normal((d_in, d_out)))}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            x = batch["x"]
            h = layer(q=x @ params["w_q"], k=x @ params["w_k"], v=x @ params["w_v"], causal=True)
            out = h @ params["w_head"] + params["b_head"]
            return ((out - batch["target"]) ** 2).mean()

        return TrainingSetup(
            steps=20,
            lr=0.3,
            init=init,
            data=data,
            loss=loss,
            description="causal self-attention (3 -> 4, learned q, k, v projections) -> Linear(4, 2) per position "
            "on sequences of 5, MSE loss",
        )
