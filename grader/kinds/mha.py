"""multihead-attention-backward: self-attention with contiguous head slices, no bias, no mask."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from grader.diagnosis import Diagnosis, Mistake, matches, worst_elements
from grader.kinds import register
from grader.kinds.attention import SOFTMAX_SLIPS, SoftmaxSlip, slipped_softmax
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

# How the (B, T, E) projections are cut into heads: "contiguous" is the definition
# (head h = columns h*d : (h+1)*d); the other two are the learners' usual slips.
HeadLayout = Literal["contiguous", "strided", "no_transpose"]
# What the scores are divided by: sqrt(head size) is the definition; sqrt(E) and nothing are mistakes.
ScoreScale = Literal["head", "width", "none"]


def split_heads(a: torch.Tensor, num_heads: int, layout: HeadLayout = "contiguous") -> torch.Tensor:
    """(B, T, E) -> (B, H, T, d)."""
    b, t, e = a.shape
    d = e // num_heads
    if layout == "contiguous":
        return a.reshape(b, t, num_heads, d).transpose(1, 2)
    if layout == "strided":  # head h = columns h, h + H, h + 2H, ...
        return a.reshape(b, t, d, num_heads).permute(0, 3, 1, 2)
    return a.reshape(b, num_heads, t, d)  # reshaped without moving the head axis: mixes positions


def merge_heads(a: torch.Tensor, layout: HeadLayout = "contiguous") -> torch.Tensor:
    """(B, H, T, d) -> (B, T, E), the inverse of `split_heads` with the same layout."""
    b, h, t, d = a.shape
    if layout == "contiguous":
        return a.transpose(1, 2).reshape(b, t, h * d)
    if layout == "strided":
        return a.permute(0, 2, 3, 1).reshape(b, t, h * d)
    return a.reshape(b, t, h * d)


def heads_concat(
    x: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
    num_heads: int,
    *,
    layout: HeadLayout = "contiguous",
    scale: ScoreScale = "head",
    softmax: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """concat(head_1, ..., head_H), (B, T, E), before the output projection."""
    q, k, v = (split_heads(x @ w, num_heads, layout) for w in (w_q, w_k, w_v))
    scores = q @ k.transpose(-1, -2)
    if scale == "head":
        scores = scores / math.sqrt(q.shape[-1])
    elif scale == "width":
        scores = scores / math.sqrt(x.shape[-1])
    weights = softmax(scores) if softmax is not None else torch.softmax(scores, dim=-1)
    return merge_heads(weights @ v, layout)


def mha_forward(
    args: dict[str, Any],
    *,
    layout: HeadLayout = "contiguous",
    scale: ScoreScale = "head",
    softmax: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    concat = heads_concat(
        args["x"], args["w_q"], args["w_k"], args["w_v"], args["num_heads"], layout=layout, scale=scale, softmax=softmax
    )
    return concat @ args["w_o"]


PATHS = {"q": "queries", "k": "keys", "v": "values"}


def dx_by_path(case: Case) -> dict[str, np.ndarray]:
    """What comes back to x along each of its three uses (x @ w_q, x @ w_k, x @ w_v); dx is their sum."""
    args = case.args
    xs = {path: torch.tensor(args["x"], requires_grad=True) for path in PATHS}
    q, k, v = (split_heads(xs[path] @ torch.tensor(args[f"w_{path}"]), args["num_heads"]) for path in PATHS)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    out = merge_heads(torch.softmax(scores, dim=-1) @ v) @ torch.tensor(args["w_o"])
    out.backward(torch.tensor(args["dout"]))
    return {path: tensor.grad.numpy() for path, tensor in xs.items() if tensor.grad is not None}


def dx_path_models() -> list[MistakeModel]:
    """dx with one of x's three paths left out, or with one path only: gradients add where x is used thrice."""
    models = []
    # The six models read one autograd run per case: they are evaluated one after another for a case.
    last: list[tuple[Case, dict[str, np.ndarray]]] = []

    def paths_of(case: Case) -> dict[str, np.ndarray]:
        entry = last[0] if last else None
        if entry is None or entry[0] is not case:
            entry = (case, dx_by_path(case))
            last[:] = [entry]
        return entry[1]

    for left_out, name in PATHS.items():
        others = [path for path in PATHS if path != left_out]

        def without(case: Case, others: list[str] = others) -> dict[str, Any]:
            paths = paths_of(case)
            return {"dx": sum(paths[path] for path in others)}

        def only(case: Case, path: str = left_out) -> dict[str, Any]:
            return {"dx": paths_of(case)[path]}

        models.append(
            MistakeModel(
                Mistake.MISSING_CHAIN_RULE,
                title=f"dx misses the path through the {name}",
                why=f"dx matches the gradients that come back through the {PATHS[others[0]]} and the "
                f"{PATHS[others[1]]} only. x is used three times (x @ w_q, x @ w_k, x @ w_v): its gradient "
                "adds what comes back along every use.",
                compute=without,
                outputs=("dx",),
            )
        )
        models.append(
            MistakeModel(
                Mistake.MISSING_CHAIN_RULE,
                title=f"dx keeps only the path through the {name}",
                why=f"dx matches the gradient that comes back through the {name} alone. x is used three times "
                "(x @ w_q, x @ w_k, x @ w_v): its gradient adds what comes back along every use.",
                compute=only,
                outputs=("dx",),
            )
        )
    return models


@register
class MultiheadAttentionBackward(Kind):
    slug = "multihead-attention-backward"
    function_name = "mha_backward"
    arg_names = ("dout", "x", "w_q", "w_k", "w_v", "w_o", "num_heads")
    outputs = (
        Output("dx", of="x"),
        Output("dw_q", of="w_q"),
        Output("dw_k", of="w_k"),
        Output("dw_v", of="w_v"),
        Output("dw_o", of="w_o"),
    )
    lesson_slug = "attention-mechanisms"
    lesson_section = "multi-head-attention-backward"
    hints = {
        Mistake.HEADS_MIXED: "Head h owns the contiguous columns h*d : (h+1)*d: reshape (B, T, E) to "
        "(B, T, H, d) and then swap the T and H axes; undo both steps, in reverse order, to merge.",
        Mistake.ATTENTION_SCALE_MISSING: "Each head divides its scores by sqrt(d), the head size (E / H), "
        "not sqrt(E); the same factor multiplies dq and dk.",
        Mistake.MISSING_CHAIN_RULE: "out = concat @ w_o, so the heads receive dout @ w_o^T, not dout.",
        Mistake.TRANSPOSED: "out = concat @ w_o: the gradient of concat is dout @ w_o.T and dw_o = concat^T @ dout.",
    }
    # A projection weight's gradient transposed: its own hint, since w_o has nothing to do with it.
    projection_transposed_hint = (
        "{name} = x @ {weight}, a linear layer applied at every position: {grad} = x^T @ d{name} summed over the "
        "batch, shape (E, E) with the input features of x on the rows. d{name} @ x^T (or {grad}.T) exchanges them."
    )

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(b: int, t: int, e: int, heads: int, *, edge: bool = False) -> Case:
            label = f"B={b}, T={t}, E={e}, {heads} heads of size {e // heads}"

            def weight() -> np.ndarray:
                return rng.standard_normal((e, e)) / np.sqrt(e)

            return Case(
                label=label,
                args={
                    "dout": rng.standard_normal((b, t, e)),
                    "x": rng.standard_normal((b, t, e)),
                    "w_q": weight(),
                    "w_k": weight(),
                    "w_v": weight(),
                    "w_o": weight(),
                    "num_heads": heads,
                },
                edge=edge,
            )

        return [
            case(2, 3, 4, 2),
            case(2, 5, 6, 3),
            case(3, 4, 6, 2, edge=True),
            case(2, 6, 8, 4, edge=True),
        ]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return mha_forward(args)

    def mistake_models(self) -> list[MistakeModel]:
        def with_layout(layout: HeadLayout) -> Callable[[Case], dict[str, Any]]:
            def compute(case: Case) -> dict[str, Any]:
                return self.reference_with(case, lambda a: mha_forward(a, layout=layout))

            return compute

        def scaled_by(scale: ScoreScale) -> Callable[[Case], dict[str, Any]]:
            def compute(case: Case) -> dict[str, Any]:
                return self.reference_with(case, lambda a: mha_forward(a, scale=scale))

            return compute

        def with_softmax_slip(slip: SoftmaxSlip) -> Callable[[Case], dict[str, Any]]:
            def compute(case: Case) -> dict[str, Any]:
                softmax = slipped_softmax(slip)
                return self.reference_with(case, lambda a: mha_forward(a, softmax=softmax))

            return compute

        def concat_upstream(transform: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Any:
            """Gradients of the inputs when the heads receive transform(dout, w_o) instead of dout @ w_o.T."""

            def compute(case: Case) -> dict[str, Any]:
                upstream = transform(case.args["dout"], case.args["w_o"])
                result = self.reference_with(
                    case,
                    lambda a: heads_concat(a["x"], a["w_q"], a["w_k"], a["w_v"], a["num_heads"]),
                    upstream=upstream,
                )
                result.pop("dw_o")
                return result

            return compute

        def dw_o_transposed(case: Case) -> dict[str, Any]:
            return {"dw_o": self.reference(case)["dw_o"].T.copy()}

        heads_why = (
            "{output} matches multi-head attention whose heads are cut from the wrong columns or positions; "
            "head h must use the contiguous columns h*d : (h+1)*d of q, k and v at every position."
        )
        softmax_slips = [(slip, title, why) for slip, title, why in SOFTMAX_SLIPS]
        softmax_slips.append(
            (
                "diagonal",
                "{output} uses only the diagonal of the softmax Jacobian",
                "{output} matches heads whose softmax backward is ds = p * dp, as if the softmax were element-wise; "
                "the -p * sum(p * dp) term, from the normalisation shared by a row, is missing.",
            )
        )
        return [
            *(
                MistakeModel(
                    Mistake.WRONG_DERIVATIVE, title, why, with_softmax_slip(slip), outputs=("dx", "dw_q", "dw_k")
                )
                for slip, title, why in softmax_slips
            ),
            MistakeModel(
                Mistake.HEADS_MIXED,
                title="{output}: the heads are mixed up",
                why=heads_why,
                compute=with_layout("strided"),
                outputs=("dx", "dw_q", "dw_k", "dw_v", "dw_o"),
            ),
            MistakeModel(
                Mistake.HEADS_MIXED,
                title="{output}: the heads are mixed up",
                why=heads_why,
                compute=with_layout("no_transpose"),
            ),
            MistakeModel(
                Mistake.ATTENTION_SCALE_MISSING,
                title="{output} is missing the 1/sqrt(d) scale",
                why="{output} matches heads that score with q k^T instead of q k^T / sqrt(d).",
                compute=scaled_by("none"),
            ),
            MistakeModel(
                Mistake.ATTENTION_SCALE_MISSING,
                title="{output} uses the scale 1/sqrt(E) instead of 1/sqrt(d)",
                why="{output} matches heads that divide their scores by the square root of the model width E; "
                "each head scores with its own size d = E / num_heads, so the scale is 1/sqrt(d).",
                compute=scaled_by("width"),
            ),
            MistakeModel(
                Mistake.MISSING_CHAIN_RULE,
                title="{output} skips the output projection",
                why="{output} matches heads that received dout itself; out = concat @ w_o, so the chain "
                "rule gives the heads dout @ w_o^T.",
                compute=concat_upstream(lambda dout, w_o: dout),
                outputs=("dx", "dw_q", "dw_k", "dw_v"),
            ),
            MistakeModel(
                Mistake.TRANSPOSED,
                title="{output} goes through w_o instead of its transpose",
                why="{output} matches heads that received dout @ w_o; the gradient of concat is dout @ w_o^T.",
                compute=concat_upstream(lambda dout, w_o: dout @ w_o),
                outputs=("dx", "dw_q", "dw_k", "dw_v"),
            ),
            MistakeModel(
                Mistake.TRANSPOSED,
                title="dw_o is transposed",
                why="dw_o matches dout^T @ concat; for out = concat @ w_o it is concat^T @ dout.",
                compute=dw_o_transposed,
                outputs=("dw_o",),
            ),
            *dx_path_models(),
        ]

    def likely_mistakes(self, case: Case, output_name: str, expected: Any, got: Any) -> list[Diagnosis]:
        """dw_q, dw_k or dw_v transposed: named with a hint about that projection, not about w_o."""
        projections = {"dw_q": "q", "dw_k": "k", "dw_v": "v"}
        if output_name not in projections or not isinstance(got, np.ndarray) or got.dtype.kind != "f":
            return []
        expected = np.asarray(expected, dtype=np.float64)
        if got.shape != expected.T.shape or np.allclose(expected, expected.T) or not matches(got, expected.T):
            return []
        name = projections[output_name]
        return [
            Diagnosis(
                output=output_name,
                mistake=Mistake.TRANSPOSED,
                title=f"{output_name} is transposed",
                why=f"{output_name} equals the transpose of the expected gradient: its rows belong to the output "
                f"features of {name} and its columns to the input features of x, the other way round.",
                worst=worst_elements(expected, got),
                hint=self.projection_transposed_hint.format(name=name, weight=f"w_{name}", grad=output_name),
                lesson_url=self.lesson_url(),
            )
        ]

    def training(self) -> TrainingSetup:
        n, t, d_in, e, heads, d_out = 6, 4, 3, 4, 2, 2

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            params = {name: rng.standard_normal((e, e)) / np.sqrt(e) for name in ("w_q", "w_k", "w_v", "w_o")}
            params["w_in"] = rng.standard_normal((d_in, e)) / np.sqrt(d_in)
            params["w_head"] = rng.standard_normal((e, d_out)) / np.sqrt(e)
            params["b_head"] = np.zeros(d_out)
            return params

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            x = rng.standard_normal((n, t, d_in))
            # Each sequence's target depends on how its tokens relate to one another.
            target = np.tanh((x[:, :1] * x).sum(axis=-1) @ rng.standard_normal((t, d_out)) / 2.0)
            return {"x": x, "target": target}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            # A learned embedding before the block, so the learner's dx is used too.
            h = layer(
                x=batch["x"] @ params["w_in"],
                w_q=params["w_q"],
                w_k=params["w_k"],
                w_v=params["w_v"],
                w_o=params["w_o"],
                num_heads=heads,
            )
            out = h.mean(dim=1) @ params["w_head"] + params["b_head"]
            return ((out - batch["target"]) ** 2).mean()

        return TrainingSetup(
            steps=20,
            lr=0.1,
            init=init,
            data=data,
            loss=loss,
            description="Linear(3, 4) -> multi-head self-attention (E=4, 2 heads) -> mean over positions "
            "-> Linear(4, 2), MSE loss",
        )
