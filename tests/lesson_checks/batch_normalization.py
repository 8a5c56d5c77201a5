"""The checks behind the display formulas of content/lessons/batch-normalization.md."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from .registry import assert_close, assert_mentions, formula_check, randn

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


def _batchnorm_stages(seed: int, batch_size: int, features: int) -> dict[str, torch.Tensor]:
    """Batch norm written in stages, with the autograd gradient of every stage (float64)."""
    x = (randn(batch_size, features, seed=seed) * 2 + 1).requires_grad_(True)
    gamma, beta = randn(features, seed=seed + 1), randn(features, seed=seed + 2)
    mean = x.mean(dim=0)
    variance = ((x - mean) ** 2).mean(dim=0)
    x_hat = (x - mean) / torch.sqrt(variance + BATCHNORM_EPS)
    for stage in (mean, variance, x_hat):
        stage.retain_grad()
    upstream = randn(batch_size, features, seed=seed + 3)
    (gamma * x_hat + beta).backward(upstream)
    reference = F.batch_norm(x.detach(), None, None, gamma, beta, training=True, eps=BATCHNORM_EPS)
    assert_close(gamma * x_hat.detach() + beta, reference, "the staged forward is batch norm")
    assert x.grad is not None and mean.grad is not None and variance.grad is not None and x_hat.grad is not None
    return {
        "x": x.detach(),
        "dy": upstream,
        "gamma": gamma,
        "mean": mean.detach(),
        "var": variance.detach(),
        "dx_hat": x_hat.grad,
        "dvar": variance.grad,
        "dmean": mean.grad,
        "dx": x.grad,
    }


BATCHNORM_STAGE_SHAPES = ((2, 1), (5, 3), (16, 4))


@formula_check("batchnorm-stage-variance")
def check_batchnorm_stage_variance(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial \hat x_i} = \gamma\,\frac{\partial L}{\partial y_i}",
        r"-\frac{1}{2}\left(\sigma_B^2 + \epsilon\right)^{-3/2} \sum_{i=1}^{N}",
    )
    for batch_size, features in BATCHNORM_STAGE_SHAPES:
        s = _batchnorm_stages(600 + batch_size, batch_size, features)
        assert_close(s["gamma"] * s["dy"], s["dx_hat"], f"dx_hat for N={batch_size}")
        dvar = -0.5 * (s["var"] + BATCHNORM_EPS) ** -1.5 * (s["dx_hat"] * (s["x"] - s["mean"])).sum(dim=0)
        assert_close(dvar, s["dvar"], f"dvar for N={batch_size}")


@formula_check("batchnorm-stage-mean")
def check_batchnorm_stage_mean(latex: str) -> None:
    assert_mentions(
        latex,
        r"-\frac{1}{\sqrt{\sigma_B^2 + \epsilon}} \sum_{i=1}^{N} \frac{\partial L}{\partial \hat x_i}",
        r"\left(-\frac{2}{N}\right) \sum_{i=1}^{N} \left(x_i - \mu_B\right)",
    )
    for batch_size, features in BATCHNORM_STAGE_SHAPES:
        s = _batchnorm_stages(610 + batch_size, batch_size, features)
        deviations = s["x"] - s["mean"]
        direct = -s["dx_hat"].sum(dim=0) / torch.sqrt(s["var"] + BATCHNORM_EPS)
        through_variance = s["dvar"] * (-2 / batch_size) * deviations.sum(dim=0)
        assert_close(direct + through_variance, s["dmean"], f"dmean for N={batch_size}")
        assert through_variance.abs().max().item() < 1e-12 * (1 + s["dvar"].abs().max().item()), "the path is zero"


@formula_check("batchnorm-stage-input")
def check_batchnorm_stage_input(latex: str) -> None:
    assert_mentions(
        latex,
        r"\frac{\partial L}{\partial \hat x_i}\,\frac{1}{\sqrt{\sigma_B^2 + \epsilon}}",
        r"\frac{\partial L}{\partial \sigma_B^2}\,\frac{2\left(x_i - \mu_B\right)}{N}",
        r"\frac{\partial L}{\partial \mu_B}\,\frac{1}{N}",
    )
    for batch_size, features in BATCHNORM_STAGE_SHAPES:
        s = _batchnorm_stages(620 + batch_size, batch_size, features)
        direct = s["dx_hat"] / torch.sqrt(s["var"] + BATCHNORM_EPS)
        through_variance = s["dvar"] * 2 * (s["x"] - s["mean"]) / batch_size
        through_mean = s["dmean"] / batch_size
        assert_close(direct + through_variance + through_mean, s["dx"], f"dx for N={batch_size}")
        if batch_size > 2:
            assert not torch.allclose(direct + through_mean, s["dx"]), "leaving out the variance path is wrong"


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
    assert_mentions(latex, r"\mathrm{BN}(aWx) = \mathrm{BN}(Wx)", r"\nabla L(aW) = \frac{1}{a}\,\nabla L(W)")
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
