"""Check 8, ``training``: SGD with the learner's backward follows PyTorch's loss curve (grader/training.py)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from grader.kinds.base import Kind, TrainingSetup
from grader.result import CheckResult
from grader.sandbox import Session
from grader.spec import ExerciseSpec
from grader.training import ReferenceCurves, ReferenceRun, TrainingFailed, run_training


def reference_run(
    kind: Kind,
    setup: TrainingSetup,
    spec: ExerciseSpec,
    *,
    seed: int,
    cache: tuple[ReferenceCurves, Hashable] | None = None,
) -> ReferenceRun:
    """The reference run `check` compares with for this seed (its steps may be taken ahead)."""
    return ReferenceRun(kind, setup, seed=seed % 2**32, steps=spec.training_steps, lr=spec.training_lr, cache=cache)


def check(
    kind: Kind,
    setup: TrainingSetup,
    spec: ExerciseSpec,
    session: Session,
    *,
    seed: int,
    outputs_ok: bool,
    reference: ReferenceRun | None = None,
) -> tuple[CheckResult, dict[str, Any] | None]:
    """The ``training`` result and the run's curves (None when it did not run to the end).

    `reference` is `reference_run(kind, setup, spec, seed=seed)`, possibly cached or partly done.
    """
    tolerance = spec.tolerances.training_loss_rel
    if not outputs_ok:
        return CheckResult("training", False, "skipped: the outputs check failed", tolerance=tolerance), None

    def call(args: list[Any]) -> Any:
        return session.call(*args)

    try:
        run = run_training(
            kind,
            setup,
            call,
            seed=seed % 2**32,
            steps=spec.training_steps,
            lr=spec.training_lr,
            reference=reference,
            stream=session.stream,
        )
    except TrainingFailed as failure:
        return CheckResult("training", False, f"the training run stopped: {failure}", tolerance=tolerance), None
    passed = run.rel_error <= tolerance
    if passed:
        message = (
            f"{len(run.steps)} SGD steps with your backward follow PyTorch's loss curve "
            f"(largest relative difference {run.rel_error:.2e}, tolerance {tolerance:g}); "
            f"final loss {run.learner_loss[-1]:.4g}"
        )
    else:
        diverged = next(
            (
                i
                for i, (a, b) in enumerate(zip(run.learner_loss, run.reference_loss, strict=True))
                if not abs(a - b) <= tolerance * max(1e-8, abs(a) + abs(b))
            ),
            0,
        )
        message = (
            f"the loss curves part at step {diverged}: final loss {run.learner_loss[-1]:.4g} with your backward, "
            f"{run.reference_loss[-1]:.4g} with PyTorch's"
        )
    result = CheckResult("training", passed, message, rel_error=run.rel_error, tolerance=tolerance)
    return result, run.to_json()
