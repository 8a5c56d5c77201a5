"""The grading engine: run a submission's function in the sandbox and check it, in order.

`Engine.get().grade(spec, source)` returns a typed GradeResult (grader/result.py) whose
`to_json()` is the result JSON of docs/result.md. The checks live in grader/checks/, one module
each; this module orchestrates them: it parses the source (load, signature), opens a sandbox
session, calls the learner's function on every case, runs the checks on those calls, then the
training run, and turns what happened into a verdict, a score (`score_of`) and a feedback line.

Only the learner's function runs in the sandbox. Cases are drawn from a fresh seed per
submission (`secrets.randbits`) unless a seed is given; expected values, comparisons and
the verdict stay in this process. Whatever the submission does, the verdict is its own: a
SandboxError becomes the verdict it carries, and only a failure of the grader itself becomes
`internal_error` (logged).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from grader.backlog import Backlog, Lazy
from grader.checks import Stop, autograd, edge_cases, load, no_inplace, numerical, outputs, signature, training
from grader.checks.calls import Call, call_case
from grader.checks.diagnose import Diagnoser
from grader.diagnosis import Mistake
from grader.gradcheck import CentralDifferences
from grader.kinds.base import Case, Kind, TrainingSetup
from grader.result import CheckResult, GradeResult
from grader.sandbox import Sandbox, SandboxError, SandboxLost, SandboxUnavailable, Session, Tries
from grader.spec import ExerciseSpec
from grader.training import ReferenceCurves, ReferenceRun, run_training
from grader.verdicts import Isolation, Stage, Verdict

__all__ = ["Engine", "GradeResult", "planned_checks"]

logger = logging.getLogger(__name__)

STDOUT_SHOWN_CHARS = 4000
BYTE_ORDER_MARK = "\ufeff"


def planned_checks(kind: Kind, cases: list[Case], with_training: bool) -> list[str]:
    names = ["load", "signature", "outputs", "no_inplace", "autograd", "numerical"]
    names += [f"edge_cases: {case.label}" for case in cases if case.edge]
    if with_training:
        names.append("training")
    return names


# Checks that only say the file could be read: they earn no score.
ADMISSION_CHECKS = frozenset({"load", "signature"})


def score_of(verdict: Verdict, checks: list[CheckResult], planned: list[str]) -> float:
    """What share of the correctness checks a complete run passed: 1 when accepted.

    Only a wrong answer, which ran to the end on every case, earns partial credit: the
    correctness checks it passed (values, in-place safety, autograd, central differences, each
    edge case, training) over those planned; loading and the signature earn nothing. Code that
    did not run to the end (a crash, a limit, a refusal) scores 0, so it never outscores an answer
    that is right but too slow, and a higher score always means more of the answer checked right.
    """
    if verdict == Verdict.ACCEPTED:
        return 1.0
    if verdict != Verdict.WRONG_ANSWER:
        return 0.0
    counted = [name for name in planned if name.split(":")[0] not in ADMISSION_CHECKS]
    passed = sum(1 for check in checks if check.passed and check.name not in ADMISSION_CHECKS)
    return round(min(passed, len(counted)) / max(len(counted), 1), 4)


class Engine:
    """Grades submissions; one per process (`Engine.get()`), keeping a warm sandbox."""

    _instance: ClassVar[Engine | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, sandbox: Sandbox | None = None, *, min_isolation: Isolation | None = None) -> None:
        self._min_isolation = min_isolation
        self._replacements = 0  # sandboxes this engine started anew (a dead one replaced)
        self._retired_restarts = 0  # zygote restarts inside the sandboxes it replaced
        self.sandbox_losses = 0  # gradings whose sandbox died under them (each retried at most once)
        # Reference training curves, keyed by the spec's content (see spec_key) and the run's seed.
        self.reference_curves = ReferenceCurves()
        self._sandbox = sandbox if sandbox is not None else self._start_sandbox()
        self._warm_up()

    @classmethod
    def get(cls) -> Engine:
        """The process's engine, started on first use with settings.GRADER_MIN_ISOLATION."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(min_isolation=_configured_min_isolation())
            return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Close the process's engine (tests, worker shutdown)."""
        with cls._lock:
            if cls._instance is not None:
                cls._instance.close()
                cls._instance = None

    @property
    def isolation(self) -> Isolation:
        return Isolation(self._sandbox.isolation)

    @property
    def sandbox_restarts(self) -> int:
        """Every zygote started again in this process: sandboxes the engine replaced, plus the restarts
        inside each sandbox (a broken control channel, a zygote killed or stuck under a spawn).
        Reported by /metrics (grader/heartbeat.py)."""
        return self._replacements + self._retired_restarts + self._sandbox.restarts

    def close(self) -> None:
        self._sandbox.close()

    def _start_sandbox(self) -> Sandbox:
        return Sandbox.start(min_isolation=self._min_isolation)

    def _warm_up(self) -> None:
        """Pay PyTorch's first-use costs (autograd, SGD) now rather than in the first grading."""
        import torch

        torch.set_num_threads(1)
        from grader.kinds import KINDS

        kind = KINDS.get("linear-backward")
        if kind is None:
            return
        cases = kind.make_cases(np.random.default_rng(0))
        kind.reference(cases[0])
        setup = kind.training()
        if setup is not None:

            def autograd_backward(args: list[Any]) -> Any:
                case = Case("warm-up", dict(zip(kind.arg_names, args, strict=True)))
                expected = kind.reference(case)
                return tuple(expected[output.name] for output in kind.outputs)

            run_training(kind, setup, autograd_backward, seed=0, steps=2)

    # --- Grading ----------------------------------------------------------------------

    def grade(
        self,
        spec: ExerciseSpec,
        source: str,
        *,
        seed: int | None = None,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> GradeResult:
        """Grade `source` against `spec`. Never raises for anything the submission does.

        Problems of the grader itself become an `internal_error` verdict (logged);
        SandboxUnavailable (the sandbox cannot start at the required isolation) propagates.
        A UTF-8 byte order mark at the start of the source is ignored, as Python does for files.

        When the sandbox is lost under the submission (the zygote killed or broken: never the
        learner's doing), the submission is graded once more from the start, with the same seed, on
        a new zygote. That is its only retry, whether the sandbox used it for a spawn or the engine
        for the whole grading: a second loss, or a sandbox that cannot be restarted for the retry,
        raises SandboxLost(retry=False), which the service records as an internal failure.
        """
        seed = seed if seed is not None else secrets.randbits(64)
        tries = Tries()
        retrying = False
        while True:
            try:
                return self._grade_once(spec, source, seed=seed, on_stage=on_stage, tries=tries)
            except SandboxLost as lost:
                self.sandbox_losses += 1
                if not lost.retry or retrying:
                    raise SandboxLost(f"{lost} (grading {spec.slug}; no retry left)", retry=False) from lost
                logger.warning("the sandbox was lost while grading %s (%s); grading it once more", spec.slug, lost)
                retrying = True
            except SandboxUnavailable as error:
                if not retrying and tries.used <= 1:
                    raise  # the sandbox could not start: no try of this submission was lost
                raise SandboxLost(
                    f"the sandbox could not be restarted for the retry of {spec.slug}: {error}", retry=False
                ) from error

    def _grade_once(
        self,
        spec: ExerciseSpec,
        source: str,
        *,
        seed: int,
        on_stage: Callable[[Stage], None] | None,
        tries: Tries,
    ) -> GradeResult:
        """One grading of `source` in one child (Engine.grade retries it once when the sandbox is lost)."""
        started = time.perf_counter()
        timings = {"sandbox_s": 0.0, "checks_s": 0.0, "training_s": 0.0, "total_s": 0.0}

        def stage(value: Stage) -> None:
            if on_stage is not None:
                on_stage(value)

        source = source.removeprefix(BYTE_ORDER_MARK)
        kind = spec.get_kind()
        rng = np.random.default_rng(seed)
        cases = kind.make_cases(rng)
        setup = kind.training()
        planned = planned_checks(kind, cases, setup is not None)
        cache = (self.reference_curves, spec_key(spec))
        ahead = _Ahead.plan(spec, kind, cases, setup, rng=rng, seed=seed, cache=cache)
        checks: list[CheckResult] = []
        diagnoser = Diagnoser(kind)
        curves: dict[str, Any] | None = None
        verdict: Verdict | None = None
        feedback = ""
        stdout = ""
        try:
            loaded, function = load.check(kind, source)
            checks.append(loaded)
            checks.append(signature.check(kind, function))
            stage(Stage.SANDBOX)
            with contextlib.ExitStack() as stack:
                with _timed(timings, "sandbox_s"):
                    session = stack.enter_context(self._session(spec, kind, source, tries, ahead.backlog.step))
                try:
                    stage(Stage.CHECKS)
                    with _timed(timings, "checks_s"):
                        checks += _run_checks(spec, kind, session, cases, rng=rng, diagnoser=diagnoser, ahead=ahead)
                    if setup is not None:
                        stage(Stage.TRAINING)
                        with _timed(timings, "training_s"):
                            outputs_ok = next((c.passed for c in checks if c.name == "outputs"), False)
                            result, curves = training.check(
                                kind,
                                setup,
                                spec,
                                session,
                                seed=seed,
                                outputs_ok=outputs_ok,
                                reference=ahead.reference,
                            )
                            checks.append(result)
                finally:
                    stdout = _session_stdout(session)
        except Stop as stop:
            checks.append(stop.check)
            verdict, feedback = stop.verdict, stop.check.message
        except SandboxUnavailable:
            raise
        except Exception as error:
            sandbox_verdict = _sandbox_verdict(error)
            if sandbox_verdict is None:
                logger.exception("grading %s failed inside the grader", spec.slug)
                verdict, feedback = Verdict.INTERNAL_ERROR, "The grader failed on this submission; it was logged."
            else:
                verdict, feedback = sandbox_verdict, str(getattr(error, "message", "") or error)
                stdout = stdout or str(getattr(error, "stdout", "") or "")
                checks.append(CheckResult(_next_check(checks, planned), False, feedback, line=_line(error)))
        passed = sum(1 for check in checks if check.passed)
        if verdict is None:
            verdict = Verdict.ACCEPTED if passed == len(checks) else Verdict.WRONG_ANSWER
        score = score_of(verdict, checks, planned)
        if not feedback:
            feedback = _feedback(verdict, checks, diagnoser)
        stage(Stage.DONE)
        timings["total_s"] = time.perf_counter() - started
        return GradeResult(
            verdict=verdict,
            score=score,
            isolation=self.isolation,
            checks=checks,
            diagnosis=diagnoser.diagnoses,
            feedback=feedback,
            timings={key: round(value, 6) for key, value in timings.items()},
            training=curves,
            stdout=stdout[:STDOUT_SHOWN_CHARS],
        )

    def session(self, spec: ExerciseSpec, source: str) -> contextlib.AbstractContextManager[Session]:
        """A sandbox session on `source` for `spec`'s function (a context manager), limits and imports of the spec.

        For callers that run the learner's function outside a grading (grader/example_run.py).
        """
        return self._session(spec, spec.get_kind(), source)

    def _session(
        self,
        spec: ExerciseSpec,
        kind: Kind,
        source: str,
        tries: Tries | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> contextlib.AbstractContextManager[Session]:
        """A sandbox session on the source (a context manager); a dead sandbox is restarted first."""
        options: dict[str, Any] = {
            "allowed_imports": frozenset(spec.allowed_imports),
            "limits": spec.sandbox_limits(),
            "arg_names": kind.arg_names,
            "tries": tries,
            "idle": idle,
        }
        if not self._sandbox.is_alive():
            logger.warning("the sandbox died; restarting it")
            self._restart_sandbox()
        return self._sandbox.session(source, kind.function_name, **options)

    def _restart_sandbox(self) -> None:
        try:
            self._sandbox.close()
        except Exception:  # the old one is gone either way
            logger.debug("closing the dead sandbox failed", exc_info=True)
        self._retired_restarts += self._sandbox.restarts
        self._sandbox = self._start_sandbox()
        self._replacements += 1


def spec_key(spec: ExerciseSpec) -> str:
    """A hash of the spec's whole content (kind, tolerances, training steps and rate, ...).

    A changed spec gets a new key, so nothing cached under the old one is served for it."""
    text = json.dumps(spec.to_json(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _configured_min_isolation() -> Isolation | None:
    try:
        from django.conf import settings

        value = getattr(settings, "GRADER_MIN_ISOLATION", None)
    except Exception:  # Django not configured: a plain script
        return None
    return Isolation(value) if value else None


def _sandbox_verdict(error: BaseException) -> Verdict | None:
    """The verdict a SandboxError carries, or None for anything else."""
    if not isinstance(error, SandboxError):
        return None
    try:
        return Verdict(str(error.verdict))
    except ValueError:
        return Verdict.RUNTIME_ERROR


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Record the block's duration under `key`, also when it raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - start


@dataclass
class _Ahead:
    """What a grading compares the submission with, queued so that the sandbox session computes it while it waits.

    None of it depends on the submission: each case's expected outputs, the central differences of
    the numerical check (on the first regular case, drawing from the grading's generator after the
    cases, as the check would) and the reference training run. The backlog takes them in the order
    the checks need them; a check takes what is not done yet itself (grader/backlog.py).
    """

    backlog: Backlog
    expected: list[Lazy[dict[str, Any]]]
    differences: Lazy[list[CentralDifferences]] | None
    reference: ReferenceRun | None

    @classmethod
    def plan(
        cls,
        spec: ExerciseSpec,
        kind: Kind,
        cases: list[Case],
        setup: TrainingSetup | None,
        *,
        rng: np.random.Generator,
        seed: int,
        cache: tuple[ReferenceCurves, str],
    ) -> _Ahead:
        backlog = Backlog()
        expected = [Lazy(functools.partial(kind.reference, case)) for case in cases]
        for value in expected:
            backlog.add(value.step)
        first = next((index for index, case in enumerate(cases) if not case.edge), None)
        differences = None
        if first is not None:
            case, reference = cases[first], expected[first]
            differences = Lazy(
                lambda: numerical.differences(kind, case, reference.value(), samples=spec.numerical_samples, rng=rng)
            )
            backlog.add(differences.step)
        run = training.reference_run(kind, setup, spec, seed=seed, cache=cache) if setup is not None else None
        if run is not None:
            backlog.add(run.step)
        return cls(backlog, expected, differences, run)


def _run_checks(
    spec: ExerciseSpec,
    kind: Kind,
    session: Session,
    cases: list[Case],
    *,
    rng: np.random.Generator,
    diagnoser: Diagnoser,
    ahead: _Ahead,
) -> list[CheckResult]:
    """Call the function on every case, then run checks 3 to 7 on the calls (with what `ahead` computed)."""
    tolerance = spec.tolerances.gradient_rel
    pairs = [(case, expected.value) for case, expected in zip(cases, ahead.expected, strict=True)]
    regular: list[Call] = [call_case(session, kind, case, reference) for case, reference in pairs if not case.edge]
    edge: list[Call] = [call_case(session, kind, case, reference) for case, reference in pairs if case.edge]
    results = [outputs.check(kind, regular, diagnoser, tolerance)]
    outputs_ok = results[0].passed
    results.append(no_inplace.check(kind, [*regular, *edge], diagnoser))
    results.append(autograd.check(kind, regular, tolerance, outputs_ok, diagnoser))
    results.append(
        numerical.check(
            kind,
            regular[0] if regular else None,
            tolerance=spec.tolerances.numerical_rel,
            samples=spec.numerical_samples,
            rng=rng,
            outputs_ok=outputs_ok,
            ahead=ahead.differences.value if ahead.differences is not None else None,
        )
    )
    results += edge_cases.check(kind, edge, tolerance, diagnoser)
    return results


def _line(error: BaseException) -> int | None:
    line = getattr(error, "line", None)
    return line if isinstance(line, int) else None


def _session_stdout(session: Any) -> str:
    try:
        return str(getattr(session, "stdout", "") or "")
    except Exception:
        return ""


def _next_check(checks: list[CheckResult], planned: list[str]) -> str:
    done = len(checks)
    name = planned[done] if done < len(planned) else "training"
    return name.split(":")[0]


def _feedback(verdict: Verdict, checks: list[CheckResult], diagnoser: Diagnoser) -> str:
    total = len(checks)
    if verdict == Verdict.ACCEPTED:
        return f"All {total} checks passed."
    failed = [check.name for check in checks if not check.passed]
    summary = f"{total - len(failed)} of {total} checks passed; failed: {', '.join(dict.fromkeys(failed))}."
    diagnoses = diagnoser.diagnoses
    specific = [d for d in diagnoses if d.mistake != Mistake.UNKNOWN] or diagnoses
    if specific:
        first = specific[0]
        return f"{summary} {first.title}. {first.hint}"
    return summary
