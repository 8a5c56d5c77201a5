"""The training run's NumPy networks (TrainingSetup.numpy_network) against the same network under autograd.

A kind may give its training network in NumPy for the learner run; these tests hold every such
network to the PyTorch one: the same curve with the exact backward, the same curve as the autograd
path with a wrong backward, and the same refusals of unusable gradients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from grader.kinds import KINDS
from grader.kinds.base import Case, Kind, TrainingSetup
from grader.training import TrainingFailed, run_training

WITH_NUMPY = sorted(slug for slug, kind in KINDS.items() if (setup := kind.training()) and setup.numpy_network)


def setups(kind: Kind) -> tuple[TrainingSetup, TrainingSetup]:
    """(the kind's setup, the same without its NumPy network: the autograd path)."""
    setup = kind.training()
    assert setup is not None and setup.numpy_network is not None
    return setup, dataclasses.replace(setup, numpy_network=None)


def exact(kind: Kind) -> Callable[[list[Any]], Any]:
    def backward(args: list[Any]) -> Any:
        expected = kind.reference(Case("exact", dict(zip(kind.arg_names, args, strict=True))))
        return tuple(expected[output.name] for output in kind.outputs)

    return backward


def scaled(kind: Kind, factor: float) -> Callable[[list[Any]], Any]:
    """A wrong backward: every gradient times `factor`."""
    right = exact(kind)
    return lambda args: tuple(factor * value for value in right(args))


def test_linear_backward_has_a_numpy_network() -> None:
    assert "linear-backward" in WITH_NUMPY


@pytest.mark.parametrize("slug", WITH_NUMPY)
def test_the_numpy_network_with_the_exact_backward_follows_the_autograd_curve(slug: str) -> None:
    kind = KINDS[slug]
    numpy_setup, _ = setups(kind)
    for seed in (0, 7, 2**32 - 1):
        run = run_training(kind, numpy_setup, exact(kind), seed=seed)
        assert run.rel_error < 1e-12, seed
        assert run.learner_loss[-1] < 0.5 * run.learner_loss[0]


@pytest.mark.parametrize("slug", WITH_NUMPY)
@pytest.mark.parametrize("factor", [0.5, 1.0001, -1.0])
def test_the_numpy_network_gives_the_autograd_paths_curve_for_a_wrong_backward(slug: str, factor: float) -> None:
    kind = KINDS[slug]
    numpy_setup, torch_setup = setups(kind)
    wrong = scaled(kind, factor)
    with_numpy = run_training(kind, numpy_setup, wrong, seed=3)
    with_torch = run_training(kind, torch_setup, wrong, seed=3)
    assert with_numpy.reference_loss == with_torch.reference_loss  # the reference is autograd's either way
    difference = np.abs(np.subtract(with_numpy.learner_loss, with_torch.learner_loss))
    assert (difference <= 1e-12 * np.abs(with_torch.learner_loss)).all()
    assert with_numpy.rel_error == pytest.approx(with_torch.rel_error, rel=1e-9)
    assert with_numpy.rel_error > 1e-5


@pytest.mark.parametrize("slug", WITH_NUMPY)
def test_the_numpy_network_passes_the_layer_the_same_arguments(slug: str) -> None:
    kind = KINDS[slug]
    numpy_setup, torch_setup = setups(kind)
    seen: dict[str, list[list[Any]]] = {"numpy": [], "torch": []}

    def recording(path: str) -> Callable[[list[Any]], Any]:
        right = exact(kind)

        def backward(args: list[Any]) -> Any:
            seen[path].append([np.array(value, copy=True) for value in args])
            return right(args)

        return backward

    run_training(kind, numpy_setup, recording("numpy"), seed=5, steps=4)
    run_training(kind, torch_setup, recording("torch"), seed=5, steps=4)
    assert len(seen["numpy"]) == len(seen["torch"]) > 0
    for numpy_args, torch_args in zip(seen["numpy"], seen["torch"], strict=True):
        for ours, theirs in zip(numpy_args, torch_args, strict=True):
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float64
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("slug", WITH_NUMPY)
@pytest.mark.parametrize(
    "spoil",
    [
        lambda grads: grads[:-1],
        lambda grads: (grads[0], grads[1].T, *grads[2:]),
        lambda grads: (grads[0], np.full_like(grads[1], np.nan), *grads[2:]),
        lambda grads: (grads[0], grads[1].astype(str), *grads[2:]),
    ],
    ids=["one-missing", "transposed", "nan", "strings"],
)
def test_both_paths_refuse_an_unusable_gradient_with_the_same_message(slug: str, spoil: Any) -> None:
    kind = KINDS[slug]
    numpy_setup, torch_setup = setups(kind)
    right = exact(kind)

    def spoiled(args: list[Any]) -> Any:
        return spoil(tuple(right(args)))

    messages = []
    for setup in (numpy_setup, torch_setup):
        with pytest.raises(TrainingFailed) as failure:
            run_training(kind, setup, spoiled, seed=1)
        messages.append(str(failure.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("step 0: ")


@pytest.mark.parametrize("slug", WITH_NUMPY)
def test_the_numpy_run_never_updates_an_array_the_call_returned(slug: str) -> None:
    kind = KINDS[slug]
    numpy_setup, _ = setups(kind)
    right = exact(kind)
    returned: list[tuple[np.ndarray, np.ndarray]] = []

    def keeping(args: list[Any]) -> Any:
        grads = tuple(right(args))
        returned.extend((grad, grad.copy()) for grad in grads)
        return grads

    run_training(kind, numpy_setup, keeping, seed=2, steps=3)
    assert returned
    for kept, copy in returned:
        np.testing.assert_array_equal(kept, copy)
