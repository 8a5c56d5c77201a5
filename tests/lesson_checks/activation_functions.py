"""The checks behind the display formulas of content/lessons/activation-functions.md."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .registry import assert_close, assert_mentions, formula_check, randn

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
