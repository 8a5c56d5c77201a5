"""The reference training run: the kind's small network trained twice, side by side.

Both runs start from the same parameters and see the same fixed batch, and take
`steps` plain SGD steps (`torch.optim.SGD`, no momentum):

- the reference run differentiates the kind's trusted forward with PyTorch autograd;
- the learner run uses the same forward, but the layer's backward is the learner's
  function, called in the sandbox through `call` (a `torch.autograd.Function` whose
  backward hands the upstream gradient and the layer's inputs over as NumPy arrays).

Loss values are always computed by the trusted forward, so the curves differ only
through the gradients. They agree when the step-by-step relative error (CS231n's,
grader/gradcheck.py) stays within the spec's `training_loss_rel`. torch runs here, in
the trusted process, in float64 with one thread; the sandbox child never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grader.gradcheck import rel_error
from grader.kinds.base import Kind, TrainingSetup, to_numpy, to_tensor

LearnerCall = Callable[[list[Any]], Any]


class TrainingFailed(Exception):
    """The learner's backward returned something the training loop cannot use (message is learner-safe)."""


@dataclass
class TrainingRun:
    steps: list[int]
    learner_loss: list[float]
    reference_loss: list[float]
    rel_error: float
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "learner_loss": [_finite_or_none(value) for value in self.learner_loss],
            "reference_loss": self.reference_loss,
            "rel_error": _finite_or_none(self.rel_error),
            "description": self.description,
        }


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


class _Bridge:
    """Carries one layer call's structure between the forward and the learner's backward."""

    def __init__(self, kind: Kind, kwargs: dict[str, Any], call: LearnerCall, step: int) -> None:
        self.kind = kind
        self.call = call
        self.step = step
        # Differentiable arguments as a flat list of tensors (dicts contribute their values in order).
        self.layout: list[tuple[str, str | None]] = []
        self.constants: dict[str, Any] = {}
        self.tensors: list[torch.Tensor] = []
        for name, value in kwargs.items():
            if name in kind.differentiable:
                if isinstance(value, dict):
                    for key, tensor in value.items():
                        self.layout.append((name, key))
                        self.tensors.append(tensor)
                else:
                    self.layout.append((name, None))
                    self.tensors.append(value)
            else:
                self.constants[name] = value

    def arguments(self, leaves: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        args = dict(self.constants)
        for (name, key), leaf in zip(self.layout, leaves, strict=True):
            if key is None:
                args[name] = leaf
            else:
                args.setdefault(name, {})[key] = leaf
        return args

    def backward(self, upstream: torch.Tensor, leaves: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        kind = self.kind
        args = {name: to_numpy(value) for name, value in self.arguments(leaves).items()}
        if kind.upstream is not None:
            args[kind.upstream] = to_numpy(upstream)
        result = self.call(kind.call_args(args))
        try:
            returned = kind.split_result(result)
        except ValueError as error:
            raise TrainingFailed(f"step {self.step}: {error}") from None
        by_input = {output.of: returned[output.name] for output in kind.outputs if output.of is not None}
        grads = []
        for (name, key), leaf in zip(self.layout, leaves, strict=True):
            value = by_input[name]
            label = name if key is None else f"{name}[{key!r}]"
            if key is not None:
                if not isinstance(value, dict) or key not in value:
                    raise TrainingFailed(f"step {self.step}: the gradient of {label} is missing")
                value = value[key]
            array = np.asarray(value) if isinstance(value, np.ndarray | float | int) else None
            if array is None or array.shape != tuple(leaf.shape) or not np.issubdtype(array.dtype, np.number):
                raise TrainingFailed(
                    f"step {self.step}: the gradient of {label} does not have shape {tuple(leaf.shape)}"
                )
            if not np.isfinite(array).all():
                raise TrainingFailed(f"step {self.step}: the gradient of {label} has NaN or infinite entries")
            grad = torch.as_tensor(array.astype(np.float64))
            if kind.upstream is None:
                grad = grad * upstream  # a loss layer: chain the scalar upstream gradient (1 for the final loss)
            grads.append(grad)
        return grads


class _LearnerBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bridge: _Bridge, *leaves: torch.Tensor) -> torch.Tensor:
        ctx.bridge = bridge
        ctx.save_for_backward(*leaves)
        return bridge.kind.torch_forward(bridge.arguments(leaves)).detach()

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[Any, ...]:
        grads = ctx.bridge.backward(upstream, ctx.saved_tensors)
        return (None, *grads)


def run_training(
    kind: Kind,
    setup: TrainingSetup,
    call: LearnerCall,
    *,
    seed: int,
    steps: int | None = None,
    lr: float | None = None,
) -> TrainingRun:
    """Train the setup's network with autograd and with the learner's backward; return both curves.

    Raises TrainingFailed when the learner's gradients cannot be used (wrong shape, NaN);
    SandboxError from `call` propagates.
    """
    torch.set_num_threads(1)
    steps = steps or setup.steps
    lr = lr or setup.lr
    rng = np.random.default_rng(seed)
    initial = setup.init(rng)
    batch = to_tensor(setup.data(rng))

    def reference_layer(**kwargs: Any) -> torch.Tensor:
        return kind.torch_forward(kwargs)

    reference_loss = _train(setup, initial, batch, steps=steps, lr=lr, layer_for=lambda step: reference_layer)

    def learner_layer_for(step: int) -> Callable[..., torch.Tensor]:
        def learner_layer(**kwargs: Any) -> torch.Tensor:
            bridge = _Bridge(kind, kwargs, call, step)
            result: torch.Tensor = _LearnerBackward.apply(bridge, *bridge.tensors)
            return result

        return learner_layer

    learner_loss = _train(setup, initial, batch, steps=steps, lr=lr, layer_for=learner_layer_for)
    return TrainingRun(
        steps=list(range(steps)),
        learner_loss=learner_loss,
        reference_loss=reference_loss,
        rel_error=rel_error(learner_loss, reference_loss),
        description=setup.description,
    )


def _train(
    setup: TrainingSetup,
    initial: dict[str, np.ndarray],
    batch: dict[str, Any],
    *,
    steps: int,
    lr: float,
    layer_for: Callable[[int], Callable[..., torch.Tensor]],
) -> list[float]:
    params = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in initial.items()}
    optimizer = torch.optim.SGD(list(params.values()), lr=lr)
    losses = []
    with torch.enable_grad():
        for step in range(steps):
            optimizer.zero_grad()
            loss = setup.loss(params, batch, layer_for(step))
            losses.append(float(loss.detach()))
            loss.backward()
            optimizer.step()
    return losses
