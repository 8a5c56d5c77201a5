"""The quiz attempt policy in the quiz file (`attempts:`): import sets it, export writes it back, bad values are refused."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from pytest_django.asserts import assertContains

from lessons.models import Lesson
from quizzes.models import QuizPolicy, QuizQuestion
from tests.test_quiz_content import GOOD_QUIZ, load, make_lessons, write

pytestmark = pytest.mark.django_db

CONTENT = Path(__file__).resolve().parent.parent / "content"

WITH_POLICY = (
    "# two attempts, the second for 30% (a comment the export keeps)\n"
    "attempts:\n"
    "  max: 2\n"
    "  credits: [1, 0.3]   # attempt 1, attempt 2\n" + GOOD_QUIZ
)


def run(command: str, root: Path) -> str:
    out = StringIO()
    call_command(command, "--path", str(root), stdout=out, stderr=StringIO())
    return out.getvalue()


def policy_of(slug: str) -> tuple[int, list[float]] | None:
    policy = QuizPolicy.objects.filter(lesson__slug=slug).first()
    return None if policy is None else (policy.max_attempts, policy.credits)


def test_the_files_attempts_set_the_policy_the_quiz_page_states(tmp_path: Path, learner: User) -> None:
    make_lessons("backpropagation")
    write(tmp_path, "backpropagation.yaml", WITH_POLICY)
    report = load(tmp_path)
    assert report.errors == []
    assert "quiz backpropagation attempts" in report.created
    assert policy_of("backpropagation") == (2, [1.0, 0.3])
    client = Client()
    client.force_login(learner)
    page = client.get("/lessons/backpropagation/quiz/")
    assertContains(page, "up to <strong>2 attempts</strong>")
    assertContains(page, "A right answer earns 100% and 30% of the point on attempt 1 and 2.")

    # Importing again changes nothing; a new value updates the row.
    assert "quiz backpropagation attempts" in load(tmp_path).unchanged
    write(tmp_path, "backpropagation.yaml", "attempts:\n  max: 4\n" + GOOD_QUIZ)
    assert "quiz backpropagation attempts" in load(tmp_path).updated
    assert policy_of("backpropagation") == (4, [1.0])  # credits left out: every attempt earns full credit
    page = client.get("/lessons/backpropagation/quiz/")
    assertContains(page, "up to <strong>4 attempts</strong>")
    assertContains(page, "A right answer earns 100%, 100%, 100% and 100% of the point on attempt 1, 2, 3 and 4.")

    # A file without `attempts` puts the quiz back on the defaults (3 attempts: 100%, 50%, 25%).
    write(tmp_path, "backpropagation.yaml", GOOD_QUIZ)
    report = load(tmp_path)
    assert any(line.startswith("quiz backpropagation attempts (back to the defaults") for line in report.updated)
    assert policy_of("backpropagation") is None
    assertContains(client.get("/lessons/backpropagation/quiz/"), "A right answer earns 100%, 50% and 25% of the point")


@pytest.mark.parametrize(
    ("attempts", "line", "message"),
    [
        ("attempts: 3\n", 1, "'attempts' must be a mapping with 'max' and optionally 'credits'"),
        (
            "attempts:\n  credits: [1]\n",
            2,
            "attempts: 'max' (how many attempts each fixed question allows) is required",
        ),
        ("attempts:\n  max: 0\n", 2, "attempts: the number of attempts must be from 1 to 10, not 0"),
        ("attempts:\n  max: 11\n", 2, "the number of attempts must be from 1 to 10, not 11"),
        ("attempts:\n  max: three\n", 2, "must be a whole number from 1 to 10, not 'three'"),
        ("attempts:\n  max: 2.5\n", 2, "must be a whole number from 1 to 10, not 2.5"),
        ("attempts:\n  max: true\n", 2, "must be a whole number from 1 to 10, not True"),
        ("attempts:\n  max: 3\n  credits: 0.5\n", 2, "the credits must be a list of numbers from 0 to 1"),
        ("attempts:\n  max: 3\n  credits: []\n", 2, "the credits must be a list of numbers from 0 to 1"),
        (
            "attempts:\n  max: 3\n  credits: [1, 1.5]\n",
            2,
            "the credit of attempt 2 must be a number from 0 to 1, not 1.5",
        ),
        (
            "attempts:\n  max: 3\n  credits: [1, half]\n",
            2,
            "the credit of attempt 2 must be a number from 0 to 1, not 'half'",
        ),
        ("attempts:\n  max: 3\n  credits: [0]\n", 2, "the first attempt's credit must be more than 0"),
        ("attempts:\n  max: 3\n  credits: [0.5, 1]\n", 2, "the credit of attempt 2 (1) is more than that of attempt 1"),
        ("attempts:\n  max: 2\n  credits: [1, 0.5, 0.25]\n", 2, "3 credits are listed for 2 attempt(s)"),
        ("attempts:\n  max: 2\n  tries: 5\n", 2, "attempts: unknown key(s) tries (known: max, credits)"),
        ("attempt:\n  max: 2\n", 1, "unknown top-level key(s): attempt (known: attempts, questions)"),
    ],
)
def test_a_bad_policy_is_reported_with_its_line_and_nothing_of_the_file_is_written(
    tmp_path: Path, attempts: str, line: int, message: str
) -> None:
    make_lessons("backpropagation")
    write(tmp_path, "backpropagation.yaml", attempts + GOOD_QUIZ)
    report = load(tmp_path)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].line == line, str(report.errors[0])
    assert message in report.errors[0].message, str(report.errors[0])
    assert QuizQuestion.objects.count() == 0
    assert QuizPolicy.objects.count() == 0


def test_the_policy_survives_export_and_import(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    quiz = root / "quizzes" / "backpropagation.yaml"
    header, rest = quiz.read_text().split("\n", 1)
    quiz.write_text(f"{header}\nattempts:\n  max: 2\n  credits: [1, 0.3]   # the second for 30%\n{rest}")
    run("import_content", root)
    assert policy_of("backpropagation") == (2, [1.0, 0.3])
    assert policy_of("attention-mechanisms") is None

    # Unchanged since the import: the file comes back byte for byte, its comment included.
    first = tmp_path / "first"
    run("export_content", first)
    assert (first / "quizzes" / "backpropagation.yaml").read_bytes() == quiz.read_bytes()
    assert "attempts:" not in (first / "quizzes" / "attention-mechanisms.yaml").read_text()

    # Changed in the admin: written canonically, and it imports back to the same policy.
    policy = QuizPolicy.objects.get(lesson__slug="backpropagation")
    policy.max_attempts, policy.credits = 5, [1, 2 / 3, 0.25]
    policy.full_clean()
    policy.save()
    QuizPolicy.objects.create(lesson=Lesson.objects.get(slug="attention-mechanisms"), max_attempts=1, credits=[1])
    second = tmp_path / "second"
    output = run("export_content", second)
    assert "rewritten quizzes/backpropagation.yaml" in output
    assert "rewritten quizzes/attention-mechanisms.yaml" in output
    text = (second / "quizzes" / "backpropagation.yaml").read_text()
    assert "attempts:\n  max: 5\n  credits: [1, 0.6666666666666666, 0.25]\nquestions:\n" in text
    assert "attempts:\n  max: 1\n  credits: [1]\n" in (second / "quizzes" / "attention-mechanisms.yaml").read_text()
    QuizPolicy.objects.all().delete()
    run("import_content", second)
    assert policy_of("backpropagation") == (5, [1.0, 2 / 3, 0.25])
    assert policy_of("attention-mechanisms") == (1, [1.0])
    third = tmp_path / "third"
    run("export_content", third)
    for name in ("backpropagation", "attention-mechanisms"):
        assert (third / "quizzes" / f"{name}.yaml").read_bytes() == (second / "quizzes" / f"{name}.yaml").read_bytes()


def test_the_admin_refuses_a_bad_policy_with_the_reason(staff: User) -> None:
    make_lessons("backpropagation")
    lesson = Lesson.objects.get(slug="backpropagation")
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/quizzes/quizpolicy/add/", {"lesson": lesson.pk, "max_attempts": 3, "credits": "[0.5, 1]"}
    )
    assertContains(response, "The credit of attempt 2 (1) is more than that of attempt 1 (0.5): credits must not")
    assert not QuizPolicy.objects.exists()
    response = client.post(
        "/admin/quizzes/quizpolicy/add/", {"lesson": lesson.pk, "max_attempts": 3, "credits": "[1, 0.5]"}
    )
    assert response.status_code == 302
    assert policy_of("backpropagation") == (3, [1, 0.5])
