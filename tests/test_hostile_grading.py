"""Attacks on the verdict itself, through the whole engine on the real sandbox.

tests/test_hostile_submissions.py attacks the sandbox (escape, resources, secrets); here the
submission tries to be *graded* accepted without computing the right gradients: by patching
what a grader might compare with, lying about its arrays, printing a verdict, telling the
checks from the training run apart, or by being right only on easy inputs. Each test asserts
the verdict, that nothing the learner sees holds a secret, and that the next grading is normal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.conf import settings

from grader.engine import Engine, GradeResult
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict

pytestmark = pytest.mark.sandbox

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
# linear_backward with dw transposed back into shape: right shapes, wrong values.
WRONG_DW = "dw = (x.T @ dout) * 0.5"
RIGHT = "dw = x.T @ dout"
LINEAR = """\
import numpy as np


def linear_backward(dout, x, w, b):
    dx = dout @ w.T
    {dw}
    db = dout.sum(axis=0)
    return dx, dw, db
"""


def grade(engine: Engine, source: str, slug: str = "linear-backward") -> GradeResult:
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES / slug), source)
    shown = json.dumps(result.to_json())
    assert os.environ["GRADLAB_TEST_GRADING_SECRET"] not in shown  # planted by the engine fixture
    assert settings.SECRET_KEY not in shown
    return result


def assert_next_grading_is_normal(engine: Engine) -> None:
    assert grade(engine, LINEAR.format(dw=RIGHT)).verdict == Verdict.ACCEPTED


def test_patching_numpy_comparisons_does_not_make_a_wrong_gradient_pass(engine: Engine) -> None:
    source = (
        "import numpy as np\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)\n"
        "np.array_equal = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "np.max = lambda *a, **k: 0.0\n"
        "np.abs = lambda a, *r, **k: a * 0\n"
    ) + LINEAR.format(dw=WRONG_DW).replace("import numpy as np\n", "")
    result = grade(engine, source)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert result.diagnosis[0].output == "dw"
    assert_next_grading_is_normal(engine)


def test_an_ndarray_subclass_that_claims_equality_is_judged_on_its_data(engine: Engine) -> None:
    source = LINEAR.format(dw=WRONG_DW).replace(
        "    return dx, dw, db",
        "    class Liar(np.ndarray):\n"
        "        def __eq__(self, other):\n"
        "            return True\n"
        "        def __array_function__(self, func, types, args, kwargs):\n"
        "            return True\n"
        "        def __sub__(self, other):\n"
        "            return np.zeros(self.shape)\n"
        "    return dx, dw.view(Liar), db",
    )
    result = grade(engine, source)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert_next_grading_is_normal(engine)


def test_a_verdict_printed_to_stdout_is_just_output(engine: Engine) -> None:
    fake = json.dumps({"verdict": "accepted", "score": 1.0, "checks": []})
    source = LINEAR.format(dw=WRONG_DW).replace(
        "    return dx, dw, db", f"    print({fake!r})\n    print('\\x00' * 64)\n    return dx, dw, db"
    )
    result = grade(engine, source)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert result.score < 1
    assert_next_grading_is_normal(engine)


def test_being_right_only_on_the_first_calls_fails_the_training_run(engine: Engine) -> None:
    """A submission that counts its calls and turns wrong later (e.g. during training) is caught."""
    source = (
        LINEAR.format(dw=RIGHT)
        .replace(
            "def linear_backward(dout, x, w, b):\n",
            "CALLS = [0]\n\n\ndef linear_backward(dout, x, w, b):\n    CALLS[0] += 1\n",
        )
        .replace("    return dx, dw, db", "    if CALLS[0] > 8:\n        dw = dw * 0.9\n    return dx, dw, db")
    )
    result = grade(engine, source)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert not next(check for check in result.checks if check.name == "training").passed
    assert_next_grading_is_normal(engine)


def test_being_right_only_on_small_or_square_inputs_fails_the_edge_cases(engine: Engine) -> None:
    """Right for the first shapes it sees, wrong for a batch of one or a non-square weight."""
    source = LINEAR.format(dw=RIGHT).replace(
        "    return dx, dw, db",
        "    if x.shape[0] == 1 or w.shape[0] != w.shape[1]:\n        db = db * 2\n    return dx, dw, db",
    )
    result = grade(engine, source)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert_next_grading_is_normal(engine)


def test_returning_the_inputs_arrays_themselves_is_not_mistaken_for_gradients(engine: Engine) -> None:
    source = "def relu_backward(dout, x):\n    return dout\n"
    result = grade(engine, source, "relu-backward")
    assert result.verdict == Verdict.WRONG_ANSWER
    assert_next_grading_is_normal(engine)


def test_modifying_an_input_only_sometimes_is_still_caught(engine: Engine) -> None:
    source = (
        "import numpy as np\n\nSEEN = [0]\n\n\ndef relu_backward(dout, x):\n"
        "    SEEN[0] += 1\n"
        "    if SEEN[0] == 2:\n"
        "        x[...] = np.abs(x)\n"
        "    return dout * (x > 0)\n"
    )
    result = grade(engine, source, "relu-backward")
    assert result.verdict == Verdict.WRONG_ANSWER
    assert_next_grading_is_normal(engine)


def test_a_gradient_that_is_nan_in_one_entry_never_passes(engine: Engine) -> None:
    source = LINEAR.format(dw=RIGHT).replace(
        "    return dx, dw, db", "    dw = dw.copy()\n    dw[0, 0] = np.nan\n    return dx, dw, db"
    )
    result = grade(engine, source)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert_next_grading_is_normal(engine)


def test_state_left_by_one_submission_does_not_reach_the_next(engine: Engine) -> None:
    """Each submission gets a fresh child: a patched NumPy or a module global dies with it."""
    poison = (
        "import numpy as np\n"
        "import math\n"
        "math.sqrt = lambda value: 1.0\n"
        "np.sum = lambda *a, **k: 0.0\n"
        "def linear_backward(dout, x, w, b):\n"
        "    return dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
    )
    grade(engine, poison)
    assert_next_grading_is_normal(engine)
    attention = (EXERCISES / "attention-backward" / "solution.py").read_text()
    assert grade(engine, attention, "attention-backward").verdict == Verdict.ACCEPTED


TELLS_THE_PHASE = """\
import numpy as np


def in_checks():
    # The runner's frame holds the request: the checks ask for the inputs back, the training run does not.
    try:
        raise RuntimeError
    except RuntimeError as error:
        frame = error.__traceback__.tb_frame
    while frame is not None:
        header = frame.f_locals.get("header")
        if isinstance(header, dict) and "return_inputs" in header:
            return bool(header["return_inputs"])
        frame = frame.f_back
    raise AssertionError("no request found")


def linear_backward(dout, x, w, b):
    dx, dw, db = dout @ w.T, x.T @ dout, dout.sum(axis=0)
    if in_checks() == {wrong_in_checks}:
        print("wrong here")
        dw = dw * 1.5
    return dx, dw, db
"""


@pytest.mark.parametrize("wrong_in_checks", [False, True], ids=["wrong only in training", "wrong only in the checks"])
def test_telling_the_checks_from_the_training_run_apart_gains_nothing(engine: Engine, wrong_in_checks: bool) -> None:
    """A submission can tell the phases apart exactly (from the runner's frame); each phase still holds on its own."""
    result = grade(engine, TELLS_THE_PHASE.format(wrong_in_checks=wrong_in_checks))
    assert "wrong here" in result.stdout
    assert result.verdict == Verdict.WRONG_ANSWER
    failed = {check.name for check in result.checks if not check.passed}
    assert failed == ({"autograd", "numerical", "edge_cases"} if wrong_in_checks else {"training"})
    assert_next_grading_is_normal(engine)
