"""What an exercise kind is: its cases, its trusted reference, its mistakes, its training run.

A kind describes one function of the exercise catalog (docs/exercises.md) to the engine:

- `arg_names` are the learner function's parameters, in order; `outputs` are what it
  returns, in order. `Output(name="dx", of="x")` is the gradient of input `x`;
  `Output(name="loss", of=None)` is a scalar value. An output may be a dict of arrays
  when its input is a dict (simple-nn's `grads` of `params`).
- `upstream` names the argument holding the upstream gradient (`"dout"`), or is None
  for functions that return a scalar loss and its gradient (mse, softmax-CE, simple-nn).
- `torch_forward(args)` is the trusted forward in float64 PyTorch. From it the base class
  derives, for any case, the expected outputs by autograd (`reference`), the scalar
  function for central differences (`numeric_function`), and the "missing chain rule"
  mistake model. A kind only has to write `make_cases` and `torch_forward`.
- `mistake_models()` lists alternative (wrong) computations of the outputs, each named
  by a `Mistake` code: e.g. the reference computed with `scale=1` for "attention scale
  missing", or with `stride=1` for "stride ignored". The diagnosis picks the one that
  matches what the learner returned.
- `training()` describes a small network that uses the layer; the trusted loop in
  grader/training.py trains it twice from the same initialization and data: once with
  PyTorch autograd, once with the learner's function as the layer's backward.

Everything here runs in the trusted process only: torch never enters the sandbox.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from grader.diagnosis import Diagnosis, Mistake
from grader.sandbox.networks import split_result

# A layer as the training network sees it: keyword arguments named like the learner
# function's (differentiable ones as tensors) -> the forward's output tensor.
LayerFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Output:
    """One returned value: the gradient of input `of`, or (of=None) a scalar value such as a loss."""

    name: str
    of: str | None = None


@dataclass(frozen=True)
class Case:
    """One set of inputs for the learner's function.

    `args` maps argument names to float64 ndarrays, ints, floats, bools, int ndarrays
    (labels) or dict[str, ndarray] (simple-nn parameters). `edge` marks the cases of
    the "edge_cases" check (docs/exercises.md's list: logits of magnitude 1000, stride 2,
    padding 1, causal on and off...); the others feed the autograd and numerical checks.
    """

    label: str
    args: dict[str, Any]
    edge: bool = False


@dataclass(frozen=True)
class MistakeModel:
    """A wrong way to compute the outputs; `compute(case)` returns {output name: value} or None if not applicable.

    `outputs` restricts the model to some outputs (None = any). `title` and `why` may use
    `{output}` as a placeholder for the output's name.
    """

    mistake: Mistake
    title: str
    why: str
    compute: Callable[[Case], dict[str, Any] | None]
    outputs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrainingSetup:
    """A small network using the kind's layer, trained by plain SGD for `steps` steps.

    - `init(rng)` returns the trainable parameters {name: float64 array};
    - `data(rng)` returns the fixed batch {name: array} (inputs, targets);
    - `loss(params, data, layer)` builds the scalar loss tensor from tensors, calling
      `layer(**kwargs)` where the exercise's operation happens. kwargs are named like
      the learner function's arguments, minus `upstream`; differentiable ones are
      tensors that may require grad, the others plain values (ints, bools, tensors).
    - `numpy_network`, optional, names the same network in float64 NumPy
      (grader/sandbox/networks.py) for the learner run: it computes the loss and, by hand, the
      gradient of every parameter, calling `backward(args, upstream)` where `loss` calls the
      layer. It must be `loss` step for step (tests/test_training.py holds every such network to
      the autograd curve); the reference run always differentiates `loss` with PyTorch autograd.
    The spec's `training: {steps, lr}` overrides the defaults given here.
    """

    steps: int
    lr: float
    init: Callable[[np.random.Generator], dict[str, np.ndarray]]
    data: Callable[[np.random.Generator], dict[str, np.ndarray]]
    loss: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], LayerFn], torch.Tensor]
    description: str = ""
    numpy_network: str | None = None


def to_tensor(value: Any, *, requires_grad: bool = False) -> Any:
    """Float arrays -> float64 tensors, int arrays -> int64 tensors, dicts recursively; scalars unchanged."""
    if isinstance(value, dict):
        return {key: to_tensor(item, requires_grad=requires_grad) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            return torch.tensor(value, dtype=torch.float64, requires_grad=requires_grad)
        return torch.tensor(value, dtype=torch.int64)
    return value


def to_numpy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().numpy()
        return array.astype(np.float64 if array.dtype.kind == "f" else np.int64, copy=True)
    return value


def _leaves(value: Any) -> list[torch.Tensor]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def _rebuild(value: Any, leaves: list[Any]) -> Any:
    """Put `leaves` (in `_leaves` order) back into the structure of `value`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = _rebuild(item, leaves)
        return out
    return leaves.pop(0)


class Kind(ABC):
    """An exercise kind (see the module docstring). Subclasses register with `@register`."""

    slug: ClassVar[str]
    function_name: ClassVar[str]
    arg_names: ClassVar[tuple[str, ...]]
    outputs: ClassVar[tuple[Output, ...]]
    upstream: ClassVar[str | None] = "dout"
    # Where hints point: the lesson's slug and the id of the section that explains the math.
    lesson_slug: ClassVar[str] = ""
    lesson_section: ClassVar[str] = ""
    # Per-mistake hints shown with the diagnosis; generic ones are used otherwise.
    hints: ClassVar[dict[Mistake, str]] = {}

    # --- What a kind writes -----------------------------------------------------------

    @abstractmethod
    def make_cases(self, rng: np.random.Generator) -> list[Case]:
        """Cases for one grading, drawn from `rng` (a fresh seed per submission)."""

    @abstractmethod
    def torch_forward(self, args: dict[str, Any]) -> torch.Tensor:
        """The trusted forward in float64: the layer's output, or the scalar loss when `upstream` is None.

        `args` holds every argument but `upstream`: float arrays as float64 tensors (dicts of
        tensors for dict arguments), int arrays as int64 tensors, scalars as they are.
        """

    def training(self) -> TrainingSetup | None:
        return None

    def mistake_models(self) -> list[MistakeModel]:
        """Kind-specific wrong computations (beyond the generic rules of grader/diagnosis.py)."""
        return []

    def likely_mistakes(self, case: Case, output_name: str, expected: Any, got: Any) -> list[Diagnosis]:
        """Kind-specific diagnoses that need more than a mistake model (optional)."""
        return []

    # --- Derived ----------------------------------------------------------------------

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(output.of for output in self.outputs if output.of is not None)

    def output(self, name: str) -> Output:
        return next(output for output in self.outputs if output.name == name)

    def lesson_url(self) -> str:
        if not self.lesson_slug:
            return ""
        anchor = f"#{self.lesson_section}" if self.lesson_section else ""
        return f"/lessons/{self.lesson_slug}/{anchor}"

    def reference(self, case: Case) -> dict[str, Any]:
        """Expected outputs by float64 PyTorch autograd of `torch_forward` (dict outputs stay dicts)."""
        return self.reference_with(case, self.torch_forward)

    def reference_with(
        self,
        case: Case,
        forward: Callable[[dict[str, Any]], torch.Tensor],
        *,
        upstream: np.ndarray | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Outputs by autograd of another `forward` (mistake models use this).

        `upstream` replaces the case's upstream gradient (e.g. ones for "chain rule missing");
        `overrides` replaces non-differentiable arguments (e.g. stride=1).
        """
        args = {name: value for name, value in case.args.items() if name != self.upstream}
        args.update(overrides or {})
        tensors = {name: to_tensor(value, requires_grad=name in self.differentiable) for name, value in args.items()}
        with torch.enable_grad():
            result = forward(tensors)
            if self.upstream is not None:
                weights = case.args[self.upstream] if upstream is None else upstream
                scalar = (result * torch.as_tensor(weights, dtype=torch.float64)).sum()
            else:
                scalar = result
            inputs = [leaf for name in self.differentiable for leaf in _leaves(tensors[name])]
            grads = torch.autograd.grad(scalar, inputs, allow_unused=True)
        flat = [
            np.zeros(tuple(leaf.shape)) if grad is None else to_numpy(grad)
            for leaf, grad in zip(inputs, grads, strict=True)
        ]
        expected: dict[str, Any] = {}
        for output in self.outputs:
            if output.of is None:
                expected[output.name] = float(result.detach())
            else:
                expected[output.name] = _rebuild(case.args[output.of], flat)
        return expected

    def numeric_function(self, case: Case) -> Callable[[dict[str, Any]], float]:
        """Scalar L(differentiable inputs) whose gradient the outputs are: sum(forward * dout), or the loss.

        The returned function takes {argument name: array or dict of arrays} for the
        differentiable arguments and evaluates in float64 without autograd.
        """
        constant = {
            name: to_tensor(value)
            for name, value in case.args.items()
            if name != self.upstream and name not in self.differentiable
        }
        weights = torch.as_tensor(case.args[self.upstream], dtype=torch.float64) if self.upstream is not None else None

        def evaluate(inputs: dict[str, Any]) -> float:
            args = dict(constant)
            args.update({name: to_tensor(value) for name, value in inputs.items()})
            with torch.no_grad():
                result = self.torch_forward(args)
                if weights is not None:
                    return float((result * weights).sum())
                return float(result)

        return evaluate

    def generic_mistake_models(self) -> list[MistakeModel]:
        """Mistake models every kind with an upstream gradient shares."""
        if self.upstream is None:
            return []
        upstream = self.upstream

        def without_chain_rule(case: Case) -> dict[str, Any]:
            return self.reference_with(case, self.torch_forward, upstream=np.ones_like(case.args[upstream]))

        return [
            MistakeModel(
                mistake=Mistake.MISSING_CHAIN_RULE,
                title="{output} is missing the upstream gradient",
                why=f"{{output}} equals the local derivative alone, as if {upstream} were all ones: "
                f"the chain rule multiplies the local derivative by {upstream}.",
                compute=without_chain_rule,
            )
        ]

    def call_args(self, args: Mapping[str, Any]) -> list[Any]:
        """Positional arguments for the learner's function, in `arg_names` order."""
        return [args[name] for name in self.arg_names]

    def split_result(self, result: Any) -> dict[str, Any]:
        """{output name: value} from what the learner returned; ValueError if the count is wrong."""
        return split_result([output.name for output in self.outputs], result)
