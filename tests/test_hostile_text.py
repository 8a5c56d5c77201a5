"""Hostile text and names: what a submission prints, raises or binds must end in its own verdict.

The learner's text (stdout, error messages) is stored with the verdict, in PostgreSQL in
production: a NUL or a lone surrogate there made the database refuse the whole result, and the
submission ended failed by the grader. Names bound in unusual ways (a lambda, a class, a
builtin) and sources with other line endings must also be graded, never crash the grader.
Everything runs through the warm engine (tests/conftest.py's `engine`) on the real sandbox;
the storing tests run through the service on the test database (PostgreSQL in its pass).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from grader import services
from grader.engine import Engine, GradeResult
from grader.models import Submission, SubmissionStatus
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict
from tests.submission_helpers import exercise_from_folder

pytestmark = pytest.mark.sandbox

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
SOLUTION = (EXERCISES / "linear-backward" / "solution.py").read_text()
HEADER = "def linear_backward(dout, x, w, b):\n"
ANSWER = "(dout @ w.T, x.T @ dout, dout.sum(axis=0))"
REPLACEMENT = "\ufffd"


def with_first_line(line: str) -> str:
    """The reference solution with `line` run first in linear_backward."""
    assert HEADER in SOLUTION
    return SOLUTION.replace(HEADER, f"{HEADER}    {line}\n", 1)


# Each: (first line of the function, the verdict, the text the learner must see instead).
UNSTORABLE_TEXT = {
    "a NUL printed": ("print('before\\x00after')", Verdict.ACCEPTED, f"before{REPLACEMENT}after"),
    "NUL bytes written raw": (
        "open(1, 'wb', closefd=False).write(b'raw\\x00\\xff\\xfe')",
        Verdict.ACCEPTED,
        f"raw{REPLACEMENT}",
    ),
    "a NUL and a lone surrogate raised": (
        "raise ValueError('a\\x00b\\ud800c')",
        Verdict.RUNTIME_ERROR,
        f"ValueError: a{REPLACEMENT}b{REPLACEMENT}c",
    ),
}


def grade(engine: Engine, source: str) -> GradeResult:
    return engine.grade(ExerciseSpec.from_folder(EXERCISES / "linear-backward"), source)


def storable(data: object) -> bool:
    """True if the JSON of `data` holds no NUL and encodes to UTF-8 (what PostgreSQL's jsonb stores)."""
    text = json.dumps(data, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text and "\\u0000" not in text


@pytest.mark.parametrize("attack", list(UNSTORABLE_TEXT))
def test_unstorable_text_reaches_the_learner_replaced(engine: Engine, attack: str) -> None:
    line, verdict, shown = UNSTORABLE_TEXT[attack]
    result = grade(engine, with_first_line(line))
    assert result.verdict == verdict
    assert shown in result.stdout + result.feedback  # the attack ran, and its text is kept readable
    assert storable(result.to_json())


@pytest.mark.parametrize("attack", list(UNSTORABLE_TEXT))
def test_unstorable_text_is_stored_with_the_learners_verdict(learner: User, engine: Engine, attack: str) -> None:
    line, verdict, shown = UNSTORABLE_TEXT[attack]
    exercise_from_folder("linear-backward")
    submission = services.submission_create(user=learner, exercise_slug="linear-backward", code=with_first_line(line))
    outcome = services.submission_grade(submission.pk, engine=engine)
    assert outcome.graded
    stored = Submission.objects.get(pk=submission.pk)
    assert (stored.status, stored.verdict) == (SubmissionStatus.GRADED, verdict)
    assert shown in stored.result["stdout"] + stored.result["feedback"]


@pytest.mark.parametrize(
    ("binding", "verdict"),
    [
        (f"linear_backward = lambda dout, x, w, b: {ANSWER}", Verdict.ACCEPTED),
        (f"class linear_backward:\n    def __new__(cls, dout, x, w, b):\n        return {ANSWER}\n", Verdict.ACCEPTED),
        (
            f"class Layer:\n    def __call__(self, dout, x, w, b):\n        return {ANSWER}\nlinear_backward = Layer()\n",
            Verdict.ACCEPTED,
        ),
        ("linear_backward = print", Verdict.WRONG_ANSWER),
        ("linear_backward = sum", Verdict.RUNTIME_ERROR),
        ("linear_backward = 42", Verdict.RUNTIME_ERROR),
        (SOLUTION + "\ndef linear_backward(dout, x, w, b):\n    return 1\n", Verdict.WRONG_ANSWER),  # the last wins
        ("def linear_backward(dout, x, w, b):\n    yield 1\n", Verdict.RUNTIME_ERROR),
        ("def linear_backward(dout, x, w, b, *, scale):\n    return 1\n", Verdict.RUNTIME_ERROR),
    ],
)
def test_the_function_bound_in_any_way_gets_a_learner_verdict(engine: Engine, binding: str, verdict: Verdict) -> None:
    result = grade(engine, "import numpy as np\n" + binding + "\n")
    assert result.verdict == verdict, result.feedback


@pytest.mark.parametrize(
    "source",
    [SOLUTION.replace("\n", "\r\n"), SOLUTION.replace("\n", "\r"), "\ufeff" + SOLUTION.replace("\n", "\r\n")],
    ids=["CRLF", "CR", "BOM and CRLF"],
)
def test_other_line_endings_are_graded_as_the_same_code(engine: Engine, source: str) -> None:
    assert grade(engine, source).verdict == Verdict.ACCEPTED


BROKEN_EXCEPTIONS = {
    "whose str() raises": "class Broken(Exception):\n    def __str__(self):\n        raise ValueError('no')\n",
    "whose str() raises a BaseException": (
        "class Broken(Exception):\n    def __str__(self):\n        raise KeyboardInterrupt\n"
    ),
    "whose str() is not text": "class Broken(Exception):\n    def __str__(self):\n        return 42\n",
    "whose class name raises": (
        "class Meta(type):\n    @property\n    def __name__(cls):\n        raise SystemExit(1)\n"
        "class Broken(Exception, metaclass=Meta):\n    pass\n"
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN_EXCEPTIONS))
def test_an_exception_that_cannot_be_described_is_still_a_runtime_error_at_its_line(
    engine: Engine, broken: str
) -> None:
    source = (
        "import numpy as np\n\n"
        + BROKEN_EXCEPTIONS[broken]
        + "\n\ndef linear_backward(dout, x, w, b):\n    print('raising')\n    raise Broken()\n"
    )
    result = grade(engine, source)
    assert result.verdict == Verdict.RUNTIME_ERROR
    assert "raising" in result.stdout
    assert "exit status" not in result.feedback, result.feedback
    assert result.checks[-1].line == source.splitlines().index("    raise Broken()") + 1
