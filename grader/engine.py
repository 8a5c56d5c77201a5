"""The grading engine: run a submission's function in the sandbox and check it, in order.

`Engine.get().grade(spec, source)` returns a GradeResult whose `to_json()` is DESIGN.md's
result JSON. Checks, in order (each one entry of `checks`; score = passed / total):

1. load       - the source parses (else `syntax_error` with the line) and defines the function;
2. signature  - the function takes the catalog's arguments (else `runtime_error`, clear message);
3. outputs    - every returned value has the expected type, shape, dtype float64, finite entries;
4. no_inplace - the arguments are unchanged after the call;
5. autograd   - each output against float64 PyTorch autograd of the kind's trusted forward;
6. numerical  - each gradient against central differences at sampled coordinates (shown);
7. edge_cases - one check per edge case of the kind (logits of magnitude 1000, stride 2, ...);
8. training   - the side-by-side training run (grader/training.py) gives the same loss curve.

Only the learner's function runs in the sandbox. Cases are drawn from a fresh seed per
submission (`secrets.randbits`) unless a seed is given; expected values, comparisons and
the verdict stay in this process.

In-place detection: the sandbox passes copies of the arguments to the child, so the
trusted arrays cannot change. `Session.call_with_inputs` returns, with the result, the
arguments as the child holds them after the call; the engine compares them with its
own copies. The learner's function (its presence and arity) is checked first by
parsing the source with `ast` in this process, which never executes it, so the common
load errors get a precise message without a sandbox round trip; the sandbox checks
the same again (`arg_names`) for anything the parse cannot see.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from grader.diagnosis import Diagnosis, Mistake, diagnose_array, json_number, worst_elements
from grader.gradcheck import check_numerically, flat_arrays, rel_error
from grader.kinds.base import Case, Kind
from grader.sandbox import Sandbox, SandboxError, SandboxUnavailable, Session
from grader.spec import ExerciseSpec
from grader.training import TrainingFailed, run_training
from grader.verdicts import Isolation, Stage, Verdict

logger = logging.getLogger(__name__)

STDOUT_SHOWN_CHARS = 4000


@dataclass
class GradeResult:
    verdict: Verdict
    score: float
    isolation: Isolation
    checks: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    feedback: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    stdout: str = ""

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's result JSON (plus the learner's captured stdout)."""
        return {
            "verdict": str(self.verdict),
            "score": self.score,
            "checks": self.checks,
            "feedback": self.feedback,
            "diagnosis": self.diagnosis,
            "timings": self.timings,
            "isolation": str(self.isolation),
            "training": self.training,
            "stdout": self.stdout,
        }


class _Stop(Exception):
    """Ends the checks early with a verdict (a sandbox error, a load failure)."""

    def __init__(self, verdict: Verdict, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message


@dataclass
class _Grading:
    """State of one grading while the checks run."""

    spec: ExerciseSpec
    kind: Kind
    seed: int
    checks: list[dict[str, Any]] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    training: dict[str, Any] | None = None

    def add(self, name: str, passed: bool, message: str, **extra: Any) -> bool:
        self.checks.append({"name": name, "passed": passed, "message": message, **extra})
        return passed

    def diagnosed(self, output: str) -> bool:
        return any(d.output == output for d in self.diagnoses)


def planned_checks(kind: Kind, cases: list[Case], with_training: bool) -> list[str]:
    names = ["load", "signature", "outputs", "no_inplace", "autograd", "numerical"]
    names += [f"edge_cases: {case.label}" for case in cases if case.edge]
    if with_training:
        names.append("training")
    return names


class Engine:
    """Grades submissions; one per process (`Engine.get()`), keeping a warm sandbox."""

    _instance: ClassVar[Engine | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, sandbox: Sandbox | None = None, *, min_isolation: Isolation | None = None) -> None:
        self._min_isolation = min_isolation
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
        """
        started = time.perf_counter()
        timings = {"sandbox_s": 0.0, "checks_s": 0.0, "training_s": 0.0, "total_s": 0.0}

        def stage(value: Stage) -> None:
            if on_stage is not None:
                on_stage(value)

        kind = spec.get_kind()
        grading = _Grading(spec=spec, kind=kind, seed=seed if seed is not None else secrets.randbits(64))
        rng = np.random.default_rng(grading.seed)
        cases = kind.make_cases(rng)
        setup = kind.training()
        planned = planned_checks(kind, cases, setup is not None)
        verdict: Verdict | None = None
        feedback = ""
        stdout = ""
        try:
            _check_load(grading, source)
            stage(Stage.SANDBOX)
            with _timed(timings, "sandbox_s"):
                session_context = self._session(spec, kind, source)
                session = session_context.__enter__()
            try:
                stage(Stage.CHECKS)
                with _timed(timings, "checks_s"):
                    _run_checks(grading, session, cases, rng)
                if setup is not None:
                    stage(Stage.TRAINING)
                    with _timed(timings, "training_s"):
                        _run_training(grading, session)
            finally:
                stdout = _session_stdout(session)
                session_context.__exit__(None, None, None)
        except _Stop as stop:
            verdict, feedback = stop.verdict, stop.message
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
                grading.add(_next_check(grading, planned), False, feedback, line=getattr(error, "line", None))
        passed = sum(1 for check in grading.checks if check["passed"])
        if verdict is None:
            verdict = Verdict.ACCEPTED if passed == len(grading.checks) else Verdict.WRONG_ANSWER
        score = 1.0 if verdict == Verdict.ACCEPTED else round(passed / max(len(planned), 1), 4)
        if not feedback:
            feedback = _feedback(verdict, grading)
        stage(Stage.DONE)
        timings["total_s"] = time.perf_counter() - started
        return GradeResult(
            verdict=verdict,
            score=score,
            isolation=self.isolation,
            checks=grading.checks,
            diagnosis=[d.to_json() for d in grading.diagnoses],
            feedback=feedback,
            timings={key: round(value, 6) for key, value in timings.items()},
            training=grading.training,
            stdout=stdout[:STDOUT_SHOWN_CHARS],
        )

    def _session(self, spec: ExerciseSpec, kind: Kind, source: str) -> contextlib.AbstractContextManager[Session]:
        """A sandbox session on the source (a context manager); a dead sandbox is restarted first."""
        options: dict[str, Any] = {
            "allowed_imports": frozenset(spec.allowed_imports),
            "limits": spec.sandbox_limits(),
            "arg_names": kind.arg_names,
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
        self._sandbox = self._start_sandbox()


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


def _session_stdout(session: Any) -> str:
    try:
        return str(getattr(session, "stdout", "") or "")
    except Exception:
        return ""


def _next_check(grading: _Grading, planned: list[str]) -> str:
    done = len(grading.checks)
    name = planned[done] if done < len(planned) else "training"
    return name.split(":")[0]


# --- Load ---------------------------------------------------------------------------------


def _check_load(grading: _Grading, source: str) -> None:
    """Parse without executing: syntax, the function's presence and arity (load, signature)."""
    kind = grading.kind
    try:
        tree = ast.parse(source, filename="submission.py")
    except SyntaxError as error:
        line = error.lineno
        message = f"SyntaxError: {error.msg}" + (f" (line {line})" if line else "")
        grading.add("load", False, message, line=line)
        raise _Stop(Verdict.SYNTAX_ERROR, message) from None
    except (ValueError, RecursionError, MemoryError) as error:
        message = f"the source cannot be parsed: {type(error).__name__}"
        grading.add("load", False, message, line=None)
        raise _Stop(Verdict.SYNTAX_ERROR, message) from None
    definitions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == kind.function_name
    ]
    bound = _binds_name(tree, kind.function_name)
    expected = f"{kind.function_name}({', '.join(kind.arg_names)})"
    if not definitions and not bound:
        message = f"your file does not define a function named {kind.function_name}; define {expected}"
        grading.add("load", False, message)
        raise _Stop(Verdict.RUNTIME_ERROR, message)
    grading.add("load", True, f"defines {kind.function_name}")
    if definitions:
        function = definitions[-1]
        line = function.lineno
        if isinstance(function, ast.AsyncFunctionDef):
            message = f"{kind.function_name} must be a plain function, not async (line {line})"
            grading.add("signature", False, message, line=line)
            raise _Stop(Verdict.RUNTIME_ERROR, message)
        arguments = function.args
        positional = len(arguments.posonlyargs) + len(arguments.args)
        required = positional - len(arguments.defaults)
        wanted = len(kind.arg_names)
        if (arguments.vararg is None and positional < wanted) or required > wanted:
            message = (
                f"{kind.function_name} takes {positional} argument{'s' if positional != 1 else ''}; "
                f"it must take {wanted}: {expected} (line {line})"
            )
            grading.add("signature", False, message, line=line)
            raise _Stop(Verdict.RUNTIME_ERROR, message)
    grading.add("signature", True, f"{expected}")


def _binds_name(tree: ast.Module, name: str) -> bool:
    """True if a top-level statement other than a def binds `name` (assignment, import, class...)."""
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(sub, ast.Name) and sub.id == name for t in targets for sub in ast.walk(t)):
                return True
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any((alias.asname or alias.name.split(".")[0]) == name for alias in node.names):
                return True
        elif isinstance(node, ast.ClassDef) and node.name == name:
            return True
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Expr | ast.Pass) and any(
            isinstance(sub, ast.FunctionDef) and sub.name == name for sub in ast.walk(node)
        ):
            return True  # defined inside an if/try/with block: let the sandbox decide
    return False


# --- Checks -------------------------------------------------------------------------------


@dataclass
class _Call:
    case: Case
    expected: dict[str, Any]
    returned: dict[str, Any] | None  # by output name; None when the result could not be split
    problems: list[str]  # outputs-check problems (type, shape, dtype, finite)
    args_after: list[Any]


def _call(session: Session, kind: Kind, case: Case) -> _Call:
    expected = kind.reference(case)
    result, args_after = session.call_with_inputs(*kind.call_args(case.args))
    problems: list[str] = []
    returned: dict[str, Any] | None
    try:
        returned = kind.split_result(result)
    except ValueError as error:
        returned = None
        problems.append(f"{kind.function_name} must return {_returns(kind)}: {error}")
    if returned is not None:
        for output in kind.outputs:
            problems += _output_problems(output.name, expected[output.name], returned[output.name])
    return _Call(case, expected, returned, problems, list(args_after))


def _returns(kind: Kind) -> str:
    names = [output.name for output in kind.outputs]
    return names[0] if len(names) == 1 else f"a tuple ({', '.join(names)})"


def _output_problems(name: str, expected: Any, got: Any) -> list[str]:
    """Type, shape, dtype and finiteness problems of one returned value (empty if fine)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{name} must be a dict with keys {', '.join(expected)} (got {_type_name(got)})"]
        missing = [key for key in expected if key not in got]
        extra = [key for key in got if key not in expected]
        problems = []
        if missing:
            problems.append(f"{name} is missing key(s) {', '.join(map(repr, missing))}")
        if extra:
            problems.append(f"{name} has unexpected key(s) {', '.join(map(repr, extra))}")
        for key in expected:
            if key in got:
                problems += _output_problems(f"{name}[{key!r}]", expected[key], got[key])
        return problems
    if isinstance(expected, float):
        value = got
        if isinstance(got, np.ndarray) and got.size == 1:
            if got.dtype != np.float64:
                return [f"{name} must be a float64 number (got dtype {got.dtype})"]
            value = float(got.reshape(()))
        if isinstance(value, bool) or not isinstance(value, float | int | np.floating):
            return [f"{name} must be a number (got {_type_name(got)})"]
        if not np.isfinite(float(value)):
            return [f"{name} is {float(value)}: it must be finite"]
        return []
    expected_shape = tuple(np.shape(expected))
    if not isinstance(got, np.ndarray):
        return [f"{name} must be a NumPy array of shape {expected_shape} (got {_type_name(got)})"]
    if got.shape != expected_shape:
        return [f"{name} has shape {got.shape}; expected {expected_shape}"]
    if got.dtype != np.float64:
        return [f"{name} has dtype {got.dtype}; gradients must be float64"]
    if not np.isfinite(got).all():
        count = int((~np.isfinite(got)).sum())
        return [f"{name} has {count} NaN or infinite entr{'y' if count == 1 else 'ies'}"]
    return []


def _type_name(value: Any) -> str:
    if value is None:
        return "None"
    article = "an" if type(value).__name__[0] in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


def _run_checks(grading: _Grading, session: Session, cases: list[Case], rng: np.random.Generator) -> None:
    kind = grading.kind
    tolerance = grading.spec.tolerances.gradient_rel
    regular = [_call(session, kind, case) for case in cases if not case.edge]
    edge = [_call(session, kind, case) for case in cases if case.edge]

    # outputs
    problems = [f"{c.case.label}: {p}" for c in regular for p in c.problems]
    outputs_ok = grading.add("outputs", not problems, "; ".join(problems[:5]) or _outputs_message(kind))
    if not outputs_ok:
        for call in regular:
            _diagnose_call(grading, call, tolerance)

    # no_inplace
    changed = []
    for call in [*regular, *edge]:
        for name, before, after in zip(kind.arg_names, kind.call_args(call.case.args), call.args_after, strict=True):
            if _modified(before, after) and name not in changed:
                changed.append(name)
                grading.diagnoses.append(_inplace_diagnosis(kind, name, before, after))
    if changed:
        grading.add("no_inplace", False, f"{kind.function_name} modified its argument(s) {', '.join(changed)} in place")
    else:
        grading.add("no_inplace", True, "no argument was modified")

    # autograd
    arrays, worst = _compare(kind, regular, tolerance)
    autograd_ok = outputs_ok and worst <= tolerance
    grading.add(
        "autograd",
        autograd_ok,
        _compare_message(arrays, tolerance, "PyTorch autograd") if outputs_ok else "skipped: the outputs check failed",
        rel_error=json_number(worst),
        tolerance=tolerance,
        arrays=arrays,
    )
    if outputs_ok and not autograd_ok:
        for call in regular:
            _diagnose_call(grading, call, tolerance)

    # numerical
    _numerical(grading, regular[0] if regular else None, rng, outputs_ok)

    # edge cases
    for call in edge:
        problems = call.problems
        arrays, worst = _compare(kind, [call], tolerance) if not problems else ([], float("inf"))
        ok = not problems and worst <= tolerance
        message = "; ".join(problems[:5]) if problems else _compare_message(arrays, tolerance, "PyTorch autograd")
        grading.add("edge_cases", ok, message, case=call.case.label, rel_error=json_number(worst), tolerance=tolerance)
        if not ok:
            _diagnose_call(grading, call, tolerance)


def _outputs_message(kind: Kind) -> str:
    return f"{_returns(kind)}: types, shapes, float64 dtype and finite values as expected"


def _modified(before: Any, after: Any) -> bool:
    if isinstance(before, dict):
        return not isinstance(after, dict) or any(_modified(before[k], after.get(k)) for k in before)
    if isinstance(before, np.ndarray):
        return not (
            isinstance(after, np.ndarray)
            and after.shape == before.shape
            and np.array_equal(before, after, equal_nan=True)
        )
    return False


def _inplace_diagnosis(kind: Kind, name: str, before: Any, after: Any) -> Diagnosis:
    worst: list[dict[str, Any]] = []
    if isinstance(before, np.ndarray) and isinstance(after, np.ndarray) and before.shape == after.shape:
        worst = worst_elements(before, after)
    elif isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            other = after.get(key)
            if isinstance(other, np.ndarray) and other.shape == value.shape and not np.array_equal(value, other):
                worst = worst_elements(value, other)
                name = f"{name}[{key!r}]"
                break
    return Diagnosis(
        output=name,
        mistake=Mistake.INPLACE_MODIFICATION,
        title=f"{kind.function_name} changed its argument {name}",
        why=f"After the call, {name} no longer holds what was passed in (shown: entry, value passed, value after). "
        "The caller still needs it: a backward pass must not modify its inputs.",
        worst=worst,
        hint=kind.hints.get(Mistake.INPLACE_MODIFICATION)
        or "Compute into new arrays (x.copy(), np.where(...), a * b) instead of writing into the arguments "
        "(x[...] = ..., x *= ..., np.maximum(x, 0, out=x)).",
        lesson_url=kind.lesson_url(),
    )


def _compare(kind: Kind, calls: list[_Call], tolerance: float) -> tuple[list[dict[str, Any]], float]:
    """Per-array worst relative error over the calls: ([{"array", "rel_error", "tolerance", "passed"}], worst)."""
    errors: dict[str, float] = {}
    for call in calls:
        if call.returned is None:
            continue
        for output in kind.outputs:
            got = dict(flat_arrays(output.name, call.returned[output.name]))
            for name, expected in flat_arrays(output.name, call.expected[output.name]):
                value = got.get(name)
                error = rel_error(expected, value) if _comparable(value) else float("inf")
                errors[name] = max(errors.get(name, 0.0), error)
    arrays = [
        {"array": name, "rel_error": json_number(error), "tolerance": tolerance, "passed": error <= tolerance}
        for name, error in errors.items()
    ]
    worst = max(errors.values(), default=float("inf"))
    return arrays, worst


def _comparable(value: Any) -> bool:
    return isinstance(value, np.ndarray | float | int | np.floating) and not isinstance(value, bool)


def _compare_message(arrays: list[dict[str, Any]], tolerance: float, against: str) -> str:
    parts = [f"{a['array']}: relative error {_format_error(a['rel_error'])}" for a in arrays]
    wrong = [a["array"] for a in arrays if not a["passed"]]
    verdict = f"{', '.join(wrong)} differ{'s' if len(wrong) == 1 else ''}" if wrong else "all match"
    return f"against {against} (tolerance {tolerance:g}), {verdict}: " + "; ".join(parts)


def _format_error(value: Any) -> str:
    return value if isinstance(value, str) else f"{value:.2e}"


def _numerical(grading: _Grading, call: _Call | None, rng: np.random.Generator, outputs_ok: bool) -> None:
    kind = grading.kind
    tolerance = grading.spec.tolerances.numerical_rel
    if call is None or not outputs_ok or call.returned is None:
        grading.add("numerical", False, "skipped: the outputs check failed", tolerance=tolerance)
        return
    names = {output.name: output.of for output in kind.outputs if output.of is not None}
    inputs = {name: call.case.args[name] for name in kind.differentiable}
    comparisons = check_numerically(
        kind.numeric_function(call.case),
        inputs,
        call.expected,
        call.returned,
        names,
        rng=rng,
        samples=grading.spec.numerical_samples,
    )
    worst = max((c.rel_error for c in comparisons), default=0.0)
    arrays = [{**c.to_json(), "tolerance": tolerance, "passed": c.rel_error <= tolerance} for c in comparisons]
    for entry in arrays:
        entry["rel_error"] = json_number(entry["rel_error"])
        for sample in entry["samples"]:
            sample["numerical"] = json_number(sample["numerical"])
            sample["analytic"] = json_number(sample["analytic"])
    message = _compare_message(arrays, tolerance, "central differences (h = 1e-6) at sampled entries")
    grading.add(
        "numerical",
        worst <= tolerance,
        message,
        rel_error=json_number(worst),
        tolerance=tolerance,
        case=call.case.label,
        arrays=arrays,
    )


def _diagnose_call(grading: _Grading, call: _Call, tolerance: float) -> None:
    """Add a diagnosis for each wrong output array of this call not diagnosed yet.

    An output already named with a specific mistake keeps it; an "unknown" one is
    replaced when another case names a specific mistake.
    """
    kind = grading.kind
    if call.returned is None:
        return
    models: dict[str, list[tuple[Mistake, str, str, Any]]] | None = None
    for output in kind.outputs:
        got_leaves = dict(flat_arrays(output.name, call.returned[output.name]))
        for name, expected in flat_arrays(output.name, call.expected[output.name]):
            got = got_leaves.get(name)
            if got is None or not _comparable(got):
                continue
            if np.shape(got) == np.shape(expected) and rel_error(expected, got) <= tolerance:
                continue
            existing = [d for d in grading.diagnoses if d.output == name]
            if existing and existing[0].mistake != Mistake.UNKNOWN:
                continue
            specific = kind.likely_mistakes(call.case, name, expected, got)
            if specific:
                diagnosis = specific[0]
            else:
                if models is None:
                    models = _evaluate_models(kind, call.case)
                diagnosis = diagnose_array(
                    output=name,
                    expected=expected,
                    got=got,
                    case_args=call.case.args,
                    upstream=kind.upstream,
                    models=models.get(name, []),
                    hints=kind.hints,
                    lesson_url=kind.lesson_url(),
                )
            if existing:
                if diagnosis.mistake == Mistake.UNKNOWN:
                    continue
                grading.diagnoses.remove(existing[0])
            grading.diagnoses.append(diagnosis)


def _evaluate_models(kind: Kind, case: Case) -> dict[str, list[tuple[Mistake, str, str, Any]]]:
    """{array name: [(mistake, title, why, value)]} of every mistake model applicable to the case."""
    evaluated: dict[str, list[tuple[Mistake, str, str, Any]]] = {}
    for model in [*kind.mistake_models(), *kind.generic_mistake_models()]:
        try:
            values = model.compute(case)
        except Exception:  # a model that does not apply to this case's shapes
            logger.debug("mistake model %s failed on %s", model.mistake, case.label, exc_info=True)
            continue
        if values is None:
            continue
        for output in kind.outputs:
            if model.outputs is not None and output.name not in model.outputs:
                continue
            if output.name not in values:
                continue
            for name, value in flat_arrays(output.name, values[output.name]):
                title = model.title.replace("{output}", name)
                why = model.why.replace("{output}", name)
                evaluated.setdefault(name, []).append((model.mistake, title, why, value))
    return evaluated


def _run_training(grading: _Grading, session: Session) -> None:
    kind = grading.kind
    spec = grading.spec
    setup = kind.training()
    if setup is None:
        return
    tolerance = spec.tolerances.training_loss_rel
    outputs_ok = next((c["passed"] for c in grading.checks if c["name"] == "outputs"), False)
    if not outputs_ok:
        grading.add("training", False, "skipped: the outputs check failed", tolerance=tolerance)
        return

    def call(args: list[Any]) -> Any:
        return session.call(*args)

    try:
        run = run_training(kind, setup, call, seed=grading.seed % 2**32, steps=spec.training_steps, lr=spec.training_lr)
    except TrainingFailed as failure:
        grading.add("training", False, f"the training run stopped: {failure}", tolerance=tolerance)
        return
    grading.training = run.to_json()
    ok = run.rel_error <= tolerance
    steps = len(run.steps)
    if ok:
        message = (
            f"{steps} SGD steps with your backward follow PyTorch's loss curve "
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
    grading.add("training", ok, message, rel_error=json_number(run.rel_error), tolerance=tolerance)


def _feedback(verdict: Verdict, grading: _Grading) -> str:
    total = len(grading.checks)
    if verdict == Verdict.ACCEPTED:
        return f"All {total} checks passed."
    failed = [check["name"] for check in grading.checks if not check["passed"]]
    summary = f"{total - len(failed)} of {total} checks passed; failed: {', '.join(dict.fromkeys(failed))}."
    specific = [d for d in grading.diagnoses if d.mistake != Mistake.UNKNOWN] or grading.diagnoses
    if specific:
        first = specific[0]
        return f"{summary} {first.title}. {first.hint}"
    return summary
