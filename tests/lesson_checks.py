"""Parsing of lesson files and the numerical checks behind their display formulas.

A display formula in `content/lessons/*.md` is followed by `<!-- check: NAME -->`;
NAME is a key of CHECKS. Each check receives the formula's LaTeX source, asserts
that the formula still says what the check verifies (a few fragments of it), then
verifies the mathematics numerically in float64 with PyTorch, usually against
autograd or a PyTorch reference implementation. A check raises AssertionError
when the formula is wrong or no longer matches the check.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch.nn.modules.batchnorm import _BatchNorm

LESSONS_DIR = Path(__file__).resolve().parent.parent / "content" / "lessons"

FormulaCheck = Callable[[str], None]
CHECKS: dict[str, FormulaCheck] = {}

CHECK_COMMENT = re.compile(r"^<!--\s*check:\s*(?P<target>.*?)\s*-->$")
NONE_WITH_REASON = re.compile(r"^none\s*\((?P<reason>.+)\)$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[\w-]*)")


# --- Parsing -------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str
    line: int


@dataclass(frozen=True)
class DisplayFormula:
    latex: str
    line: int
    check: str | None
    """The NAME of `<!-- check: NAME -->`, "none" for `none (reason)`, None when missing or malformed."""
    check_comment: str | None
    """The raw text after the formula when it is an HTML comment, for error messages."""


@dataclass(frozen=True)
class Lesson:
    path: Path
    meta: dict[str, Any]
    body: str
    body_first_line: int
    code_blocks: tuple[CodeBlock, ...]
    formulas: tuple[DisplayFormula, ...]
    prose: str
    """The body without fenced code and display math: what the learner reads as text."""


def parse_lesson(path: Path) -> Lesson:
    """Parse one lesson file; raises AssertionError naming the problem for a malformed file."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines and lines[0].strip() == "---", f"{path.name}: must start with '---' front matter"
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise AssertionError(f"{path.name}: front matter is not closed by '---'") from None
    meta = yaml.safe_load("\n".join(lines[1:end]))
    assert isinstance(meta, dict), f"{path.name}: front matter must be a mapping"
    body_lines = lines[end + 1 :]
    first_line = end + 2
    code_blocks, formulas, prose = scan_body(body_lines, first_line)
    return Lesson(
        path=path,
        meta=meta,
        body="\n".join(body_lines),
        body_first_line=first_line,
        code_blocks=tuple(code_blocks),
        formulas=tuple(formulas),
        prose="\n".join(prose),
    )


def scan_body(lines: list[str], first_line: int) -> tuple[list[CodeBlock], list[DisplayFormula], list[str]]:
    """Split a Markdown body into fenced code blocks, `$$` display formulas and prose lines."""
    code_blocks: list[CodeBlock] = []
    formulas: list[DisplayFormula] = []
    prose: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        fence = FENCE.match(stripped)
        if fence:
            marker = fence.group("fence")
            start = index
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                index += 1
            code = "\n".join(lines[start + 1 : index]) + "\n"
            code_blocks.append(CodeBlock(fence.group("info").lower(), code, first_line + start))
            index += 1
            continue
        if stripped.startswith("$$"):
            start = index
            if stripped != "$$" and stripped.endswith("$$") and len(stripped) > 4:
                latex = stripped[2:-2]
            else:
                index += 1
                while index < len(lines) and lines[index].strip() != "$$":
                    index += 1
                latex = "\n".join(lines[start + 1 : index])
            index += 1
            while index < len(lines) and not lines[index].strip():
                index += 1
            comment = lines[index].strip() if index < len(lines) else ""
            check, raw = _check_target(comment)
            if raw is not None:
                index += 1
            formulas.append(DisplayFormula(latex.strip(), first_line + start, check, raw))
            continue
        prose.append(line)
        index += 1
    return code_blocks, formulas, prose


def _check_target(comment: str) -> tuple[str | None, str | None]:
    """Return (check name or "none" or None, raw comment or None) for the line after a formula."""
    if not comment.startswith("<!--"):
        return None, None
    match = CHECK_COMMENT.match(comment)
    if not match:
        return None, comment
    target = match.group("target")
    if target.startswith("none"):
        return ("none" if NONE_WITH_REASON.match(target) else None), comment
    if re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", target):
        return target, comment
    return None, comment


def load_lessons() -> list[Lesson]:
    return [parse_lesson(path) for path in sorted(LESSONS_DIR.glob("*.md"))]


# --- Check registry and helpers --------------------------------------------------


def formula_check(name: str) -> Callable[[FormulaCheck], FormulaCheck]:
    """Register a check under the NAME used in `<!-- check: NAME -->`."""

    def register(function: FormulaCheck) -> FormulaCheck:
        assert name not in CHECKS, f"two checks are named {name}"
        CHECKS[name] = function
        return function

    return register


def assert_mentions(latex: str, *fragments: str) -> None:
    """Assert the formula contains each fragment, ignoring whitespace, so a check cannot drift from its formula."""
    squashed = re.sub(r"\s+", "", latex)
    for fragment in fragments:
        assert re.sub(r"\s+", "", fragment) in squashed, f"the formula no longer contains {fragment!r}: {latex}"


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, *, rtol: float = 1e-10) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=1e-12), (
        f"{what}: largest difference {(actual - expected).abs().max().item():.3e}"
    )


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int, requires_grad: bool = False) -> torch.Tensor:
    tensor = torch.randn(*shape, generator=generator(seed), dtype=torch.float64)
    return tensor.requires_grad_(requires_grad)


# --- Backpropagation -------------------------------------------------------------


@formula_check("mse-gradient")
def check_mse_gradient(latex: str) -> None:
    assert_mentions(latex, r"\frac{1}{N}\sum_{n=1}^{N}", r"\frac{2}{N}\left(\hat y_n - y_n\right)")
    for count in (1, 3, 17):
        prediction = randn(count, seed=count, requires_grad=True)
        target = randn(count, seed=100 + count)
        loss = F.mse_loss(prediction, target)
        (gradient,) = torch.autograd.grad(loss, prediction)
        assert_close(loss.detach(), ((prediction.detach() - target) ** 2).sum() / count, "MSE loss")
        assert_close(gradient, 2 / count * (prediction.detach() - target), "MSE gradient")


@formula_check("chain-rule")
def check_chain_rule(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial w} = \frac{\partial L}{\partial a}\cdot\frac{\partial a}{\partial z}"
        r"\cdot\frac{\partial z}{\partial w}",
    )
    inputs = randn(4, seed=1)
    weights = randn(4, seed=2, requires_grad=True)
    bias, target = torch.tensor(0.1, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    z = weights @ inputs + bias
    a = torch.sigmoid(z)
    loss = (a - target) ** 2
    (autograd_gradient,) = torch.autograd.grad(loss, weights)
    dl_da = 2 * (a.detach() - target)
    da_dz = torch.sigmoid(z.detach()) * (1 - torch.sigmoid(z.detach()))
    dz_dw = inputs
    assert_close(dl_da * da_dz * dz_dw, autograd_gradient, "chain-rule product")


@formula_check("sgd-update")
def check_sgd_update(latex: str) -> None:
    assert_mentions(latex, r"w \leftarrow w - \eta\,\frac{\partial L}{\partial w}")
    learning_rate = 0.05
    weight = torch.nn.Parameter(randn(3, 2, seed=3))
    before = weight.detach().clone()
    loss = (weight**3).sum()
    loss.backward()
    assert weight.grad is not None
    torch.optim.SGD([weight], lr=learning_rate).step()
    assert_close(weight.detach(), before - learning_rate * weight.grad, "SGD step")
    assert (weight**3).sum().item() < loss.item(), "a small step against the gradient must lower the loss"


def _two_layer_sigmoid_network(seed: int) -> dict[str, torch.Tensor]:
    """A column-vector network x -> sigmoid(W1 x + b1) -> W2 h + b2 -> squared error, with its intermediates."""
    x = randn(4, 1, seed=seed)
    w1, b1 = randn(5, 4, seed=seed + 1, requires_grad=True), randn(5, 1, seed=seed + 2, requires_grad=True)
    w2, b2 = randn(3, 5, seed=seed + 3, requires_grad=True), randn(3, 1, seed=seed + 4, requires_grad=True)
    z1 = w1 @ x + b1
    z1.retain_grad()
    a1 = torch.sigmoid(z1)
    z2 = w2 @ a1 + b2
    z2.retain_grad()
    loss = ((z2 - randn(3, 1, seed=seed + 5)) ** 2).sum()
    loss.backward()
    return {"x": x, "w1": w1, "b1": b1, "w2": w2, "z1": z1, "a1": a1, "z2": z2}


@formula_check("delta-recursion")
def check_delta_recursion(latex: str) -> None:
    assert_mentions(latex, r"\left(W^{(l+1)}\right)^{\top} \delta^{(l+1)}", r"\odot \sigma'\left(z^{(l)}\right)")
    net = _two_layer_sigmoid_network(seed=10)
    delta_2, z1 = net["z2"].grad, net["z1"]
    assert delta_2 is not None and z1.grad is not None
    sigmoid = torch.sigmoid(z1.detach())
    delta_1 = (net["w2"].detach().T @ delta_2) * sigmoid * (1 - sigmoid)
    assert_close(delta_1, z1.grad, "delta of the hidden layer")


@formula_check("layer-gradients")
def check_layer_gradients(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial W^{(l)}} = \delta^{(l)} \left(a^{(l-1)}\right)^{\top}",
        r"\frac{\partial L}{\partial b^{(l)}} = \delta^{(l)}",
    )
    net = _two_layer_sigmoid_network(seed=20)
    delta_1, delta_2 = net["z1"].grad, net["z2"].grad
    assert delta_1 is not None and delta_2 is not None
    assert net["w1"].grad is not None and net["w2"].grad is not None and net["b1"].grad is not None
    assert_close(net["w2"].grad, delta_2 @ net["a1"].detach().T, "output-layer weight gradient")
    assert_close(net["w1"].grad, delta_1 @ net["x"].T, "hidden-layer weight gradient")
    assert_close(net["b1"].grad, delta_1, "hidden-layer bias gradient")


@formula_check("linear-vectorised")
def check_linear_vectorised(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial W} = X^{\top}\,\frac{\partial L}{\partial Z}",
        r"\frac{\partial L}{\partial X} = \frac{\partial L}{\partial Z}\,W^{\top}",
        r"\sum_{n=1}^{N}",
    )
    for n, d, m in ((1, 3, 2), (4, 3, 5), (7, 1, 6)):
        x = randn(n, d, seed=n, requires_grad=True)
        w = randn(d, m, seed=d + 10, requires_grad=True)
        b = randn(m, seed=m + 20, requires_grad=True)
        upstream = randn(n, m, seed=n * m)
        (x @ w + b).backward(upstream)
        assert x.grad is not None and w.grad is not None and b.grad is not None
        assert_close(w.grad, x.detach().T @ upstream, f"dW for N={n}, D={d}, M={m}")
        assert_close(x.grad, upstream @ w.detach().T, f"dX for N={n}, D={d}, M={m}")
        assert_close(b.grad, upstream.sum(dim=0), f"db for N={n}, D={d}, M={m}")


@formula_check("worked-example")
def check_worked_example(latex: str) -> None:
    assert_mentions(
        latex, "0.5 - 0.01 \\cdot 24 = 0.26", "3 - 0.01 \\cdot 4 = 2.96", "(2.96 \\cdot 0.52 - 1)^2", "0.2907"
    )
    x, target, learning_rate = 2.0, 1.0, 0.01
    w1 = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    prediction = w2 * torch.relu(w1 * x)
    loss = (prediction - target) ** 2
    loss.backward()
    assert w1.grad is not None and w2.grad is not None
    assert (prediction.item(), loss.item()) == (3.0, 4.0)
    assert (w1.grad.item(), w2.grad.item()) == (24.0, 4.0)
    with torch.no_grad():
        new_w1, new_w2 = w1 - learning_rate * w1.grad, w2 - learning_rate * w2.grad
        new_loss = (new_w2 * torch.relu(new_w1 * x) - target) ** 2
    assert math.isclose(new_w1.item(), 0.26) and math.isclose(new_w2.item(), 2.96)
    assert round(new_loss.item(), 4) == 0.2907


# --- Attention mechanisms ------------------------------------------------------------


@formula_check("attention-weights")
def check_attention_weights(latex: str) -> None:
    assert_mentions(latex, r"c_i = \sum_{j=1}^{T} \alpha_{ij} h_j", r"\frac{\exp(e_{ij})}{\sum_{k=1}^{T}\exp(e_{ik})}")
    scores, states = randn(4, 6, seed=30), randn(6, 3, seed=31)
    alpha = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
    assert_close(alpha, torch.softmax(scores, dim=1), "alpha equals a softmax over j")
    assert_close(alpha.sum(dim=1), torch.ones(4, dtype=torch.float64), "weights sum to one")
    assert bool((alpha > 0).all()), "weights are positive"
    context = torch.stack([torch.stack([alpha[i, j] * states[j] for j in range(6)]).sum(dim=0) for i in range(4)])
    assert_close(context, alpha @ states, "context vectors")
    low, high = states.min(dim=0).values, states.max(dim=0).values
    assert bool(((context >= low) & (context <= high)).all()), "a convex combination stays inside the states' range"


@formula_check("additive-score")
def check_additive_score(latex: str) -> None:
    assert_mentions(latex, r"e_{ij} = v_a^{\top} \tanh\left(W_a s_{i-1} + U_a h_j\right)")
    query_size, key_size, hidden = 3, 5, 4
    w_a, u_a, v_a = randn(hidden, query_size, seed=40), randn(hidden, key_size, seed=41), randn(hidden, seed=42)
    decoder_states, encoder_states = randn(2, query_size, seed=43), randn(6, key_size, seed=44)
    broadcast = torch.tanh((decoder_states @ w_a.T)[:, None, :] + (encoder_states @ u_a.T)[None, :, :]) @ v_a
    layer = torch.nn.Linear(query_size + key_size, hidden, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.cat([w_a, u_a], dim=1))
        for i in range(2):
            for j in range(6):
                concatenated = torch.cat([decoder_states[i], encoder_states[j]])
                as_network = v_a @ torch.tanh(layer(concatenated))
                assert_close(broadcast[i, j], as_network, f"additive score e[{i},{j}] as a feed-forward layer")


@formula_check("multiplicative-score")
def check_multiplicative_score(latex: str) -> None:
    assert_mentions(latex, r"s_i^{\top} W_a h_j", r"s_i^{\top} h_j")
    queries, keys, w_a = randn(3, 4, seed=50), randn(6, 5, seed=51), randn(4, 5, seed=52)
    general = queries @ w_a @ keys.T
    bilinear = F.bilinear(queries[:, None, :].expand(3, 6, 4), keys[None].expand(3, 6, 5), w_a[None]).squeeze(-1)
    assert_close(general, bilinear, "general score against F.bilinear")
    same_size_keys = randn(6, 4, seed=53)
    dot = torch.stack([torch.stack([queries[i] @ same_size_keys[j] for j in range(6)]) for i in range(3)])
    assert_close(queries @ same_size_keys.T, dot, "dot score")
    assert_close(queries @ torch.eye(4, dtype=torch.float64) @ same_size_keys.T, dot, "dot is general with W_a = I")


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    return torch.softmax(scores, dim=-1) @ v


@formula_check("scaled-dot-product")
def check_scaled_dot_product(latex: str) -> None:
    assert_mentions(latex, r"\mathrm{softmax}\left(\frac{QK^{\top}}{\sqrt{d_k}}\right)V")
    for t_q, t_k, d_k, d_v in ((1, 1, 1, 1), (4, 7, 8, 3), (9, 5, 64, 16)):
        q, k, v = randn(2, t_q, d_k, seed=t_q), randn(2, t_k, d_k, seed=t_k + 10), randn(2, t_k, d_v, seed=d_v)
        expected = F.scaled_dot_product_attention(q, k, v)
        assert_close(_attention(q, k, v), expected, f"attention for T_q={t_q}, T_k={t_k}, d_k={d_k}")


@formula_check("dot-product-variance")
def check_dot_product_variance(latex: str) -> None:
    assert_mentions(latex, r"\mathbb{E}[q \cdot k] = 0", r"\operatorname{Var}(q \cdot k) = d_k")
    samples = 40_000
    for d_k in (4, 32, 128):
        q, k = randn(samples, d_k, seed=d_k), randn(samples, d_k, seed=d_k + 1)
        dots = (q * k).sum(dim=1)
        standard_error_of_mean = math.sqrt(d_k / samples)
        assert abs(dots.mean().item()) < 4 * standard_error_of_mean, f"mean for d_k={d_k}"
        assert abs(dots.var().item() / d_k - 1) < 0.04, f"variance for d_k={d_k}: {dots.var().item():.2f}"
        assert abs((dots / math.sqrt(d_k)).var().item() - 1) < 0.04, "scaling restores unit variance"


@formula_check("causal-mask")
def check_causal_mask(latex: str) -> None:
    assert_mentions(latex, r"0 & j \le i", r"-\infty & j > i", r"+ M\right)V")
    for length in (1, 2, 6):
        q, k, v = randn(3, length, 4, seed=length), randn(3, length, 4, seed=length + 1), randn(3, length, 2, seed=7)
        rows, columns = torch.arange(length)[:, None], torch.arange(length)[None, :]
        mask = torch.where(columns <= rows, 0.0, float("-inf")).double()
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert_close(_attention(q, k, v, mask), expected, f"causal attention for T={length}")
        changed_future = v.clone()
        changed_future[:, -1] += 100.0
        assert_close(_attention(q, k, changed_future, mask)[:, :-1], expected[:, :-1], "the future is invisible")


@formula_check("multi-head")
def check_multi_head(latex: str) -> None:
    assert_mentions(
        latex,
        r"\mathrm{head}_h = \mathrm{Attention}\left(XW_h^Q, XW_h^K, XW_h^V\right)",
        r"\mathrm{Concat}\left(\mathrm{head}_1, \ldots, \mathrm{head}_H\right) W^O",
    )
    torch.manual_seed(60)
    for embed, heads in ((8, 1), (8, 2), (12, 4)):
        module = torch.nn.MultiheadAttention(embed, heads, bias=False, batch_first=True).double()
        x = randn(2, 5, embed, seed=embed + heads)
        expected, _ = module(x, x, x, need_weights=False)
        w_q, w_k, w_v = (w.T for w in module.in_proj_weight.detach().chunk(3))
        w_o, d_k = module.out_proj.weight.detach().T, embed // heads
        head_outputs = [
            _attention(x @ w_q[:, s], x @ w_k[:, s], x @ w_v[:, s])
            for s in (slice(h * d_k, (h + 1) * d_k) for h in range(heads))
        ]
        assert_close(torch.cat(head_outputs, dim=-1) @ w_o, expected.detach(), f"{heads} heads of width {d_k}")


@formula_check("attention-cost")
def check_attention_cost(latex: str) -> None:
    assert_mentions(latex, r"T^2 d_k \text{ multiply-adds}", r"T^2 \text{ scores per head}")
    from torch.utils.flop_counter import FlopCounterMode

    for length, d_k in ((8, 4), (16, 4), (32, 16)):
        q, k = randn(length, d_k, seed=length), randn(length, d_k, seed=d_k)
        with FlopCounterMode(display=False) as counter:
            scores = q @ k.T
        floating_point_operations_per_multiply_add = 2
        assert counter.get_total_flops() == floating_point_operations_per_multiply_add * length**2 * d_k
        assert scores.numel() == length**2


@formula_check("positional-encoding")
def check_positional_encoding(latex: str) -> None:
    assert_mentions(latex, r"PE_{(p, 2i)} = \sin\left(\frac{p}{10000^{2i/d}}\right)", r"PE_{(p, 2i+1)} = \cos")
    d, positions = 16, torch.arange(50, dtype=torch.float64)
    frequencies = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    encoding = torch.zeros(50, d, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(positions[:, None] * frequencies)
    encoding[:, 1::2] = torch.cos(positions[:, None] * frequencies)
    assert_close(encoding[:, 0], torch.sin(positions), "the first pair has frequency 1")
    for offset in (1, 5, 13):
        angle = offset * frequencies
        sin_p, cos_p = encoding[:-offset, 0::2], encoding[:-offset, 1::2]
        rotated_sin = sin_p * torch.cos(angle) + cos_p * torch.sin(angle)
        rotated_cos = cos_p * torch.cos(angle) - sin_p * torch.sin(angle)
        assert_close(rotated_sin, encoding[offset:, 0::2], f"PE(p+{offset}) is a rotation of PE(p) (sine)")
        assert_close(rotated_cos, encoding[offset:, 1::2], f"PE(p+{offset}) is a rotation of PE(p) (cosine)")


# --- CNN architecture --------------------------------------------------------------------


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


# --- Activation functions ---------------------------------------------------------------

ACTIVATION_INPUTS = torch.cat(
    [torch.linspace(-8, -1e-3, 400, dtype=torch.float64), torch.linspace(1e-3, 8, 400, dtype=torch.float64)]
)
"""A grid that avoids x = 0, where ReLU-like functions have a kink."""


def _autograd_derivative(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    inputs = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(function(inputs).sum(), inputs)
    return gradient


@formula_check("sigmoid-derivative")
def check_sigmoid_derivative(latex: str) -> None:
    assert_mentions(latex, r"\sigma(x) = \frac{1}{1 + e^{-x}}", r"\sigma'(x) = \sigma(x)\left(1 - \sigma(x)\right)")
    x = ACTIVATION_INPUTS
    s = 1 / (1 + torch.exp(-x))
    assert_close(s, torch.sigmoid(x), "sigmoid")
    assert_close(_autograd_derivative(torch.sigmoid, x), s * (1 - s), "sigmoid derivative")
    at_zero = _autograd_derivative(torch.sigmoid, torch.zeros(1, dtype=torch.float64))
    assert at_zero.item() == 0.25 and bool((s * (1 - s) < 0.25).all()), "the derivative peaks at 1/4 at x = 0"


@formula_check("sigmoid-vanishing")
def check_sigmoid_vanishing(latex: str) -> None:
    assert_mentions(latex, r"\prod_{l=1}^{n} \sigma'\left(z^{(l)}\right) \le \left(\frac{1}{4}\right)^{n}")
    for start in (-3.0, 0.0, 0.5, 4.0):
        for depth in (1, 5, 10):
            h = torch.tensor(start, dtype=torch.float64, requires_grad=True)
            out = h
            for _ in range(depth):
                out = torch.sigmoid(out)
            (gradient,) = torch.autograd.grad(out, h)
            assert 0 < gradient.item() <= 0.25**depth, f"{depth} sigmoids from {start}: {gradient.item():.3e}"
    assert 0.25**10 < 1e-6


@formula_check("tanh-derivative")
def check_tanh_derivative(latex: str) -> None:
    assert_mentions(latex, r"= 2\sigma(2x) - 1", r"\tanh'(x) = 1 - \tanh^2(x)")
    x = ACTIVATION_INPUTS
    assert_close((torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)), torch.tanh(x), "tanh")
    assert_close(2 * torch.sigmoid(2 * x) - 1, torch.tanh(x), "tanh as a rescaled sigmoid", rtol=1e-9)
    assert_close(_autograd_derivative(torch.tanh, x), 1 - torch.tanh(x) ** 2, "tanh derivative")
    assert _autograd_derivative(torch.tanh, torch.zeros(1, dtype=torch.float64)).item() == 1.0


@formula_check("relu-derivative")
def check_relu_derivative(latex: str) -> None:
    assert_mentions(latex, r"\mathrm{ReLU}(x) = \max(0, x)", r"1 & x > 0 \\ 0 & x < 0")
    x = ACTIVATION_INPUTS
    assert_close(torch.relu(x), torch.maximum(x, torch.zeros_like(x)), "ReLU")
    assert_close(_autograd_derivative(torch.relu, x), (x > 0).double(), "ReLU derivative")
    assert _autograd_derivative(torch.relu, torch.zeros(1, dtype=torch.float64)).item() == 0.0, "frameworks use 0"


@formula_check("leaky-relu")
def check_leaky_relu(latex: str) -> None:
    assert_mentions(latex, r"x & x > 0 \\ \alpha x & x \le 0", r"\frac{\partial\,\mathrm{PReLU}(x)}{\partial \alpha}")
    x = ACTIVATION_INPUTS
    for slope in (0.01, 0.2):
        assert_close(F.leaky_relu(x, slope), torch.where(x > 0, x, slope * x), f"leaky ReLU, alpha={slope}")
    prelu = torch.nn.PReLU(init=0.25).double()
    upstream = randn(len(x), seed=90)
    (prelu(x) * upstream).sum().backward()
    assert prelu.weight.grad is not None
    assert_close(prelu.weight.grad, torch.where(x > 0, 0.0, x * upstream).sum().reshape(1), "PReLU slope gradient")


@formula_check("elu")
def check_elu(latex: str) -> None:
    assert_mentions(latex, r"\alpha\left(e^{x} - 1\right)", r"\mathrm{ELU}(x) + \alpha & x \le 0")
    x = ACTIVATION_INPUTS
    for alpha in (1.0, 0.5):
        value = torch.where(x > 0, x, alpha * (torch.exp(x) - 1))
        assert_close(F.elu(x, alpha), value, f"ELU, alpha={alpha}")
        expected = torch.where(x > 0, torch.ones_like(x), value + alpha)
        assert_close(
            _autograd_derivative(functools.partial(F.elu, alpha=alpha), x), expected, f"ELU derivative, alpha={alpha}"
        )


def _standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


@formula_check("gelu")
def check_gelu(latex: str) -> None:
    assert_mentions(latex, r"x\,\Phi(x)", r"\operatorname{erf}\left(\frac{x}{\sqrt{2}}\right)", r"0.044715\,x^3")
    x = ACTIVATION_INPUTS
    exact = x / 2 * (1 + torch.erf(x / math.sqrt(2)))
    assert_close(exact, F.gelu(x), "GELU")
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    assert_close(x * normal.cdf(x), F.gelu(x), "GELU as x times the normal CDF")
    approximation = x / 2 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert_close(approximation, F.gelu(x, approximate="tanh"), "tanh approximation")
    assert (approximation - exact).abs().max().item() < 1e-3, "the approximation is close"


@formula_check("gelu-derivative")
def check_gelu_derivative(latex: str) -> None:
    assert_mentions(latex, r"\Phi(x) + x\,\varphi(x)", r"\frac{1}{\sqrt{2\pi}} e^{-x^2/2}")
    x = ACTIVATION_INPUTS
    density = torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    assert_close(_autograd_derivative(F.gelu, x), _standard_normal_cdf(x) + x * density, "GELU derivative")


@formula_check("silu")
def check_silu(latex: str) -> None:
    assert_mentions(latex, r"x\,\sigma(x)", r"\sigma(x)\left(1 + x\left(1 - \sigma(x)\right)\right)")
    x = ACTIVATION_INPUTS
    s = torch.sigmoid(x)
    assert_close(F.silu(x), x * s, "SiLU")
    assert_close(_autograd_derivative(F.silu, x), s * (1 + x * (1 - s)), "SiLU derivative")


@formula_check("softmax-jacobian")
def check_softmax_jacobian(latex: str) -> None:
    assert_mentions(latex, r"\frac{e^{z_i}}{\sum_{j} e^{z_j}}", r"s_i\left(\delta_{ij} - s_j\right)")
    for size in (1, 2, 7):
        z = randn(size, seed=size)
        s = z.exp() / z.exp().sum()
        assert_close(s, torch.softmax(z, dim=0), f"softmax of {size} scores")
        jacobian = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=0), z)
        delta = torch.eye(size, dtype=torch.float64)
        formula = s[:, None] * (delta - s[None, :])
        assert_close(jacobian, formula, f"softmax Jacobian for K={size}")


@formula_check("softmax-shift")
def check_softmax_shift(latex: str) -> None:
    assert_mentions(latex, r"\mathrm{softmax}(z) = \mathrm{softmax}\left(z - c\,\mathbf{1}\right)")
    z = randn(6, seed=95)
    for shift in (-1000.0, -3.5, 0.0, 2.0, 1000.0):
        assert_close(torch.softmax(z + shift, dim=0), torch.softmax(z, dim=0), f"shift by {shift}", rtol=1e-9)
    large = z * 1000
    naive = large.exp() / large.exp().sum()
    shifted = (large - large.max()).exp() / (large - large.max()).exp().sum()
    assert bool(naive.isnan().any()), "without the shift, logits of magnitude 1000 overflow"
    assert_close(shifted, torch.softmax(large, dim=0), "the shifted form stays finite and exact")


@formula_check("softmax-cross-entropy-gradient")
def check_softmax_cross_entropy_gradient(latex: str) -> None:
    assert_mentions(latex, r"\frac{\partial\left(-\log s_y\right)}{\partial z} = s - e_y")
    for classes, target in ((2, 0), (5, 3), (10, 9)):
        logits = randn(classes, seed=classes, requires_grad=True)
        loss = F.cross_entropy(logits[None], torch.tensor([target]))
        (gradient,) = torch.autograd.grad(loss, logits)
        one_hot = F.one_hot(torch.tensor(target), classes).double()
        assert_close(gradient, torch.softmax(logits.detach(), dim=0) - one_hot, f"K={classes}, y={target}")


# --- Batch normalization ------------------------------------------------------------------

BATCHNORM_EPS = 1e-5
NEGLIGIBLE_EPS = 1e-30
"""PyTorch refuses eps = 0 in training mode; this one vanishes next to any variance of order 1 in float64."""


def _batchnorm_layer(features: int, seed: int, module: type[_BatchNorm] = torch.nn.BatchNorm1d) -> _BatchNorm:
    """A float64 batch-norm layer in training mode with non-trivial gamma and beta."""
    layer = module(features, eps=BATCHNORM_EPS, momentum=0.1).double()
    assert layer.weight is not None and layer.bias is not None
    with torch.no_grad():
        layer.weight.copy_(randn(features, seed=seed))
        layer.bias.copy_(randn(features, seed=seed + 1))
    return layer


@formula_check("batch-statistics")
def check_batch_statistics(latex: str) -> None:
    assert_mentions(latex, r"\mu_B = \frac{1}{N}\sum_{i=1}^{N} x_i", r"\sigma_B^2 = \frac{1}{N}\sum_{i=1}^{N}")
    x = randn(4, 3, seed=100) * 2 + 1
    mean = x.sum(dim=0) / 4
    biased = ((x - mean) ** 2).sum(dim=0) / 4
    output = F.batch_norm(x, None, None, training=True, eps=NEGLIGIBLE_EPS)
    assert_close(output, (x - mean) / biased.sqrt(), "batch norm divides by the biased standard deviation")
    unbiased = ((x - mean) ** 2).sum(dim=0) / 3
    assert not torch.allclose(output, (x - mean) / unbiased.sqrt()), "the unbiased variance would give another result"


@formula_check("batchnorm-forward")
def check_batchnorm_forward(latex: str) -> None:
    assert_mentions(
        latex, r"\hat x_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}", r"y_i = \gamma \hat x_i + \beta"
    )
    layer = _batchnorm_layer(5, seed=101)
    x = randn(8, 5, seed=102) * 3 - 2
    x_hat = (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + BATCHNORM_EPS)
    assert_close(layer(x), layer.weight * x_hat + layer.bias, "BatchNorm1d in training mode")
    conv_layer = _batchnorm_layer(3, seed=103, module=torch.nn.BatchNorm2d)
    maps = randn(4, 3, 5, 6, seed=104)
    axes = (0, 2, 3)
    mean, var = maps.mean(dim=axes, keepdim=True), maps.var(dim=axes, unbiased=False, keepdim=True)
    expected = conv_layer.weight[:, None, None] * (maps - mean) / torch.sqrt(var + BATCHNORM_EPS)
    assert_close(conv_layer(maps), expected + conv_layer.bias[:, None, None], "BatchNorm2d: stats over N, H, W")


@formula_check("running-statistics")
def check_running_statistics(latex: str) -> None:
    assert_mentions(latex, r"(1 - m)\,\mu_{\text{run}} + m\,\mu_B", r"m\,\frac{N}{N - 1}\,\sigma_B^2")
    layer, momentum = _batchnorm_layer(3, seed=110), 0.1
    running_mean, running_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for step, batch_size in enumerate((4, 9, 2, 16)):
        x = randn(batch_size, 3, seed=111 + step) * (step + 1) + step
        layer(x)
        batch_var = x.var(dim=0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * x.mean(dim=0)
        running_var = (1 - momentum) * running_var + momentum * batch_size / (batch_size - 1) * batch_var
        stored_mean, stored_var = _running_statistics(layer)
        assert_close(stored_mean, running_mean, f"running mean after step {step}")
        assert_close(stored_var, running_var, f"running variance after step {step}")


def _running_statistics(layer: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    assert layer.running_mean is not None and layer.running_var is not None
    return layer.running_mean, layer.running_var


def _affine_parameters(layer: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """gamma and beta, detached."""
    assert layer.weight is not None and layer.bias is not None
    return layer.weight.detach(), layer.bias.detach()


def _trained_batchnorm_layer(features: int, seed: int) -> _BatchNorm:
    layer = _batchnorm_layer(features, seed=seed)
    for step in range(5):
        layer(randn(10, features, seed=seed + 10 + step) * 2 + 3)
    return layer.eval()


@formula_check("inference-mode")
def check_inference_mode(latex: str) -> None:
    assert_mentions(latex, r"\gamma\,\frac{x - \mu_{\text{run}}}{\sqrt{\sigma^2_{\text{run}} + \epsilon}} + \beta")
    layer = _trained_batchnorm_layer(4, seed=120)
    (mean, var), (gamma, beta) = _running_statistics(layer), _affine_parameters(layer)
    for batch_size in (1, 3):
        x = randn(batch_size, 4, seed=batch_size)
        expected = gamma * (x - mean) / torch.sqrt(var + BATCHNORM_EPS) + beta
        assert_close(layer(x), expected, f"evaluation mode, batch of {batch_size}")
    pair = randn(2, 4, seed=121)
    assert_close(layer(pair)[:1], layer(pair[:1]), "in evaluation mode an example ignores its batch-mates")


@formula_check("batchnorm-folding")
def check_batchnorm_folding(latex: str) -> None:
    assert_mentions(
        latex,
        r"W' = \operatorname{diag}\left(\frac{\gamma}{\sqrt{\sigma^2_{\text{run}} + \epsilon}}\right) W",
        r"b' = \frac{\gamma\left(b - \mu_{\text{run}}\right)}{\sqrt{\sigma^2_{\text{run}} + \epsilon}} + \beta",
    )
    linear = torch.nn.Linear(6, 4).double()
    layer = _trained_batchnorm_layer(4, seed=130)
    (mean, var), (gamma, beta) = _running_statistics(layer), _affine_parameters(layer)
    scale = gamma / torch.sqrt(var + BATCHNORM_EPS)
    folded = torch.nn.Linear(6, 4).double()
    with torch.no_grad():
        folded.weight.copy_(torch.diag(scale) @ linear.weight)
        folded.bias.copy_(scale * (linear.bias - mean) + beta)
        x = randn(5, 6, seed=131)
        assert_close(folded(x), layer(linear(x)), "a linear layer with batch norm folded in")


def _batchnorm_gradients(
    seed: int, batch_size: int, features: int, eps: float = BATCHNORM_EPS
) -> dict[str, torch.Tensor]:
    layer = _batchnorm_layer(features, seed=seed)
    layer.eps = eps
    x = (randn(batch_size, features, seed=seed + 2) * 2 + 1).requires_grad_(True)
    upstream = randn(batch_size, features, seed=seed + 3)
    layer(x).backward(upstream)
    assert x.grad is not None and layer.weight.grad is not None and layer.bias.grad is not None
    var = x.detach().var(dim=0, unbiased=False)
    x_hat = (x.detach() - x.detach().mean(dim=0)) / torch.sqrt(var + eps)
    return {
        "dx": x.grad,
        "dgamma": layer.weight.grad,
        "dbeta": layer.bias.grad,
        "dy": upstream,
        "x_hat": x_hat,
        "var": var,
        "gamma": layer.weight.detach(),
    }


@formula_check("batchnorm-parameter-gradients")
def check_batchnorm_parameter_gradients(latex: str) -> None:
    assert_mentions(
        latex, r"\frac{\partial L}{\partial y_i}\,\hat x_i", r"\frac{\partial L}{\partial \beta} = \sum_{i=1}^{N}"
    )
    for batch_size, features in ((2, 1), (8, 3), (32, 5)):
        g = _batchnorm_gradients(seed=140 + batch_size, batch_size=batch_size, features=features)
        assert_close(g["dgamma"], (g["dy"] * g["x_hat"]).sum(dim=0), f"dgamma for N={batch_size}")
        assert_close(g["dbeta"], g["dy"].sum(dim=0), f"dbeta for N={batch_size}")


@formula_check("batchnorm-input-gradient")
def check_batchnorm_input_gradient(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\gamma}{N\sqrt{\sigma_B^2 + \epsilon}}",
        r"N\,\frac{\partial L}{\partial y_i} - \sum_{j=1}^{N} \frac{\partial L}{\partial y_j}",
        r"- \hat x_i \sum_{j=1}^{N} \frac{\partial L}{\partial y_j}\,\hat x_j",
    )
    for batch_size, features in ((2, 1), (8, 3), (32, 5)):
        g = _batchnorm_gradients(seed=150 + batch_size, batch_size=batch_size, features=features)
        dy, x_hat = g["dy"], g["x_hat"]
        formula = (
            g["gamma"]
            / (batch_size * torch.sqrt(g["var"] + BATCHNORM_EPS))
            * (batch_size * dy - dy.sum(dim=0) - x_hat * (dy * x_hat).sum(dim=0))
        )
        assert_close(formula, g["dx"], f"dx for N={batch_size}, D={features}", rtol=1e-8)


@formula_check("gradient-projection")
def check_gradient_projection(latex: str) -> None:
    assert_mentions(
        latex, r"\sum_{i=1}^{N} \frac{\partial L}{\partial x_i} = 0", r"\frac{\partial L}{\partial x_i}\,\hat x_i = 0"
    )
    for batch_size in (3, 16):
        g = _batchnorm_gradients(seed=160 + batch_size, batch_size=batch_size, features=4, eps=NEGLIGIBLE_EPS)
        scale = g["dx"].abs().max()
        assert g["dx"].sum(dim=0).abs().max() < 1e-12 * scale * batch_size, "the gradient sums to zero"
        assert (g["dx"] * g["x_hat"]).sum(dim=0).abs().max() < 1e-12 * scale * batch_size, "orthogonal to x_hat"


@formula_check("scale-invariance")
def check_scale_invariance(latex: str) -> None:
    assert_mentions(latex, r"\mathrm{BN}(aWx) = \mathrm{BN}(Wx)", r"\frac{1}{a}\,\frac{\partial L}{\partial W}")
    x, upstream = randn(10, 6, seed=170), randn(10, 3, seed=171)

    def loss_and_gradient(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = weights.clone().requires_grad_(True)
        loss = (F.batch_norm(x @ weights.T, None, None, training=True, eps=NEGLIGIBLE_EPS) * upstream).sum()
        (gradient,) = torch.autograd.grad(loss, weights)
        return loss.detach(), gradient

    weights = randn(3, 6, seed=172)
    loss, gradient = loss_and_gradient(weights)
    for a in (0.01, 3.0, 250.0):
        scaled_loss, scaled_gradient = loss_and_gradient(a * weights)
        assert_close(scaled_loss, loss, f"the output is unchanged for a={a}", rtol=1e-9)
        assert_close(scaled_gradient, gradient / a, f"the gradient is divided by a={a}", rtol=1e-8)


@formula_check("normalization-axes")
def check_normalization_axes(latex: str) -> None:
    assert_mentions(
        latex,
        r"(N, H, W) & \text{BatchNorm}",
        r"(C, H, W) & \text{LayerNorm}",
        r"(C/G, H, W) & \text{GroupNorm",
        r"(H, W) & \text{InstanceNorm}",
    )
    batch, channels, height, width, groups = 3, 6, 4, 5, 2
    x = randn(batch, channels, height, width, seed=180) * 2 + 1

    def normalize(t: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        mean, var = t.mean(dim=axes, keepdim=True), t.var(dim=axes, unbiased=False, keepdim=True)
        return (t - mean) / torch.sqrt(var + BATCHNORM_EPS)

    def plain(module: torch.nn.Module) -> torch.nn.Module:
        return module.double()

    batch_norm = plain(torch.nn.BatchNorm2d(channels, eps=BATCHNORM_EPS, affine=False))
    layer_norm = plain(torch.nn.LayerNorm([channels, height, width], eps=BATCHNORM_EPS, elementwise_affine=False))
    group_norm = plain(torch.nn.GroupNorm(groups, channels, eps=BATCHNORM_EPS, affine=False))
    instance_norm = plain(torch.nn.InstanceNorm2d(channels, eps=BATCHNORM_EPS, affine=False))
    grouped = x.reshape(batch, groups, channels // groups, height, width)
    assert_close(batch_norm(x), normalize(x, (0, 2, 3)), "BatchNorm over (N, H, W)")
    assert_close(layer_norm(x), normalize(x, (1, 2, 3)), "LayerNorm over (C, H, W)")
    assert_close(group_norm(x), normalize(grouped, (2, 3, 4)).reshape_as(x), "GroupNorm over (C/G, H, W)")
    assert_close(instance_norm(x), normalize(x, (2, 3)), "InstanceNorm over (H, W)")
    for name, module in (("LayerNorm", layer_norm), ("GroupNorm", group_norm), ("InstanceNorm", instance_norm)):
        assert_close(module(x)[:1], module(x[:1]), f"{name} does not mix the examples of a batch")
