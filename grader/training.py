"""The reference training run: the kind's small network trained twice, side by side.

Both runs start from the same parameters and see the same fixed batch, and take
`steps` plain SGD steps (no momentum: `p -= lr * p.grad`, what `torch.optim.SGD` does, without its
per-step dispatch overhead):

- the reference run differentiates the kind's trusted forward with PyTorch autograd;
- the learner run uses the same forward, but the layer's backward is the learner's
  function, called in the sandbox through `call` (a `torch.autograd.Function` whose
  backward hands the upstream gradient and the layer's inputs over as NumPy arrays).
  When the setup also gives the network in NumPy (`TrainingSetup.numpy_network`, the same
  float64 math differentiated by hand around the layer, grader/sandbox/networks.py), the learner
  run uses it instead: the same calls with the same arguments, without an autograd graph each
  step. In a grading the sandbox child then runs that network too and makes the calls itself,
  streaming their results (`stream`, Session.stream): no round trip per call, while this side
  still computes every loss from its own parameters and checks every gradient it uses.

Loss values are always computed by the trusted forward, so the curves differ only
through the gradients. Every gradient the learner returns is checked the same way on
both paths (count, shape, a number dtype, finite entries) before it is used.

The reference curve depends only on the kind, the setup, the seed, the
number of steps and the rate, never on the learner. So a `ReferenceRun` can take its steps
ahead, one at a time, while the sandbox child loads the code or runs calls (the engine's idle
work, grader/backlog.py), and a `ReferenceCurves` cache (held by the warm engine) keeps it under
a key the caller derives from the spec's content and those values, so a regrade with the same
seed skips it and any change of the spec gets a curve of its own.

The curves agree when the step-by-step relative error (CS231n's,
grader/gradcheck.py) stays within the spec's `training_loss_rel`. torch runs here, in
the trusted process, in float64 with one thread; the sandbox child never imports it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grader.gradcheck import rel_error
from grader.kinds.base import Kind, LayerFn, TrainingSetup, to_numpy, to_tensor
from grader.sandbox import networks

LearnerCall = Callable[[list[Any]], Any]
# A streamed learner run (Session.stream): (the run's description, its arrays) -> each call's result.
LearnerStream = Callable[[dict[str, Any], dict[str, Any]], Generator[Any, None, None]]


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


class ReferenceCurves:
    """A bounded cache of reference loss curves (tuples of floats: immutable, filled by trusted code only)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._curves: OrderedDict[Hashable, tuple[float, ...]] = OrderedDict()

    def find(self, key: Hashable) -> list[float] | None:
        """A copy of the curve stored under `key`, or None (counted as a hit or a miss)."""
        curve = self._curves.get(key)
        if curve is None:
            self.misses += 1
            return None
        self.hits += 1
        self._curves.move_to_end(key)
        return list(curve)

    def store(self, key: Hashable, curve: list[float]) -> None:
        self._curves[key] = tuple(float(value) for value in curve)
        while len(self._curves) > self.size:
            self._curves.popitem(last=False)


class ReferenceRun:
    """The reference curve of one training run (PyTorch autograd), a step at a time or all at once.

    `step()` takes one more SGD step (a grading does them as the sandbox session's idle work, see
    grader/backlog.py) and `losses()` takes the steps left and returns the curve: the same curve
    either way. With `cache`, a cache and a key that identifies the spec's content, a curve already
    computed for the same key, seed, steps and rate is served without a step, and a new one is stored.
    """

    def __init__(
        self,
        kind: Kind,
        setup: TrainingSetup,
        *,
        seed: int,
        steps: int | None = None,
        lr: float | None = None,
        cache: tuple[ReferenceCurves, Hashable] | None = None,
    ) -> None:
        self.kind = kind
        self.setup = setup
        self.seed = seed
        self.steps = steps or setup.steps
        self.lr = lr or setup.lr
        self._losses: list[float] = []
        self._curve: list[float] | None = None
        self._failed = False
        self._params: dict[str, torch.Tensor] | None = None
        self._batch: dict[str, Any] = {}
        self._store: tuple[ReferenceCurves, Hashable] | None = None
        if cache is not None:
            curves, key = cache
            full_key = (key, kind.slug, seed, self.steps, self.lr)
            self._curve = curves.find(full_key)
            self._store = (curves, full_key)

    def step(self) -> bool:
        """Take one more step; False, doing nothing, once the curve is complete."""
        if self._curve is not None:
            return False
        if self._failed:
            raise RuntimeError("an earlier step of this reference run failed")
        self._failed = True  # until this step is through: a half-done step leaves no usable state
        if self._params is None:
            torch.set_num_threads(1)
            initial, data = _initial_state(self.setup, self.seed)
            self._params = _leaves(initial)
            self._batch = to_tensor(data)
        self._losses.append(_sgd_step(self.setup, self._params, self._batch, self._layer, self.lr))
        self._failed = False
        if len(self._losses) == self.steps:
            self._curve = self._losses
            if self._store is not None:
                self._store[0].store(self._store[1], self._curve)
        return True

    def losses(self) -> list[float]:
        """The whole curve (a copy), taking the steps that are left."""
        while self.step():
            pass
        assert self._curve is not None
        return list(self._curve)

    def _layer(self, **kwargs: Any) -> torch.Tensor:
        return self.kind.torch_forward(kwargs)


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
        shapes = [tuple(leaf.shape) for leaf in leaves]
        grads = []
        for array in _checked_gradients(kind, result, self.layout, shapes, self.step):
            grad = torch.as_tensor(array)
            if kind.upstream is None:
                grad = grad * upstream  # a loss layer: chain the scalar upstream gradient (1 for the final loss)
            grads.append(grad)
        return grads


def _checked_gradients(
    kind: Kind, result: Any, layout: list[tuple[str, str | None]], shapes: list[tuple[int, ...]], step: int
) -> list[np.ndarray]:
    """The learner's gradient of each (argument, dict key) of `layout`, as new float64 arrays.

    Raises TrainingFailed when one is missing, has another shape than its argument, is not a
    number array or has NaN or infinite entries (grader/sandbox/networks.py's `gradients`, which a
    streamed run's child applies too).
    """
    try:
        return networks.gradients(_outputs(kind), result, layout, shapes)
    except networks.GradientError as error:
        raise TrainingFailed(f"step {step}: {error}") from None


def _outputs(kind: Kind) -> list[tuple[str, str | None]]:
    return [(output.name, output.of) for output in kind.outputs]


class _NumpyLayer:
    """The layer's backward for a NumPy learner run (`TrainingSetup.numpy_network`): the learner's function.

    With `call`, each call of the layer calls it; with `replies` (a streamed run), each takes the
    next result the child sent, which it got calling the function with the same arguments.
    """

    def __init__(self, kind: Kind, call: LearnerCall | None = None, replies: Iterator[Any] | None = None) -> None:
        self.kind = kind
        self.call = call
        self.replies = replies
        self.step = 0

    def at_step(self, step: int) -> None:
        self.step = step

    def __call__(self, args: dict[str, Any], upstream: Any) -> dict[str, Any]:
        kind = self.kind
        layout, shapes = networks.layout_of(kind.differentiable, args)
        if self.replies is not None:
            result = next(self.replies)
        else:
            assert self.call is not None
            full = dict(args)
            if kind.upstream is not None:
                full[kind.upstream] = upstream
            result = self.call(kind.call_args(full))
        grads = _checked_gradients(kind, result, layout, shapes, self.step)
        return networks.rebuild(layout, grads, upstream, chain=kind.upstream is None)


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
    reference: ReferenceRun | None = None,
    stream: LearnerStream | None = None,
) -> TrainingRun:
    """Train the setup's network with autograd and with the learner's backward; return both curves.

    With `stream` and a setup that has a NumPy network, the sandbox child makes the learner run's
    calls itself and streams their results (no round trip per call); the losses and the checks of
    every gradient stay on this side.

    `reference` is the reference run for the same kind, setup, seed, steps and rate (cached, or
    partly computed ahead); by default it is computed here. `call` gets the layer's arguments as
    NumPy arrays and must not change them (the sandbox's calls work on copies).
    Raises TrainingFailed when the learner's gradients cannot be used (wrong shape, NaN);
    SandboxError from `call` propagates.
    """
    torch.set_num_threads(1)
    steps = steps or setup.steps
    lr = lr or setup.lr
    if reference is None:
        reference = ReferenceRun(kind, setup, seed=seed, steps=steps, lr=lr)
    elif (reference.kind, reference.setup, reference.seed, reference.steps, reference.lr) != (
        kind,
        setup,
        seed,
        steps,
        lr,
    ):
        raise ValueError("the reference run is not this training run's")
    initial, data = _initial_state(setup, seed)

    def learner_layer_for(step: int) -> Callable[..., torch.Tensor]:
        def learner_layer(**kwargs: Any) -> torch.Tensor:
            bridge = _Bridge(kind, kwargs, call, step)
            result: torch.Tensor = _LearnerBackward.apply(bridge, *bridge.tensors)
            return result

        return learner_layer

    if setup.numpy_network is not None and stream is not None:
        learner_loss = _train_streamed(kind, setup, initial, data, stream, steps=steps, lr=lr)
    elif setup.numpy_network is not None:
        layer = _NumpyLayer(kind, call)
        network = networks.NETWORKS[setup.numpy_network]
        learner_loss = networks.train(network, initial, data, layer, steps=steps, lr=lr, on_step=layer.at_step)
    else:
        params, batch = _leaves(initial), to_tensor(data)
        learner_loss = [_sgd_step(setup, params, batch, learner_layer_for(step), lr) for step in range(steps)]
    reference_loss = reference.losses()
    return TrainingRun(
        steps=list(range(steps)),
        learner_loss=learner_loss,
        reference_loss=reference_loss,
        rel_error=rel_error(learner_loss, reference_loss),
        description=setup.description,
    )


def _initial_state(setup: TrainingSetup, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(initial parameters, batch) of a run: both runs draw them from the same seed, in this order."""
    rng = np.random.default_rng(seed)
    initial = setup.init(rng)
    return initial, setup.data(rng)


def _leaves(initial: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in initial.items()}


def _sgd_step(
    setup: TrainingSetup, params: dict[str, torch.Tensor], batch: dict[str, Any], layer: LayerFn, lr: float
) -> float:
    """One plain SGD step on `params` (updated in place); the loss before it."""
    with torch.enable_grad():
        loss = setup.loss(params, batch, layer)
        value = float(loss.detach())
        loss.backward()
    with torch.no_grad():
        for leaf in params.values():
            if leaf.grad is not None:
                leaf.add_(leaf.grad, alpha=-lr)  # torch.optim.SGD's update without momentum
                leaf.grad = None
    return value


def _train_streamed(
    kind: Kind,
    setup: TrainingSetup,
    initial: dict[str, np.ndarray],
    data: dict[str, np.ndarray],
    stream: LearnerStream,
    *,
    steps: int,
    lr: float,
) -> list[float]:
    """The NumPy learner run with the child making the calls: it runs the same network on the same
    start (grader/sandbox/runner.py's `train_here`) and streams each call's result; this side runs
    the network on its own parameters with those results, so the losses are its own."""
    assert setup.numpy_network is not None
    run = {
        "network": setup.numpy_network,
        "steps": steps,
        "lr": lr,
        "arg_names": list(kind.arg_names),
        "upstream": kind.upstream,
        "outputs": [list(output) for output in _outputs(kind)],
        "differentiable": list(kind.differentiable),
    }
    replies = stream(run, {"params": initial, "batch": data})
    try:
        layer = _NumpyLayer(kind, replies=replies)
        network = networks.NETWORKS[setup.numpy_network]
        return networks.train(network, initial, data, layer, steps=steps, lr=lr, on_step=layer.at_step)
    finally:
        replies.close()
