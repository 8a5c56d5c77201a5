"""The checks behind the display formulas of content/lessons/cnn-architecture.md."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import assert_close, assert_mentions, formula_check, latex_matrices, randn


def _output_size(size: int, kernel: int, padding: int, stride: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@formula_check("conv-cross-correlation")
def check_conv_cross_correlation(latex: str) -> None:
    assert_mentions(latex, r"\sum_{c=0}^{C-1}\sum_{u=0}^{K-1}\sum_{v=0}^{K-1}", r"X_{c,\, iS+u,\, jS+v}")
    for stride, padding in ((1, 0), (2, 1), (3, 2)):
        x, w, b = randn(2, 3, 7, 6, seed=stride), randn(4, 3, 3, 3, seed=padding + 5), randn(4, seed=9)
        expected = F.conv2d(x, w, b, stride=stride, padding=padding)
        padded = F.pad(x, (padding, padding, padding, padding))
        height, width = expected.shape[-2:]
        ours = torch.empty_like(expected)
        for i in range(height):
            for j in range(width):
                patch = padded[:, :, i * stride : i * stride + 3, j * stride : j * stride + 3]
                ours[:, :, i, j] = b + torch.einsum("ncuv,fcuv->nf", patch, w)
        assert_close(ours, expected, f"convolution with stride {stride}, padding {padding}")


@formula_check("conv-output-size")
def check_conv_output_size(latex: str) -> None:
    assert_mentions(latex, r"\left\lfloor \frac{H + 2P - K}{S} \right\rfloor + 1")
    cases = 0
    for size in (1, 5, 8, 13, 28):
        for kernel in (1, 2, 3, 5, 7):
            for padding in (0, 1, 2, 3):
                for stride in (1, 2, 3):
                    if kernel > size + 2 * padding:
                        continue
                    expected = _output_size(size, kernel, padding, stride)
                    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)
                    assert conv(torch.zeros(1, 1, size, size + 1)).shape[-2:] == (
                        expected,
                        _output_size(size + 1, kernel, padding, stride),
                    ), f"Conv2d with H={size}, K={kernel}, P={padding}, S={stride}"
                    if 2 * padding <= kernel:
                        pooled = F.max_pool2d(torch.zeros(1, 1, size, size), kernel, stride, padding)
                        assert pooled.shape[-1] == expected, f"MaxPool2d with H={size}, K={kernel}, P={padding}"
                    cases += 1
    assert cases > 200


@formula_check("parameter-count")
def check_parameter_count(latex: str) -> None:
    assert_mentions(latex, r"F\,(C K^2 + 1)", r"(D_{\text{in}} + 1)\, D_{\text{out}}")
    for channels, filters, kernel in ((1, 6, 5), (3, 64, 3), (64, 128, 3), (16, 8, 1)):
        conv = torch.nn.Conv2d(channels, filters, kernel)
        assert sum(p.numel() for p in conv.parameters()) == filters * (channels * kernel**2 + 1)
    for inputs, outputs in ((400, 120), (1, 1), (84, 10)):
        linear = torch.nn.Linear(inputs, outputs)
        assert sum(p.numel() for p in linear.parameters()) == (inputs + 1) * outputs
    assert 128 * (64 * 9 + 1) == 73_856


@formula_check("max-pool")
def check_max_pool(latex: str) -> None:
    assert_mentions(latex, r"\max_{0 \le u,\, v < K} X_{c,\, iS+u,\, jS+v}")
    x = randn(2, 3, 9, 8, seed=70)
    for kernel, stride in ((2, 2), (3, 1), (3, 2)):
        expected = F.max_pool2d(x, kernel, stride)
        height, width = expected.shape[-2:]
        ours = torch.empty_like(expected)
        for i in range(height):
            for j in range(width):
                window = x[:, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
                ours[:, :, i, j] = window.amax(dim=(-2, -1))
        assert_close(ours, expected, f"max pooling {kernel}x{kernel} with stride {stride}")


@formula_check("dropout-scaling")
def check_dropout_scaling(latex: str) -> None:
    assert_mentions(latex, r"\tilde h = \frac{m \odot h}{1 - p}", r"\mathrm{Bernoulli}(1 - p)")
    torch.manual_seed(71)
    h = randn(200_000, seed=72)
    for p in (0.1, 0.5, 0.8):
        dropped = F.dropout(h, p=p, training=True)
        kept = dropped != 0
        assert_close(dropped[kept], h[kept] / (1 - p), f"survivors are scaled by 1/(1-p) for p={p}")
        assert abs(kept.double().mean().item() - (1 - p)) < 0.01, "each unit survives with probability 1-p"
        assert abs((dropped - h).mean().item()) < 0.02, f"the expectation is unchanged for p={p}"
        assert torch.equal(F.dropout(h, p=p, training=False), h), "dropout is the identity at test time"


@formula_check("receptive-field")
def check_receptive_field(latex: str) -> None:
    assert_mentions(latex, r"r_l = r_{l-1} + (K_l - 1)\prod_{m=1}^{l-1} S_m")
    stacks = [[(3, 1), (3, 1)], [(3, 1), (3, 1), (3, 1)], [(7, 2), (3, 2), (3, 1)], [(5, 1), (2, 2), (3, 2), (3, 1)]]
    for stack in stacks:
        receptive_field, jump = 1, 1
        for kernel, stride in stack:
            receptive_field += (kernel - 1) * jump
            jump *= stride
        image = torch.ones(1, 1, 64, 64, dtype=torch.float64, requires_grad=True)
        out = image
        for kernel, stride in stack:
            out = F.conv2d(out, torch.ones(1, 1, kernel, kernel, dtype=torch.float64), stride=stride)
        out[0, 0, 0, 0].backward()
        assert image.grad is not None
        rows, columns = image.grad[0, 0].nonzero(as_tuple=True)
        extent = (int(rows.max() - rows.min()) + 1, int(columns.max() - columns.min()) + 1)
        assert extent == (receptive_field, receptive_field), f"{stack}: saw {extent}, formula {receptive_field}"


@formula_check("residual-gradient")
def check_residual_gradient(latex: str) -> None:
    assert_mentions(latex, r"y = \mathcal{F}(x) + x", r"\frac{\partial \mathcal{F}}{\partial x} + I")
    weights = randn(6, 6, seed=80) * 0.01

    def residual_branch(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(weights @ x)

    x = randn(6, seed=81)
    branch_jacobian = torch.autograd.functional.jacobian(residual_branch, x)
    block_jacobian = torch.autograd.functional.jacobian(lambda v: residual_branch(v) + v, x)
    assert_close(block_jacobian, branch_jacobian + torch.eye(6, dtype=torch.float64), "Jacobian of the block")
    depth = 50
    through_plain = torch.linalg.matrix_power(branch_jacobian, depth).abs().max().item()
    through_residual = torch.linalg.matrix_power(block_jacobian, depth).abs().max().item()
    assert through_plain < 1e-50 < 0.5 < through_residual, "the shortcut keeps the gradient alive through depth"


@formula_check("depthwise-separable")
def check_depthwise_separable(latex: str) -> None:
    assert_mentions(latex, r"\frac{C K^2 + C F}{C F K^2} = \frac{1}{F} + \frac{1}{K^2}")
    from torch.utils.flop_counter import FlopCounterMode

    for channels, filters, kernel in ((32, 64, 3), (128, 256, 3), (16, 16, 5)):
        standard = torch.nn.Conv2d(channels, filters, kernel, padding=kernel // 2, bias=False).double()
        depthwise = torch.nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False)
        pointwise = torch.nn.Conv2d(channels, filters, 1, bias=False)
        separable = torch.nn.Sequential(depthwise, pointwise).double()
        expected_ratio = 1 / filters + 1 / kernel**2
        weights = [sum(p.numel() for p in m.parameters()) for m in (separable, standard)]
        assert math.isclose(weights[0] / weights[1], expected_ratio), f"weights, C={channels}, F={filters}"
        x = torch.zeros(1, channels, 10, 10, dtype=torch.float64)
        flops = []
        for module in (separable, standard):
            with FlopCounterMode(display=False) as counter:
                module(x)
            flops.append(counter.get_total_flops())
        assert math.isclose(flops[0] / flops[1], expected_ratio), f"FLOPs, C={channels}, F={filters}"


@formula_check("compound-scaling")
def check_compound_scaling(latex: str) -> None:
    assert_mentions(
        latex, r"d = \alpha^{\phi}", r"w = \beta^{\phi}", r"r = \gamma^{\phi}", r"\alpha \beta^2 \gamma^2 \approx 2"
    )
    from torch.utils.flop_counter import FlopCounterMode

    def body_flops(depth: int, width: int, resolution: int) -> int:
        layers = [torch.nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(depth)]
        with FlopCounterMode(display=False) as counter:
            torch.nn.Sequential(*layers)(torch.zeros(1, width, resolution, resolution))
        return counter.get_total_flops()

    base = body_flops(2, 8, 8)
    for depth_factor, width_factor, resolution_factor in ((2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 2)):
        scaled = body_flops(2 * depth_factor, 8 * width_factor, 8 * resolution_factor)
        assert scaled == base * depth_factor * width_factor**2 * resolution_factor**2
    alpha, beta, gamma = 1.2, 1.1, 1.15
    assert abs(alpha * beta**2 * gamma**2 - 2) < 0.1, "the paper's constants roughly double FLOPs per step of phi"


def _conv_case(seed: int, stride: int, padding: int) -> dict[str, torch.Tensor]:
    """A random convolution with its autograd gradients (non-square input, stride and padding as given)."""
    x = randn(2, 3, 7, 6, seed=seed, requires_grad=True)
    w = randn(4, 3, 3, 3, seed=seed + 1, requires_grad=True)
    b = randn(4, seed=seed + 2, requires_grad=True)
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    dout = randn(*y.shape, seed=seed + 3)
    y.backward(dout)
    assert x.grad is not None and w.grad is not None and b.grad is not None
    padded = F.pad(x.detach(), (padding, padding, padding, padding))
    return {"x": padded, "w": w.detach(), "dout": dout, "dx": x.grad, "dw": w.grad, "db": b.grad}


CONV_SETTINGS = ((1, 0), (2, 1), (3, 2))


@formula_check("conv-backward-bias")
def check_conv_backward_bias(latex: str) -> None:
    assert_mentions(latex, r"\frac{\partial L}{\partial b_f} = \sum_{n}\sum_{i,j} \delta_{n,f,i,j}")
    for stride, padding in CONV_SETTINGS:
        case = _conv_case(100 + stride, stride, padding)
        assert_close(case["dout"].sum(dim=(0, 2, 3)), case["db"], f"db, stride {stride}, padding {padding}")


@formula_check("conv-backward-weight")
def check_conv_backward_weight(latex: str) -> None:
    assert_mentions(latex, r"\sum_{n}\sum_{i,j} \delta_{n,f,i,j}\, X_{n,c,\, iS+u,\, jS+v}")
    for stride, padding in CONV_SETTINGS:
        case = _conv_case(110 + stride, stride, padding)
        x, dout = case["x"], case["dout"]
        height, width = dout.shape[-2:]
        dw = torch.zeros_like(case["w"])
        for u in range(3):
            for v in range(3):
                patch = x[:, :, u : u + stride * (height - 1) + 1 : stride, v : v + stride * (width - 1) + 1 : stride]
                dw[:, :, u, v] = torch.einsum("nfij,ncij->fc", dout, patch)
        assert_close(dw, case["dw"], f"dW, stride {stride}, padding {padding}")
        # "A correlation of the input with dout": conv2d with dout as the kernel, dilated by the stride.
        as_correlation = F.conv2d(x.transpose(0, 1), dout.transpose(0, 1), dilation=stride).transpose(0, 1)
        assert_close(as_correlation[:, :, :3, :3], case["dw"], f"dW as a correlation, stride {stride}")


@formula_check("conv-backward-scatter")
def check_conv_backward_scatter(latex: str) -> None:
    assert_mentions(latex, r"X_{n,c,\, iS+u,\, jS+v}} \mathrel{+}= \sum_{f} \delta_{n,f,i,j}\, W_{f,c,u,v}")
    for stride, padding in CONV_SETTINGS:
        case = _conv_case(120 + stride, stride, padding)
        dout, w = case["dout"], case["w"]
        dx_pad = torch.zeros_like(case["x"])
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                for u in range(3):
                    for v in range(3):
                        dx_pad[:, :, i * stride + u, j * stride + v] += dout[:, :, i, j] @ w[:, :, u, v]
        height, width = case["dx"].shape[-2:]
        cropped = dx_pad[:, :, padding : padding + height, padding : padding + width]
        assert_close(cropped, case["dx"], f"dX by scatter, stride {stride}, padding {padding}")
        if padding:
            corner = dx_pad[:, :, :height, :width]
            assert not torch.allclose(corner, case["dx"]), "cropping at the corner is wrong"


@formula_check("conv-backward-full")
def check_conv_backward_full(latex: str) -> None:
    assert_mentions(
        latex,
        r"\tilde\delta_{n,f,\, p+u,\, q+v}\, W_{f,c,\, K-1-u,\, K-1-v}",
        r"\sum_{u=0}^{K-1}\sum_{v=0}^{K-1}",
    )
    for padding in (0, 1, 2):
        case = _conv_case(130 + padding, 1, padding)
        dout, w = case["dout"], case["w"]
        rotated = w.flip(2, 3)
        full = F.pad(dout, (2, 2, 2, 2))  # K - 1 = 2 zeros on every side
        dx_pad = F.conv2d(full, rotated.transpose(0, 1))  # cross-correlation, summed over f
        height, width = case["dx"].shape[-2:]
        assert_close(dx_pad[:, :, padding : padding + height, padding : padding + width], case["dx"], "full form")
        unrotated = F.conv2d(full, w.transpose(0, 1))
        assert not torch.allclose(unrotated, dx_pad), "without the rotation the full correlation is wrong"
    # With stride S: zeros between dout's entries first, which is what conv_transpose2d does.
    case = _conv_case(140, 2, 1)
    dout, w = case["dout"], case["w"]
    dilated = torch.zeros(*dout.shape[:2], 2 * dout.shape[2] - 1, 2 * dout.shape[3] - 1, dtype=torch.float64)
    dilated[:, :, ::2, ::2] = dout
    dx_pad = F.conv2d(F.pad(dilated, (2, 2, 2, 2)), w.flip(2, 3).transpose(0, 1))
    height, width = case["dx"].shape[-2:]
    covered = dx_pad[:, :, 1 : 1 + height, 1 : 1 + width]
    assert_close(covered, case["dx"][:, :, : covered.shape[2], : covered.shape[3]], "stride 2 via zeros between")


@formula_check("conv-worked-example")
def check_conv_worked_example(latex: str) -> None:
    assert_mentions(latex, r"\frac{\partial L}{\partial b} = 2")
    x, w, delta, dw, dx = latex_matrices(latex)
    x, w = x[None, None].requires_grad_(), w[None, None].requires_grad_()
    b = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    F.conv2d(x, w, b).backward(delta[None, None])
    assert x.grad is not None and w.grad is not None and b.grad is not None
    assert torch.equal(w.grad[0, 0], dw), f"dW is {w.grad[0, 0].tolist()}"
    assert torch.equal(x.grad[0, 0], dx), f"dX is {x.grad[0, 0].tolist()}"
    assert b.grad.item() == 2.0


@formula_check("conv-im2col")
def check_conv_im2col(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial W_{\text{row}}} = \delta_{\text{mat}}\, X_{\text{col}}^{\top}",
        r"\frac{\partial L}{\partial X_{\text{col}}} = W_{\text{row}}^{\top}\, \delta_{\text{mat}}",
    )
    for stride, padding in CONV_SETTINGS:
        case = _conv_case(150 + stride, stride, padding)
        n, filters = case["dout"].shape[:2]
        x_col = F.unfold(case["x"], 3, stride=stride).transpose(0, 1).reshape(27, -1)  # (C K^2, N H' W')
        w_row = case["w"].reshape(filters, -1)
        d_mat = case["dout"].transpose(0, 1).reshape(filters, -1)
        assert_close((d_mat @ x_col.T).reshape(case["w"].shape), case["dw"], f"im2col dW, stride {stride}")
        d_col = (w_row.T @ d_mat).reshape(27, n, -1).transpose(0, 1)
        dx_pad = F.fold(d_col, case["x"].shape[-2:], 3, stride=stride)  # col2im adds overlapping windows
        height, width = case["dx"].shape[-2:]
        assert_close(dx_pad[:, :, padding : padding + height, padding : padding + width], case["dx"], "col2im")


@formula_check("max-pool-backward")
def check_max_pool_backward(latex: str) -> None:
    assert_mentions(latex, r"\operatorname{argmax}_{(iS+u,\, jS+v)}", r"\delta_{c,i,j}")
    for kernel, stride in ((2, 2), (3, 1), (3, 2), (2, 1)):
        x = randn(2, 3, 9, 8, seed=160 + kernel * stride, requires_grad=True)
        y = F.max_pool2d(x, kernel, stride)
        dout = randn(*y.shape, seed=170 + kernel)
        y.backward(dout)
        assert x.grad is not None
        routed = torch.zeros_like(x)
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                window = x.detach()[:, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
                flat = window.reshape(2, 3, -1).argmax(dim=-1)
                for n in range(2):
                    for c in range(3):
                        u, v = divmod(int(flat[n, c]), kernel)
                        routed[n, c, i * stride + u, j * stride + v] += dout[n, c, i, j]
        assert_close(routed, x.grad, f"max-pool dX, {kernel}x{kernel} stride {stride}")
        wins = F.max_pool2d(x.detach(), kernel, stride, return_indices=True)[1].flatten(2)
        shared = max(int(torch.bincount(row).max()) for row in wins.reshape(-1, wins.shape[-1]))
        assert (shared > 1) == (stride < kernel), "only overlapping windows can share a maximum"


@formula_check("max-pool-worked-example")
def check_max_pool_worked_example(latex: str) -> None:
    x, y, delta, dx = latex_matrices(latex)
    x = x[None, None].requires_grad_()
    pooled = F.max_pool2d(x, 2, 1)
    assert torch.equal(pooled[0, 0].detach(), y), f"Y is {pooled[0, 0].tolist()}"
    pooled.backward(delta[None, None])
    assert x.grad is not None
    assert torch.equal(x.grad[0, 0], dx), f"dX is {x.grad[0, 0].tolist()}"
    assert dx.max().item() == delta[1].sum().item(), "the shared maximum collects both bottom windows"
