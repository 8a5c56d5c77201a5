"""The checks behind the display formulas of content/lessons/backpropagation.md (gradient checking included)."""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F

from .registry import assert_close, assert_mentions, formula_check, randn


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


@formula_check("gate-rules")
def check_gate_rules(latex: str) -> None:
    assert_mentions(
        latex,
        r"z = x + y:\; \frac{\partial L}{\partial x} = g,\; \frac{\partial L}{\partial y} = g",
        r"z = x\,y:\; \frac{\partial L}{\partial x} = y\,g,\; \frac{\partial L}{\partial y} = x\,g",
        r"z = \max(x, y):\; \frac{\partial L}{\partial x} = [x > y]\, g,\; \frac{\partial L}{\partial y} = [y > x]\, g",
    )
    x, y = randn(50, seed=180, requires_grad=True), randn(50, seed=181, requires_grad=True)
    upstream = randn(50, seed=182)
    for name, gate, expected in (
        ("add", torch.add, lambda a, b, g: (g, g)),
        ("multiply", torch.mul, lambda a, b, g: (b * g, a * g)),
        ("max", torch.maximum, lambda a, b, g: ((a > b) * g, (b > a) * g)),
    ):
        dx, dy = torch.autograd.grad(gate(x, y), [x, y], upstream)
        want_x, want_y = expected(x.detach(), y.detach(), upstream)
        assert_close(dx, want_x.double(), f"{name}: gradient of x")
        assert_close(dy, want_y.double(), f"{name}: gradient of y")


@formula_check("fork-rule")
def check_fork_rule(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial u}\,\frac{\partial u}{\partial x}",
        r"+ \frac{\partial L}{\partial v}\,\frac{\partial v}{\partial x}",
    )
    x = randn(6, seed=190, requires_grad=True)
    u = torch.sin(x)
    v = x**2
    u.retain_grad()
    v.retain_grad()
    loss = (u * v).sum() + u.exp().sum()
    loss.backward()
    assert x.grad is not None and u.grad is not None and v.grad is not None
    summed = u.grad * torch.cos(x.detach()) + v.grad * 2 * x.detach()
    assert_close(summed, x.grad, "the two paths add")
    assert not torch.allclose(u.grad * torch.cos(x.detach()), x.grad), "one path alone is not the gradient"


@formula_check("staged-example")
def check_staged_example(latex: str) -> None:
    assert_mentions(latex, r"\frac{\partial f}{\partial y} = 2 + 5 = 7")
    numbers = [float(n) for n in re.findall(r"= (-?\d+)(?:\s*,|\s*$)", latex.replace(r"\qquad", ",\n"), re.M)]
    x, y, z = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (3.0, 2.0, -1.0))
    f = (x + y) * torch.maximum(y, z)
    assert f.item() == 10.0
    f.backward()
    assert x.grad is not None and y.grad is not None and z.grad is not None
    assert numbers == [x.grad.item(), y.grad.item(), z.grad.item()], numbers


@formula_check("weight-layouts")
def check_weight_layouts(latex: str) -> None:
    assert_mentions(
        latex,
        r"W_{\text{col}} = W_{\text{pt}} = W^{\top}",
        r"\frac{\partial L}{\partial W_{\text{pt}}} = \left(\frac{\partial L}{\partial Z}\right)^{\!\top} X",
        r"= \left(X^{\top}\,\frac{\partial L}{\partial Z}\right)^{\!\top}",
    )
    layer = torch.nn.Linear(4, 3).double()
    x, upstream = randn(5, 4, seed=200), randn(5, 3, seed=201)
    w = layer.weight.detach().T.clone()  # the exercises' (D_in, D_out) layout
    assert_close(layer(x).detach(), x @ w + layer.bias.detach(), "nn.Linear computes X W_pt^T + b = X W + b")
    column = torch.stack([layer.weight.detach() @ x[n] for n in range(5)])
    assert_close(column + layer.bias.detach(), layer(x).detach(), "column form z = W_col a + b, W_col = W_pt")
    layer(x).backward(upstream)
    assert layer.weight.grad is not None
    assert_close(layer.weight.grad, upstream.T @ x, "dW_pt = dZ^T X")
    assert_close(layer.weight.grad, (x.T @ upstream).T, "dW_pt is the transpose of dW = X^T dZ")


def _smooth(x: float) -> float:
    return math.exp(math.sin(x)) + x**3


def _smooth_derivative(x: float) -> float:
    return math.cos(x) * math.exp(math.sin(x)) + 3 * x**2


def _third_derivative(x: float) -> float:
    """The third derivative of the smooth test function, by autograd three times over."""
    value = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    derivative = torch.exp(torch.sin(value)) + value**3
    for _ in range(3):
        (derivative,) = torch.autograd.grad(derivative, value, create_graph=True)
    return float(derivative.detach())


@formula_check("central-difference")
def check_central_difference(latex: str) -> None:
    assert_mentions(latex, r"\frac{L(\theta + h\, e_i) - L(\theta - h\, e_i)}{2h}")
    from grader.gradcheck import numerical_derivatives

    point, exact = 0.7, _smooth_derivative(0.7)
    for h in (1e-2, 1e-3):
        central = (_smooth(point + h) - _smooth(point - h)) / (2 * h)
        half = (_smooth(point + h / 2) - _smooth(point - h / 2)) / h
        forward = (_smooth(point + h) - _smooth(point)) / h
        assert abs(forward - exact) > 10 * abs(central - exact), "the symmetric quotient is far better"
        assert 3.5 < abs(central - exact) / abs(half - exact) < 4.5, "halving h quarters the error: O(h^2)"
    # The grader computes exactly this quotient, one entry at a time, without changing the input.
    theta = randn(3, 4, seed=210).numpy()
    original = theta.copy()

    def function(inputs: dict[str, Any]) -> float:
        return float((inputs["theta"] ** 3).sum())

    indices = [(0, 1), (2, 3)]
    values = numerical_derivatives(function, {"theta": theta}, ("theta",), indices, step=1e-6)
    for index, value in zip(indices, values, strict=True):
        nudged = [theta.copy(), theta.copy()]
        nudged[0][index] += 1e-6
        nudged[1][index] -= 1e-6
        assert value == (float((nudged[0] ** 3).sum()) - float((nudged[1] ** 3).sum())) / 2e-6
    assert (theta == original).all()


@formula_check("relative-error")
def check_relative_error(latex: str) -> None:
    assert_mentions(latex, r"\max_i \frac{|a_i - b_i|}{\max\left(10^{-8},\; |a_i| + |b_i|\right)}")
    from grader.gradcheck import DENOMINATOR_FLOOR, rel_error

    assert DENOMINATOR_FLOOR == 1e-8
    a, b = randn(4, 5, seed=220), randn(4, 5, seed=221)
    by_formula = ((a - b).abs() / torch.clamp(a.abs() + b.abs(), min=1e-8)).max().item()
    assert math.isclose(rel_error(a.numpy(), b.numpy()), by_formula)
    small = torch.tensor([1e-4, 1e3], dtype=torch.float64)
    off = small + torch.tensor([1e-4, 1e-4], dtype=torch.float64)
    assert rel_error(off.numpy(), small.numpy()) > 0.3, "the worst entry counts: a small entry wrong by 100%"
    assert rel_error(torch.zeros(3).numpy(), torch.zeros(3).numpy()) == 0.0, "two zeros do not divide by zero"
    assert rel_error(a.numpy(), a.numpy().T) == math.inf, "a shape mismatch is an infinite error"


@formula_check("step-size")
def check_step_size(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{h^2}{6}\,|L'''| + \frac{\varepsilon\,|L|}{h}",
        r"h^{\ast} = \left(\frac{3\,\varepsilon\,|L|}{|L'''|}\right)^{1/3}",
    )
    from grader.gradcheck import STEP

    point = torch.tensor(0.7, dtype=torch.float64)
    exact = _smooth_derivative(0.7)
    steps = [10.0 ** (-k / 4) for k in range(4, 41)]  # 1e-1 ... 1e-10
    for dtype, epsilon in ((torch.float64, 2.0**-53), (torch.float32, 2.0**-24)):
        x = point.to(dtype)

        def f(value: torch.Tensor) -> torch.Tensor:
            return torch.exp(torch.sin(value)) + value**3

        errors = [abs(float((f(x + h) - f(x - h)) / (2 * h)) - exact) for h in steps]
        best = steps[errors.index(min(errors))]
        third = abs(_third_derivative(0.7))
        optimum = (3 * epsilon * _smooth(0.7) / third) ** (1 / 3)
        assert optimum / 30 < best < optimum * 30, f"{dtype}: best h {best:.1e}, formula {optimum:.1e}"
        at_grader_step = abs(float((f(x + STEP) - f(x - STEP)) / (2 * STEP)) - exact) / abs(exact)
        if dtype == torch.float64:
            assert STEP == 1e-6 and at_grader_step < 1e-8, "h = 1e-6 is accurate in float64"
            assert 1e-6 < optimum < 1e-4, "h* is around 1e-5 in float64"
        else:
            assert at_grader_step > 1e-3, "h = 1e-6 is useless in float32"
