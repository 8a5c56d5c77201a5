"""Every parameterized generator, on many seeds, against an independent computation.

Gradients are recomputed with PyTorch autograd from the variant's raw inputs;
shapes and counts with PyTorch layers. The generators themselves use NumPy
formulas, so a sign or transpose slip in either shows up here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from quizzes.grading import Tolerance, format_matrix, grade_matrix
from quizzes.parameterized import BATCHNORM_EPS, GENERATORS, Variant, variant_for

SEEDS = range(200)
# The independent computation runs in float64; answers are exact to far below any stated tolerance.
AGREEMENT = 1e-9


def t(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def scalar_network(inputs: dict[str, np.ndarray], wrt: str) -> np.ndarray:
    params = {name: t(inputs[name], grad=True) for name in ("w1", "b1", "w2", "b2")}
    h = torch.relu(params["w1"] * t(inputs["x"]) + params["b1"])
    loss = (params["w2"] * h + params["b2"] - t(inputs["y"])) ** 2
    loss.backward()
    grad = params[wrt].grad
    assert grad is not None
    return grad.numpy()


def linear_dw(inputs: dict[str, np.ndarray]) -> np.ndarray:
    w = t(inputs["w"], grad=True)
    out = t(inputs["x"]) @ w + t(np.zeros(2))
    out.backward(t(inputs["dout"]))
    assert w.grad is not None
    return w.grad.numpy()


def mse_dpred(inputs: dict[str, np.ndarray]) -> np.ndarray:
    pred = t(inputs["pred"], grad=True)
    F.mse_loss(pred, t(inputs["target"])).backward()
    assert pred.grad is not None
    return pred.grad.numpy()


def elementwise_backward(function: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], np.ndarray]:
    def compute(inputs: dict[str, np.ndarray]) -> np.ndarray:
        x = t(inputs["x"], grad=True)
        function(x).backward(t(inputs["dout"]) if "dout" in inputs else None)
        assert x.grad is not None
        return x.grad.numpy()

    return compute


def cross_entropy_dlogits(inputs: dict[str, np.ndarray]) -> np.ndarray:
    logits = t(inputs["logits"], grad=True)
    F.cross_entropy(logits.unsqueeze(0), torch.tensor([int(inputs["y"])])).backward()
    assert logits.grad is not None
    return logits.grad.numpy()


def batchnorm_output(inputs: dict[str, np.ndarray]) -> np.ndarray:
    x = t(inputs["x"]).reshape(4, 1)
    gamma, beta = t(inputs["gamma"]).reshape(1), t(inputs["beta"]).reshape(1)
    out = F.batch_norm(x, None, None, weight=gamma, bias=beta, training=True, eps=BATCHNORM_EPS)
    return out.detach().numpy().ravel()


def batchnorm_dgamma_dbeta(inputs: dict[str, np.ndarray]) -> np.ndarray:
    gamma, beta = t(np.ones(2), grad=True), t(np.zeros(2), grad=True)
    out = F.batch_norm(t(inputs["x"]), None, None, weight=gamma, bias=beta, training=True, eps=BATCHNORM_EPS)
    out.backward(t(inputs["dout"]))
    assert gamma.grad is not None and beta.grad is not None
    return np.stack([gamma.grad.numpy(), beta.grad.numpy()])


def conv_shape(inputs: dict[str, np.ndarray]) -> np.ndarray:
    layer = torch.nn.Conv2d(
        int(inputs["channels"]),
        int(inputs["filters"]),
        kernel_size=int(inputs["kernel"]),
        stride=int(inputs["stride"]),
        padding=int(inputs["pad"]),
    )
    size = int(inputs["size"])
    with torch.no_grad():
        out = layer(torch.zeros(1, int(inputs["channels"]), size, size))
    return np.array(out.shape[1:], dtype=float)


def conv_forward(inputs: dict[str, np.ndarray]) -> np.ndarray:
    out = F.conv2d(t(inputs["x"]).reshape(1, 1, 3, 3), t(inputs["w"]).reshape(1, 1, 2, 2), t(inputs["b"]).reshape(1))
    return out.numpy().reshape(2, 2)


def maxpool_dx(inputs: dict[str, np.ndarray]) -> np.ndarray:
    x = t(inputs["x"], grad=True)
    F.max_pool2d(x.reshape(1, 1, 4, 4), kernel_size=2, stride=2).backward(t(inputs["dout"]).reshape(1, 1, 2, 2))
    assert x.grad is not None
    return x.grad.numpy()


def conv_parameters(inputs: dict[str, np.ndarray]) -> np.ndarray:
    layer = torch.nn.Conv2d(int(inputs["channels_in"]), int(inputs["channels_out"]), kernel_size=int(inputs["kernel"]))
    return np.asarray(float(sum(p.numel() for p in layer.parameters())))


def attention_weights(inputs: dict[str, np.ndarray]) -> np.ndarray:
    q, k = t(inputs["q"]).reshape(1, 1, 2), t(inputs["k"]).reshape(1, 3, 2)
    v = torch.eye(3, dtype=torch.float64).reshape(1, 3, 3)  # identity values expose the weights
    return F.scaled_dot_product_attention(q, k, v).numpy().ravel()


def attention_dv(inputs: dict[str, np.ndarray]) -> np.ndarray:
    v = t(inputs["v"], grad=True)
    out = F.scaled_dot_product_attention(t(inputs["q"])[None], t(inputs["k"])[None], v[None])
    out.backward(t(inputs["dout"])[None])
    assert v.grad is not None
    return v.grad.numpy()


INDEPENDENT: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {
    "scalar_network_dw2": lambda inputs: scalar_network(inputs, "w2"),
    "scalar_network_dw1": lambda inputs: scalar_network(inputs, "w1"),
    "linear_backward_dw": linear_dw,
    "mse_dpred": mse_dpred,
    "sigmoid_local_gradient": elementwise_backward(torch.sigmoid),
    "tanh_backward_vector": elementwise_backward(torch.tanh),
    "relu_backward_vector": elementwise_backward(torch.relu),
    "softmax_cross_entropy_dlogits": cross_entropy_dlogits,
    "batchnorm_forward_output": batchnorm_output,
    "batchnorm_dgamma_dbeta": batchnorm_dgamma_dbeta,
    "conv_output_shape": conv_shape,
    "conv2d_valid_output": conv_forward,
    "maxpool_backward": maxpool_dx,
    "conv_parameter_count": conv_parameters,
    "attention_weights": attention_weights,
    "attention_dv": attention_dv,
}


def test_every_generator_has_an_independent_check() -> None:
    assert set(INDEPENDENT) == set(GENERATORS)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_generator_answer_matches_pytorch_on_200_seeds(name: str) -> None:
    for seed in SEEDS:
        variant = variant_for(name, seed)
        independent = INDEPENDENT[name](variant.inputs)
        np.testing.assert_allclose(
            variant.answer, np.asarray(independent).reshape(variant.answer.shape), rtol=AGREEMENT, atol=AGREEMENT
        )


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_expected_answer_typed_as_shown_is_graded_correct(name: str) -> None:
    """What the feedback shows as the answer must itself pass (rounding in the display stays in tolerance)."""
    for seed in range(50):
        variant = variant_for(name, seed)
        shown = format_matrix(variant.answer)
        assert grade_matrix(shown, variant.answer, variant.tolerance).is_correct, (name, seed, shown)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_same_seed_gives_the_same_variant_and_seeds_differ(name: str) -> None:
    first, again = variant_for(name, 7), variant_for(name, 7)
    assert first.values == again.values
    np.testing.assert_array_equal(first.answer, again.answer)
    distinct = {tuple(sorted(variant_for(name, seed).values.items())) for seed in range(30)}
    assert len(distinct) >= 5, f"{name} produced only {len(distinct)} different variants in 30 seeds"


def test_the_scalar_network_keeps_its_relu_active_and_its_error_nonzero() -> None:
    for seed in SEEDS:
        inputs = variant_for("scalar_network_dw2", seed).inputs
        assert float(inputs["z"]) >= 1
        assert float(inputs["y_hat"]) != float(inputs["y"])


def test_maxpool_inputs_have_no_ties_and_relu_inputs_avoid_the_kink() -> None:
    for seed in SEEDS:
        x = variant_for("maxpool_backward", seed).inputs["x"]
        assert len(np.unique(x)) == x.size
        assert (variant_for("relu_backward_vector", seed).inputs["x"] != 0).all()


def test_a_variant_states_a_tolerance_the_learner_can_meet_with_two_decimals() -> None:
    """Answers with decimals promise a tolerance a learner can reach by rounding to 2 or 3 decimals."""
    for name in GENERATORS:
        variant: Variant = variant_for(name, 3)
        rounded = np.round(variant.answer, 3)
        assert grade_matrix(format_matrix(rounded), variant.answer, variant.tolerance).is_correct, name


def test_sigmoid_tolerance_is_relative_with_an_absolute_floor() -> None:
    tolerance = variant_for("sigmoid_local_gradient", 0).tolerance
    assert tolerance == Tolerance(absolute=1e-3, relative=0.01)
    assert math.isclose(tolerance.allowed(0.2), 0.002)
