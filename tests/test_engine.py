"""The grading engine end to end on the real sandbox: checks in order, verdicts, diagnosis, timings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from grader.engine import Engine, GradeResult
from grader.spec import ExerciseSpec
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


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    yield Engine.get()


def spec(slug: str) -> ExerciseSpec:
    return ExerciseSpec.from_folder(EXERCISES / slug)


def grade(engine: Engine, slug: str, source: str, **options: object) -> GradeResult:
    return engine.grade(spec(slug), source, **options)  # type: ignore[arg-type]


def test_a_correct_solution_is_accepted_with_every_check_and_the_result_json(engine: Engine) -> None:
    stages: list[Stage] = []
    result = grade(engine, "linear-backward", LINEAR, on_stage=stages.append)
    assert result.verdict == Verdict.ACCEPTED
    assert result.score == 1.0
    assert [check["name"] for check in result.checks] == ALL_CHECKS
    assert all(check["passed"] for check in result.checks)
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
    numerical = next(check for check in result.checks if check["name"] == "numerical")
    assert {array["array"] for array in numerical["arrays"]} == {"dx", "dw", "db"}
    sample = numerical["arrays"][0]["samples"][0]
    assert sample["numerical"] == pytest.approx(sample["analytic"], rel=1e-6)
    assert numerical["tolerance"] == 1e-5


def test_the_same_seed_draws_the_same_cases_and_fresh_seeds_differ(engine: Engine) -> None:
    wrong = LINEAR.replace("dout.sum(axis=0)", "dout.mean(axis=0)")
    first = grade(engine, "linear-backward", wrong, seed=7).diagnosis[0]["worst"]
    again = grade(engine, "linear-backward", wrong, seed=7).diagnosis[0]["worst"]
    fresh = grade(engine, "linear-backward", wrong).diagnosis[0]["worst"]
    assert first == again
    assert first != fresh


def test_a_syntax_error_is_reported_with_its_line_without_running_anything(engine: Engine) -> None:
    result = grade(engine, "linear-backward", "import numpy as np\n\ndef linear_backward(dout, x, w, b)\n    pass\n")
    assert result.verdict == Verdict.SYNTAX_ERROR
    assert result.checks == [{"name": "load", "passed": False, "message": result.feedback, "line": 3}]
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
    assert [check["passed"] for check in result.checks] == [True, False]


def test_an_exception_in_the_learner_code_is_a_runtime_error_with_its_line(engine: Engine) -> None:
    source = "def linear_backward(dout, x, w, b):\n    scale = 0\n    return 1 / scale\n"
    result = grade(engine, "linear-backward", source)
    assert result.verdict == Verdict.RUNTIME_ERROR
    assert "ZeroDivisionError" in result.feedback
    assert result.checks[-1]["line"] == 3
    assert 0 < result.score < 1


def test_importing_torch_is_forbidden(engine: Engine) -> None:
    result = grade(engine, "relu-backward", "import torch\n\ndef relu_backward(dout, x):\n    return dout\n")
    assert result.verdict == Verdict.FORBIDDEN
    assert "torch" in result.feedback


def test_an_in_place_modification_is_caught_even_when_the_values_are_right(engine: Engine) -> None:
    source = "def relu_backward(dout, x):\n    dout[x <= 0] = 0.0\n    return dout\n"
    result = grade(engine, "relu-backward", source)
    assert result.verdict == Verdict.WRONG_ANSWER
    no_inplace = next(check for check in result.checks if check["name"] == "no_inplace")
    assert not no_inplace["passed"] and "dout" in no_inplace["message"]
    assert result.diagnosis[0]["mistake"] == "inplace_modification"
    assert result.diagnosis[0]["output"] == "dout"
    assert result.diagnosis[0]["worst"][0]["got"] == 0.0
    assert next(check for check in result.checks if check["name"] == "autograd")["passed"]


def test_float32_and_nan_outputs_fail_the_outputs_check(engine: Engine) -> None:
    float32 = "import numpy as np\n\ndef relu_backward(dout, x):\n    return (dout * (x > 0)).astype(np.float32)\n"
    result = grade(engine, "relu-backward", float32)
    outputs = next(check for check in result.checks if check["name"] == "outputs")
    assert not outputs["passed"] and "float32" in outputs["message"]
    nan = "import numpy as np\n\ndef relu_backward(dout, x):\n    return dout * np.nan\n"
    result = grade(engine, "relu-backward", nan)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert "NaN" in next(check for check in result.checks if check["name"] == "outputs")["message"]


def test_a_wrong_gradient_is_diagnosed_with_a_hint_to_the_lesson(engine: Engine) -> None:
    wrong = LINEAR.replace("x.T @ dout", "dout.T @ x")
    result = grade(engine, "linear-backward", wrong)
    assert result.verdict == Verdict.WRONG_ANSWER
    diagnosis = result.diagnosis[0]
    assert diagnosis["output"] == "dw"
    assert diagnosis["mistake"] == "transposed"
    assert diagnosis["lesson_url"] == "/lessons/backpropagation/#mathematical-foundations"
    assert "dw looks transposed" in result.feedback
    assert 0 < result.score < 1


def test_wrong_gradients_make_the_training_curves_part(engine: Engine) -> None:
    wrong = LINEAR.replace("dout.sum(axis=0)", "dout.mean(axis=0)")
    result = grade(engine, "linear-backward", wrong)
    training = next(check for check in result.checks if check["name"] == "training")
    assert not training["passed"]
    assert training["rel_error"] > 1e-6
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
    assert diagnosis["mistake"] == "unknown"
    assert len(diagnosis["worst"]) == 5
    first = diagnosis["worst"][0]
    assert set(first) == {"index", "expected", "got"}
    assert not np.isclose(first["expected"], first["got"])


def test_a_dead_sandbox_is_restarted_before_the_next_grading(engine: Engine) -> None:
    engine._sandbox.close()  # the zygote dies (killed, out of memory...)
    assert not engine._sandbox.is_alive()
    result = grade(engine, "linear-backward", LINEAR)
    assert result.verdict == Verdict.ACCEPTED
    assert engine._sandbox.is_alive()
