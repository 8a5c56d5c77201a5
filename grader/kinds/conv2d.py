"""conv2d-backward: PyTorch-style 2-D cross-correlation with stride and zero padding."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grader.diagnosis import Diagnosis, Mistake, worst_elements
from grader.gradcheck import rel_error
from grader.kinds import register
from grader.kinds.base import Case, Kind, LayerFn, MistakeModel, Output, TrainingSetup


def output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


@register
class Conv2dBackward(Kind):
    slug = "conv2d-backward"
    function_name = "conv2d_backward"
    arg_names = ("dout", "x", "w", "b", "stride", "pad")
    outputs = (Output("dx", of="x"), Output("dw", of="w"), Output("db", of="b"))
    lesson_slug = "cnn-architecture"
    lesson_section = "convolution-backward"
    hints = {
        Mistake.STRIDE_IGNORED: "Output position (y, x) reads the input window whose top-left corner is "
        "(y * stride, x * stride); use the same positions when you send gradients back.",
        Mistake.PADDING_IGNORED: "Compute the gradient of the padded input, then drop `pad` rows and columns on "
        "every side: dx = dx_pad[:, :, pad:pad + H, pad:pad + W].",
        Mistake.FLIPPED_KERNEL: "Decide which form you are writing. Sending each output's gradient back to the "
        "window it read (a scatter) uses the kernel exactly as the forward did, with no rotation; the 180-degree "
        "rotation belongs only to the other form, a full correlation of the zero-padded dout with the kernel.",
        Mistake.TRANSPOSED: "Keep the kernel's axes in the order (F, C, kernel rows, kernel columns) in every "
        "product: w[f, c, i, j] multiplies the input pixel i rows down and j columns right of the window's corner, "
        "and a gradient has the axes of the array it belongs to.",
        Mistake.BIAS_NOT_SUMMED: "Each bias is added at every position of every example: db sums dout over the "
        "batch and both spatial axes, axis=(0, 2, 3).",
    }

    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        def case(
            n: int, c: int, hw: tuple[int, int], *, f: int, kernel: tuple[int, int], stride: int, pad: int
        ) -> Case:
            h, w = hw
            h_out, w_out = output_size(h, kernel[0], stride, pad), output_size(w, kernel[1], stride, pad)
            label = f"N={n}, C={c}, {h}x{w} input, F={f}, {kernel[0]}x{kernel[1]} kernel, stride {stride}, pad {pad}"
            return Case(
                label=label,
                args={
                    "dout": rng.standard_normal((n, f, h_out, w_out)),
                    "x": rng.standard_normal((n, c, h, w)),
                    "w": rng.standard_normal((f, c, *kernel)) / np.sqrt(c * kernel[0] * kernel[1]),
                    "b": rng.standard_normal(f),
                    "stride": stride,
                    "pad": pad,
                },
                edge=stride > 1 or pad > 0,
            )

        return [
            case(2, 3, (5, 6), f=2, kernel=(3, 3), stride=1, pad=0),
            case(2, 2, (7, 5), f=3, kernel=(3, 2), stride=2, pad=1),
            case(3, 1, (6, 6), f=2, kernel=(3, 3), stride=2, pad=0),
            case(2, 2, (4, 5), f=2, kernel=(2, 3), stride=1, pad=1),
        ]

    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        return F.conv2d(args["x"], args["w"], args["b"], stride=args["stride"], padding=args["pad"])

    def mistake_models(self) -> list[MistakeModel]:
        def stride_one(case: Case) -> dict[str, Any] | None:
            if case.args["stride"] == 1:
                return None
            h_out, w_out = case.args["dout"].shape[2:]

            def forward(a: dict[str, Any]) -> torch.Tensor:
                out = F.conv2d(a["x"], a["w"], a["b"], stride=1, padding=a["pad"])
                return out[:, :, :h_out, :w_out]

            result = self.reference_with(case, forward)
            return {"dx": result["dx"], "dw": result["dw"]}

        def cropped_at_corner(case: Case) -> dict[str, Any] | None:
            pad = case.args["pad"]
            if pad == 0:
                return None
            x = torch.tensor(np.pad(case.args["x"], ((0, 0), (0, 0), (pad, pad), (pad, pad))), requires_grad=True)
            w, b = torch.tensor(case.args["w"]), torch.tensor(case.args["b"])
            out = F.conv2d(x, w, b, stride=case.args["stride"])
            (dx_pad,) = torch.autograd.grad((out * torch.tensor(case.args["dout"])).sum(), [x])
            h, wd = case.args["x"].shape[2:]
            return {"dx": dx_pad.numpy()[:, :, :h, :wd].copy()}

        def flipped_kernel(case: Case) -> dict[str, Any]:
            def forward(a: dict[str, Any]) -> torch.Tensor:
                return F.conv2d(a["x"], a["w"].flip(2, 3), a["b"], stride=a["stride"], padding=a["pad"])

            dx = self.reference_with(case, forward)["dx"]
            dw = self.reference(case)["dw"][:, :, ::-1, ::-1].copy()
            return {"dx": dx, "dw": dw}

        def transposed_kernel(case: Case) -> dict[str, Any] | None:
            kernel = case.args["w"]
            if kernel.shape[2] != kernel.shape[3]:
                return None  # a non-square kernel cannot be used transposed without a shape error

            def forward(a: dict[str, Any]) -> torch.Tensor:
                return F.conv2d(a["x"], a["w"].transpose(2, 3), a["b"], stride=a["stride"], padding=a["pad"])

            dx = self.reference_with(case, forward)["dx"]
            dw = self.reference(case)["dw"].transpose(0, 1, 3, 2).copy()
            return {"dx": dx, "dw": dw}

        def channels_swapped(case: Case) -> dict[str, Any] | None:
            kernel = case.args["w"]
            if kernel.shape[0] != kernel.shape[1]:
                return None

            def forward(a: dict[str, Any]) -> torch.Tensor:
                return F.conv2d(a["x"], a["w"].transpose(0, 1), a["b"], stride=a["stride"], padding=a["pad"])

            return {"dx": self.reference_with(case, forward)["dx"]}

        def overwritten(case: Case) -> dict[str, Any] | None:
            """dx and dw of the usual loops (n, f, window row, window column) with = where += belongs."""
            x, kernel, dout = case.args["x"], case.args["w"], case.args["dout"]
            stride, pad = case.args["stride"], case.args["pad"]
            filters, _, rows, cols = kernel.shape
            h_out, w_out = dout.shape[2:]
            x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            dx_pad = np.zeros_like(x_pad)
            dw = np.zeros_like(kernel)
            for n in range(x.shape[0]):
                for f in range(filters):
                    for i in range(h_out):
                        for j in range(w_out):
                            window = (slice(i * stride, i * stride + rows), slice(j * stride, j * stride + cols))
                            dx_pad[(n, slice(None), *window)] = kernel[f] * dout[n, f, i, j]
                            dw[f] = x_pad[(n, slice(None), *window)] * dout[n, f, i, j]
            h, wd = x.shape[2:]
            return {"dx": dx_pad[:, :, pad : pad + h, pad : pad + wd].copy(), "dw": dw}

        def one_example(index: int) -> Any:
            def compute(case: Case) -> dict[str, Any]:
                return {"db": case.args["dout"][index].sum(axis=(1, 2))}

            return compute

        one_example_why = (
            "db equals the sum of dout over the spatial positions of a single example: "
            "the batch axis must be summed too."
        )
        return [
            MistakeModel(
                Mistake.STRIDE_IGNORED,
                title="{output} ignores the stride",
                why="{output} matches a convolution whose windows move one pixel at a time; with stride s "
                "output (y, x) reads the window at (y * s, x * s).",
                compute=stride_one,
                outputs=("dx", "dw"),
            ),
            MistakeModel(
                Mistake.PADDING_IGNORED,
                title="dx is cropped from the wrong place",
                why="dx matches the gradient of the padded input cut at its top-left corner; the padding "
                "rows and columns lie on every side, so the real input starts at (pad, pad).",
                compute=cropped_at_corner,
                outputs=("dx",),
            ),
            MistakeModel(
                Mistake.FLIPPED_KERNEL,
                title="{output} uses the kernel rotated by 180 degrees",
                why="{output} matches a true convolution (kernel flipped in both spatial axes); the forward "
                "pass here is a cross-correlation, as in PyTorch, so the scatter form of the backward pass "
                "uses the kernel unrotated.",
                compute=flipped_kernel,
                outputs=("dx", "dw"),
            ),
            MistakeModel(
                Mistake.TRANSPOSED,
                title="{output} uses the kernel with its rows and columns swapped",
                why="{output} matches a convolution whose kernel is transposed in its two spatial axes "
                "(w[f, c, j, i] where w[f, c, i, j] belongs): rows and columns of the window are exchanged.",
                compute=transposed_kernel,
                outputs=("dx", "dw"),
            ),
            MistakeModel(
                Mistake.TRANSPOSED,
                title="{output} swaps the kernel's filter and channel axes",
                why="{output} matches a backward pass that reads w[c, f] where w[f, c] belongs: the kernel is "
                "stored (F, C, rows, columns), output channel first.",
                compute=channels_swapped,
                outputs=("dx",),
            ),
            MistakeModel(
                Mistake.OVERWRITTEN_NOT_ADDED,
                title="{output} keeps only the last window's term",
                why="{output} matches loops that assign (=) each window's gradient where it must be added (+=): "
                "an entry reached by several windows, filters or examples keeps only the last one written.",
                compute=overwritten,
                outputs=("dx", "dw"),
            ),
            MistakeModel(
                Mistake.BIAS_NOT_SUMMED,
                title="db is not summed over the batch",
                why=one_example_why,
                compute=one_example(-1),
                outputs=("db",),
            ),
            MistakeModel(
                Mistake.BIAS_NOT_SUMMED,
                title="db is not summed over the batch",
                why=one_example_why,
                compute=one_example(0),
                outputs=("db",),
            ),
        ]

    def likely_mistakes(self, case: Case, output_name: str, expected: Any, got: Any) -> list[Diagnosis]:
        """dx returned with the padded input's shape: the padding was never cropped."""
        pad = case.args["pad"]
        if output_name != "dx" or pad == 0 or not isinstance(got, np.ndarray) or got.dtype.kind not in "fiu":
            return []  # only real-valued arrays are compared (whatever else came back is reported elsewhere)
        n, c, h, w = case.args["x"].shape
        if got.shape != (n, c, h + 2 * pad, w + 2 * pad):
            return []
        cropped = got[:, :, pad : pad + h, pad : pad + w]
        right_inside = bool(np.isfinite(cropped).all()) and rel_error(cropped, expected) <= 1e-6
        why = (
            f"dx has shape {got.shape}, the shape of the padded input; x has shape {(n, c, h, w)}. "
            "The padding zeros are not inputs of the layer, so their gradient is dropped."
        )
        if right_inside:
            why += " Cropped to the shape of x, your dx would be right."
        return [
            Diagnosis(
                output="dx",
                mistake=Mistake.PADDING_IGNORED,
                title="dx still includes the padding",
                why=why,
                worst=[] if right_inside or not np.isfinite(cropped).all() else worst_elements(expected, cropped),
                hint=self.hints[Mistake.PADDING_IGNORED],
                lesson_url=self.lesson_url(),
            )
        ]

    def training(self) -> TrainingSetup:
        n, size, classes = 8, 6, 2
        h_out = output_size(size, 3, 2, 1)
        features = 4 * h_out * h_out

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {
                "w1": rng.standard_normal((3, 1, 3, 3)) / 3.0,
                "b1": np.zeros(3),
                "w2": rng.standard_normal((4, 3, 3, 3)) / np.sqrt(27.0),
                "b2": np.zeros(4),
                "w_head": rng.standard_normal((features, classes)) / np.sqrt(features),
                "b_head": np.zeros(classes),
            }

        def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
            images = rng.standard_normal((n, 1, size, size))
            # Two classes that differ by where a bright patch is: left or right half.
            labels = rng.integers(0, classes, n)
            for i, label in enumerate(labels):
                images[i, 0, 2:4, 1 + 3 * label : 3 + 3 * label] += 2.0
            return {"x": images, "target": np.eye(classes)[labels]}

        def loss(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: LayerFn) -> torch.Tensor:
            # Two learner convolutions, so the second one's dx feeds the first one's dw.
            h = torch.tanh(layer(x=batch["x"], w=params["w1"], b=params["b1"], stride=1, pad=1))
            h = torch.tanh(layer(x=h, w=params["w2"], b=params["b2"], stride=2, pad=1))
            out = h.flatten(1) @ params["w_head"] + params["b_head"]
            return ((out - batch["target"]) ** 2).mean()

        return TrainingSetup(
            steps=20,
            lr=0.2,
            init=init,
            data=data,
            loss=loss,
            description="Conv(1->3, 3x3, stride 1, pad 1) -> tanh -> Conv(3->4, 3x3, stride 2, pad 1) -> tanh "
            "-> Linear(36, 2) on 6x6 images, MSE loss",
        )
