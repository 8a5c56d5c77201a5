"""The grading engine end to end on the real sandbox: checks in order, verdicts, diagnosis, timings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from grader.engine import Engine, GradeResult
from grader.spec import ExerciseSpec
from grader.training import run_training
from grader.verdicts import Stage, Verdict

pytestmark = pytest.mark.sandbox

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
ALL_CHECKS = [
    "load",
    "signature",
    "outputs",
    "no_inplace",
    "autograd",
    "numerical",
    "edge_cases",
    "edge_cases",
    "training",
]

LINEAR = """\
import numpy as np


def linear_backward(dout, x, w, b):
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
"""


def spec(slug: str) -> ExerciseSpec:
    return ExerciseSpec.from_folder(EXERCISES / slug)


def grade(engine: Engine, slug: str, source: str, **options: object) -> GradeResult:
    return engine.grade(spec(slug), source, **options)  # type: ignore[arg-type]


def test_a_correct_solution_is_accepted_with_every_check_and_the_result_json(engine: Engine) -> None:
    stages: list[Stage] = []
    result = grade(engine, "linear-backward", LINEAR, on_stage=stages.append)
    assert result.verdict == Verdict.ACCEPTED
    assert result.score == 1.0
    assert [check.name for check in result.checks] == ALL_CHECKS
    assert all(check.passed for check in result.checks)
    assert stages == [Stage.SANDBOX, Stage.CHECKS, Stage.TRAINING, Stage.DONE]
    data = result.to_json()
    assert {"verdict", "score", "checks", "feedback", "diagnosis", "timings", "isolation", "training"} <= set(data)
    assert set(data["timings"]) == {"sandbox_s", "checks_s", "training_s", "total_s"}
    assert data["timings"]["total_s"] >= data["timings"]["training_s"] > 0
    assert data["isolation"] == str(engine.isolation)
    assert len(data["training"]["learner_loss"]) == len(data["training"]["reference_loss"]) == 25
    assert data["training"]["learner_loss"][-1] < data["training"]["learner_loss"][0]
    json.dumps(data, allow_nan=False)  # plain JSON, no NaN


def test_the_numerical_check_shows_sampled_entries_with_both_values(engine: Engine) -> None:
    result = grade(engine, "linear-backward", LINEAR)
    numerical = next(check for check in result.checks if check.name == "numerical")
    assert {array.name for array in numerical.arrays} == {"dx", "dw", "db"}
    sample = numerical.arrays[0].samples[0]
    assert sample.numerical == pytest.approx(sample.analytic, rel=1e-6)
    assert numerical.tolerance == 1e-5


def test_the_same_seed_draws_the_same_cases_and_fresh_seeds_differ(engine: Engine) -> None:
    wrong = LINEAR.replace("dout.sum(axis=0)", "dout.mean(axis=0)")
    first = grade(engine, "linear-backward", wrong, seed=7).diagnosis[0].worst
    again = grade(engine, "linear-backward", wrong, seed=7).diagnosis[0].worst
    fresh = grade(engine, "linear-backward", wrong).diagnosis[0].worst
    assert first == again
    assert first != fresh


def test_a_syntax_error_is_reported_with_its_line_without_running_anything(engine: Engine) -> None:
    result = grade(engine, "linear-backward", "import numpy as np\n\ndef linear_backward(dout, x, w, b)\n    pass\n")
    assert result.verdict == Verdict.SYNTAX_ERROR
    assert [check.to_json() for check in result.checks] == [
        {"name": "load", "passed": False, "message": result.feedback, "line": 3}
    ]
    assert "line 3" in result.feedback
    assert result.score == 0.0


def test_a_missing_function_gets_a_clear_message(engine: Engine) -> None:
    result = grade(engine, "linear-backward", "def linear(dout, x, w, b):\n    return None\n")
    assert result.verdict == Verdict.RUNTIME_ERROR
    assert "does not define a function named linear_backward" in result.feedback


def test_a_wrong_arity_names_the_expected_signature(engine: Engine) -> None:
    result = grade(engine, "linear-backward", "def linear_backward(dout, x, w):\n    return None\n")
    assert result.verdict == Verdict.RUNTIME_ERROR
    assert "takes 3 arguments; it must take 4: linear_backward(dout, x, w, b)" in result.feedback
    assert [check.passed for check in result.checks] == [True, False]


def test_an_exception_in_the_learner_code_is_a_runtime_error_with_its_line(engine: Engine) -> None:
    source = "def linear_backward(dout, x, w, b):\n    scale = 0\n    return 1 / scale\n"
    result = grade(engine, "linear-backward", source)
    assert result.verdict == Verdict.RUNTIME_ERROR
    assert "ZeroDivisionError" in result.feedback
    assert result.checks[-1].line == 3
    assert result.score == 0.0  # loading is no achievement: a crash scores nothing (grader.engine.score_of)


def test_importing_torch_is_forbidden(engine: Engine) -> None:
    result = grade(engine, "relu-backward", "import torch\n\ndef relu_backward(dout, x):\n    return dout\n")
    assert result.verdict == Verdict.FORBIDDEN
    assert "torch" in result.feedback


def test_an_in_place_modification_is_caught_even_when_the_values_are_right(engine: Engine) -> None:
    source = "def relu_backward(dout, x):\n    dout[x <= 0] = 0.0\n    return dout\n"
    result = grade(engine, "relu-backward", source)
    assert result.verdict == Verdict.WRONG_ANSWER
    no_inplace = next(check for check in result.checks if check.name == "no_inplace")
    assert not no_inplace.passed and "dout" in no_inplace.message
    assert result.diagnosis[0].mistake == "inplace_modification"
    assert result.diagnosis[0].output == "dout"
    assert result.diagnosis[0].worst[0]["got"] == 0.0
    assert next(check for check in result.checks if check.name == "autograd").passed


def test_float32_and_nan_outputs_fail_the_outputs_check(engine: Engine) -> None:
    float32 = "import numpy as np\n\ndef relu_backward(dout, x):\n    return (dout * (x > 0)).astype(np.float32)\n"
    result = grade(engine, "relu-backward", float32)
    outputs = next(check for check in result.checks if check.name == "outputs")
    assert not outputs.passed and "float32" in outputs.message
    nan = "import numpy as np\n\ndef relu_backward(dout, x):\n    return dout * np.nan\n"
    result = grade(engine, "relu-backward", nan)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert "NaN" in next(check for check in result.checks if check.name == "outputs").message


def test_a_wrong_gradient_is_diagnosed_with_a_hint_to_the_lesson(engine: Engine) -> None:
    wrong = LINEAR.replace("x.T @ dout", "dout.T @ x")
    result = grade(engine, "linear-backward", wrong)
    assert result.verdict == Verdict.WRONG_ANSWER
    diagnosis = result.diagnosis[0]
    assert diagnosis.output == "dw"
    assert diagnosis.mistake == "transposed"
    assert diagnosis.lesson_url == "/lessons/backpropagation/#mathematical-foundations"
    assert "dw looks transposed" in result.feedback
    assert 0 < result.score < 1


def test_wrong_gradients_make_the_training_curves_part(engine: Engine) -> None:
    wrong = LINEAR.replace("dout.sum(axis=0)", "dout.mean(axis=0)")
    result = grade(engine, "linear-backward", wrong)
    training = next(check for check in result.checks if check.name == "training")
    assert not training.passed
    assert training.rel_error > 1e-6
    assert result.training is not None
    assert result.training["learner_loss"] != result.training["reference_loss"]


LINEAR_LOOPS = """\
import numpy as np


def linear_backward(dout, x, w, b):
    n, d = x.shape
    m = w.shape[1]
    dx = np.zeros((n, d))
    dw = np.zeros((d, m))
    db = np.zeros(m)
    for i in range(n):
        for j in range(m):
            db[j] += dout[i, j]
            for k in range(d):
                dx[i, k] += dout[i, j] * w[k, j]
                dw[k, j] += x[i, k] * dout[i, j]
    return dx, dw, db
"""

LINEAR_EINSUM = """\
import numpy as np


def linear_backward(dout, x, w, b):
    return [np.einsum("nm,dm->nd", dout, w), np.einsum("nd,nm->dm", x, dout), np.einsum("nm->m", dout)]
"""

SOFTMAX_LOGSUMEXP = """\
import math
import numpy as np


def logsumexp(row):
    top = max(row)
    return top + math.log(sum(math.exp(v - top) for v in row))


def softmax_cross_entropy(logits, y):
    n, c = logits.shape
    loss = 0.0
    dlogits = np.empty((n, c))
    for i in range(n):
        lse = logsumexp(logits[i])
        loss += lse - logits[i, y[i]]
        for j in range(c):
            dlogits[i, j] = math.exp(logits[i, j] - lse)
        dlogits[i, y[i]] -= 1.0
    return loss / n, dlogits / n
"""

SIGMOID_TANH = """\
import numpy as np


def sigmoid_backward(dout, x):
    s = 0.5 * (1.0 + np.tanh(x / 2.0))
    return np.multiply(dout, s - s * s)
"""

RELU_WHERE = """\
import numpy as np


def relu_backward(dout, x):
    dx = np.where(x > 0, dout, 0.0)
    return dx
"""


@pytest.mark.parametrize(
    ("slug", "source"),
    [
        ("linear-backward", LINEAR_LOOPS),
        ("linear-backward", LINEAR_EINSUM),
        ("softmax-cross-entropy", SOFTMAX_LOGSUMEXP),
        ("sigmoid-backward", SIGMOID_TANH),
        ("relu-backward", RELU_WHERE),
    ],
    ids=["linear-loops", "linear-einsum-list", "softmax-logsumexp-loops", "sigmoid-via-tanh", "relu-where"],
)
def test_correct_solutions_in_other_styles_are_accepted(engine: Engine, slug: str, source: str) -> None:
    result = grade(engine, slug, source)
    assert result.verdict == Verdict.ACCEPTED, result.feedback


def test_an_unexplained_mistake_still_gets_a_message_with_the_worst_entries(engine: Engine) -> None:
    source = "import numpy as np\n\ndef tanh_backward(dout, x):\n    return dout * np.cos(x)\n"
    result = grade(engine, "tanh-backward", source)
    assert result.verdict == Verdict.WRONG_ANSWER
    diagnosis = result.diagnosis[0]
    assert diagnosis.mistake == "unknown"
    assert len(diagnosis.worst) == 5
    first = diagnosis.worst[0]
    assert set(first) == {"index", "expected", "got"}
    assert not np.isclose(first["expected"], first["got"])


def test_a_dead_sandbox_is_restarted_before_the_next_grading(engine: Engine) -> None:
    engine._sandbox.close()  # the zygote dies (killed, out of memory...)
    assert not engine._sandbox.is_alive()
    result = grade(engine, "linear-backward", LINEAR)
    assert result.verdict == Verdict.ACCEPTED
    assert engine._sandbox.is_alive()


def test_a_second_grading_reuses_the_reference_curve_and_the_learner_part_stays_fresh(engine: Engine) -> None:
    cache = engine.reference_curves
    linear = spec("linear-backward")
    first = engine.grade(linear, LINEAR, seed=424242)
    hits, misses = cache.hits, cache.misses
    assert first.training is not None
    first.training["reference_loss"][0] = 123.0  # a caller's copy: the cache must not see this
    wrong = LINEAR.replace("dout.sum(axis=0)", "dout.mean(axis=0)")
    second = engine.grade(linear, wrong, seed=424242)
    assert (cache.hits, cache.misses) == (hits + 1, misses)
    assert second.training is not None
    kind = linear.get_kind()
    setup = kind.training()
    assert setup is not None

    def autograd_backward(args: list[object]) -> object:
        from grader.kinds.base import Case

        expected = kind.reference(Case("check", dict(zip(kind.arg_names, args, strict=True))))
        return tuple(expected[output.name] for output in kind.outputs)

    uncached = run_training(
        kind, setup, autograd_backward, seed=424242, steps=linear.training_steps, lr=linear.training_lr
    )
    assert second.training["reference_loss"] == uncached.reference_loss  # not the caller's edited copy
    # The learner's curve is computed afresh: the wrong bias gradient parts from the reference.
    assert second.verdict == Verdict.WRONG_ANSWER
    assert second.training["learner_loss"] != uncached.learner_loss


def test_a_changed_spec_never_gets_a_stale_reference_curve(engine: Engine) -> None:
    cache = engine.reference_curves
    linear = spec("linear-backward")
    base = engine.grade(linear, LINEAR, seed=515151)
    assert base.training is not None
    lr = (linear.training_lr or 0.1) * 3
    faster = dataclasses.replace(linear, training_lr=lr)
    misses = cache.misses
    changed = engine.grade(faster, LINEAR, seed=515151)
    assert cache.misses == misses + 1
    assert changed.training is not None
    assert changed.training["reference_loss"] != base.training["reference_loss"]
    assert changed.verdict == Verdict.ACCEPTED  # the learner's run follows the new reference, not the old one
    # A change that does not alter the curve (a tolerance) still gets its own entry, never a shared one.
    tolerances = dataclasses.replace(linear.tolerances, training_loss_rel=1e-7)
    stricter = dataclasses.replace(linear, tolerances=tolerances)
    misses = cache.misses
    assert engine.grade(stricter, LINEAR, seed=515151).verdict == Verdict.ACCEPTED
    assert cache.misses == misses + 1


@pytest.mark.parametrize("wrong", [False, True], ids=["solution", "wrong-bias"])
def test_work_done_ahead_while_the_child_runs_does_not_change_the_result(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, wrong: bool
) -> None:
    from grader.backlog import Backlog

    source = LINEAR.replace("dout.sum(axis=0)", "dout.mean(axis=0)") if wrong else LINEAR
    linear = spec("linear-backward")
    ahead = engine.grade(linear, source, seed=909090).to_json()
    engine.reference_curves = type(engine.reference_curves)()  # the second grading computes its curve too
    monkeypatch.setattr(Backlog, "step", lambda self: False)  # nothing ahead: everything when needed
    when_needed = engine.grade(linear, source, seed=909090).to_json()
    ahead.pop("timings")
    when_needed.pop("timings")
    assert ahead == when_needed
    assert ahead["verdict"] == ("wrong_answer" if wrong else "accepted")
