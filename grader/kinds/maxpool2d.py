"""maxpool2d-backward: max over pool x pool windows every `stride` pixels, inputs without ties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grader.diagnosis import Mistake
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup

# Neighbouring input values differ by at least this much, far above the central-difference
# step, so no perturbation can change which element of a window is the maximum.
VALUE_SPACING = 0.05


def distinct_values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A random arrangement of well-separated values: no two elements are equal (no ties)."""
    size = int(np.prod(shape))
    ranks = rng.permutation(size).astype(np.float64)
    jitter = rng.uniform(0.0, VALUE_SPACING / 4, size)
    return ((ranks - size / 2) * VALUE_SPACING + jitter).reshape(shape)


def _route(
    case: Case,
    *,
    position: Callable[[int, int], tuple[int, int]],
    accumulate: bool,
    pick: Callable[[np.ndarray], Any] = np.argmax,
    corner_stride: int | None = None,
    size: int | None = None,
) -> np.ndarray:
    """dx when each window's gradient goes to `position(row, col)` of its argmax, added or overwritten.

    `pick` chooses the element (np.argmin for the minimum); `corner_stride` places the corner of
    window (y, z) at (y * corner_stride, z * corner_stride) when routing (the window is still read
    at the stride), as when the offset forgets the stride. `size` reads windows of that many rows and
    columns instead of `pool` (a window one short, from an off-by-one slice).
    """
    x, dout = case.args["x"], case.args["dout"]
    stride = case.args["stride"]
    pool = case.args["pool"] if size is None else size
    dx = np.zeros_like(x)
    n, c, h_out, w_out = dout.shape
    for b in range(n):
        for ch in range(c):
            for y in range(h_out):
                for z in range(w_out):
                    window = x[b, ch, y * stride : y * stride + pool, z * stride : z * stride + pool]
                    row, col = position(*divmod(int(pick(window)), pool))
                    step = stride if corner_stride is None else corner_stride
                    target = (b, ch, y * step + row, z * step + col)
                    dx[target] = dx[target] + dout[b, ch, y, z] if accumulate else dout[b, ch, y, z]
    return dx


@register
class MaxPool2dBackward(Kind):
    slug = "maxpool2d-backward"
    function_name = "maxpool2d_backward"
    arg_names = ("dout", "x", "pool", "stride")
    outputs = (Output("dx", of="x"),)
    lesson_slug = "cnn-architecture"
    lesson_section = "max-pool-backward"
    hints = {
        Mistake.WRONG_MASK: "Only the maximum of a window influences the output, so only that element gets "
        "the window's gradient; the others get zero.",
        Mistake.POOL_WRONG_POSITION: "Convert the argmax of a window into (row, col) with np.unravel_index "
        "or divmod(index, pool), offset it by the window's corner, and add (+=) into dx: overlapping windows "
        "can share a maximum.",
        Mistake.STRIDE_IGNORED: "Window (y, z) starts at row y * stride and column z * stride.",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(n: int, c: int, hw: tuple[int, int], *, pool: int, stride: int, note: str = "") -> Case:
            h, w = hw
            h_out, w_out = (h - pool) // stride + 1, (w - pool) // stride + 1
            x = distinct_values(rng, (n, c, h, w))
            if stride < pool:
                # Overlapping windows: put the largest value of the first channel where two
                # windows overlap, so a maximum is shared and the gradients must add up.
                flat = x[0, 0].reshape(-1)
                shared = np.ravel_multi_index((stride, stride), (h, w))
                top = int(flat.argmax())
                flat[top], flat[shared] = flat[shared], flat[top]
            label = f"N={n}, C={c}, {h}x{w} input, pool {pool}, stride {stride}{note}"
            return Case(
                label=label,
                args={"dout": rng.standard_normal((n, c, h_out, w_out)), "x": x, "pool": pool, "stride": stride},
                edge=stride != pool,
            )

        return [
            case(2, 2, (4, 6), pool=2, stride=2),
            case(2, 3, (5, 7), pool=3, stride=2, note=" (overlapping windows)"),
            case(2, 2, (5, 4), pool=2, stride=1, note=" (overlapping windows)"),
            case(3, 1, (7, 6), pool=3, stride=3, note=" (the last row is not covered)"),
        ]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return F.max_pool2d(args["x"], args["pool"], stride=args["stride"])

    def mistake_models(self) -> list[MistakeModel]:
        def whole_window(scale_by_area: bool) -> Callable[[Case], dict[str, Any]]:
            def compute(case: Case) -> dict[str, Any]:
                pool = case.args["pool"]
                factor = 1.0 if scale_by_area else float(pool * pool)

                def forward(a: dict[str, Any]) -> torch.Tensor:
                    return factor * F.avg_pool2d(a["x"], pool, stride=a["stride"])

                return self.reference_with(case, forward)

            return compute

        def swapped(case: Case) -> dict[str, Any]:
            return {"dx": _route(case, position=lambda row, col: (col, row), accumulate=True)}

        def overwritten(case: Case) -> dict[str, Any] | None:
            if case.args["stride"] >= case.args["pool"]:
                return None
            return {"dx": _route(case, position=lambda row, col: (row, col), accumulate=False)}

        def to_minimum(case: Case) -> dict[str, Any]:
            return {"dx": _route(case, position=lambda row, col: (row, col), accumulate=True, pick=np.argmin)}

        def corner_without_stride(case: Case) -> dict[str, Any] | None:
            if case.args["stride"] == 1:
                return None
            return {"dx": _route(case, position=lambda row, col: (row, col), accumulate=True, corner_stride=1)}

        def window_short(case: Case) -> dict[str, Any] | None:
            if case.args["pool"] < 2:
                return None
            short = case.args["pool"] - 1
            return {"dx": _route(case, position=lambda row, col: (row, col), accumulate=True, size=short)}

        def stride_one(case: Case) -> dict[str, Any] | None:
            if case.args["stride"] == 1:
                return None
            h_out, w_out = case.args["dout"].shape[2:]

            def forward(a: dict[str, Any]) -> torch.Tensor:
                return F.max_pool2d(a["x"], a["pool"], stride=1)[:, :, :h_out, :w_out]

            return self.reference_with(case, forward)

        whole_window_why = (
            "dx spreads each window's gradient over every element of the window, as average pooling "
            "does; in max pooling only the maximum affects the output."
        )
        return [
            MistakeModel(
                Mistake.WRONG_MASK,
                title="dx goes to the whole window, not to its maximum",
                why=whole_window_why,
                compute=whole_window(scale_by_area=True),
            ),
            MistakeModel(
                Mistake.WRONG_MASK,
                title="dx goes to the whole window, not to its maximum",
                why=whole_window_why,
                compute=whole_window(scale_by_area=False),
            ),
            MistakeModel(
                Mistake.POOL_WRONG_POSITION,
                title="dx is routed to the mirrored position in each window",
                why="dx puts each window's gradient at (col, row) of its maximum instead of (row, col): "
                "the flat argmax was unravelled in the wrong order.",
                compute=swapped,
            ),
            MistakeModel(
                Mistake.POOL_WRONG_POSITION,
                title="dx loses gradients where windows overlap",
                why="When overlapping windows share a maximum, dx keeps only the last window's gradient: "
                "the gradients were assigned (=) instead of added (+=).",
                compute=overwritten,
            ),
            MistakeModel(
                Mistake.POOL_WRONG_POSITION,
                title="dx is routed to the minimum of each window",
                why="dx puts each window's gradient at the position of its smallest element: the output of max "
                "pooling is the largest one, and only it receives the gradient.",
                compute=to_minimum,
            ),
            MistakeModel(
                Mistake.POOL_WRONG_POSITION,
                title="dx: the window's corner is placed without the stride",
                why="Each window's maximum is found in the right window, but its gradient lands at (y + row, "
                "z + col): window (y, z) starts at row y * stride and column z * stride, in dx as in x.",
                compute=corner_without_stride,
            ),
            MistakeModel(
                Mistake.POOL_WRONG_POSITION,
                title="dx: each window is one row and one column short",
                why="dx matches windows of pool - 1 rows and columns (an off-by-one slice such as "
                "y * stride : y * stride + pool - 1): a maximum on the window's last row or column is "
                "missed, and the gradient goes to the largest of the rest.",
                compute=window_short,
            ),
            MistakeModel(
                Mistake.STRIDE_IGNORED,
                title="dx ignores the stride",
                why="dx matches windows placed every pixel; with stride s window (y, z) starts at (y * s, z * s).",
                compute=stride_one,
            ),
        ]

    def training(self) -> TrainingSetup:
        n, size, channels, classes = 8, 6, 3, 2
        features = channels * 3 * 3

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {
                "w": rng.standard_normal((channels, 1, 3, 3)) / 3.0,
                "b": 0.1 * rng.standard_normal(channels),
                "w_head": rng.standard_normal((features, classes)) / np.sqrt(features),
                "b_head": np.zeros(classes),
            }

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            images = rng.standard_normal((n, 1, size, size))
            labels = rng.integers(0, classes, n)
            for i, label in enumerate(labels):
                images[i, 0, 3 * label : 3 * label + 3, 1:4] += 1.5  # bright block on top or bottom
            return {"x": images, "target": np.eye(classes)[labels]}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            # No ReLU before the pool: its zeros would tie inside windows.
            h = F.conv2d(batch["x"], params["w"], params["b"], padding=1)
            h = torch.tanh(layer(x=h, pool=2, stride=2))
            out = h.flatten(1) @ params["w_head"] + params["b_head"]
            return ((out - batch["target"]) ** 2).mean()

        return TrainingSetup(
            steps=20,
            lr=0.2,
            init=init,
            data=data,
            loss=loss,
            description="Conv(1->3, 3x3, pad 1) -> MaxPool(2, stride 2) -> tanh -> Linear(27, 2) on 6x6 images, "
            "MSE loss",
        )
