"""Helpers shared by the submission tests: exercises straight from content/, known solutions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from grader import services
from grader.models import Exercise, Submission
from grader.spec import ExerciseSpec
from gradlab.markdown import render_markdown
from lessons.models import Lesson

EXERCISES_DIR = Path(settings.BASE_DIR) / "content" / "exercises"


def exercise_from_folder(slug: str = "linear-backward") -> Exercise:
    """Store the exercise of content/exercises/<slug>/ as the importer would (without its lesson link
    when the lesson is not in the database)."""
    folder = EXERCISES_DIR / slug
    spec = ExerciseSpec.from_folder(folder)
    statement = (folder / "statement.md").read_text()
    exercise, _ = Exercise.objects.update_or_create(
        slug=slug,
        defaults={
            "title": spec.title,
            "lesson": Lesson.objects.filter(slug=spec.lesson).first(),
            "order": spec.order,
            "difficulty": spec.difficulty,
            "function_name": spec.function,
            "signature": spec.signature,
            "statement_md": statement,
            "statement_html": render_markdown(statement),
            "starter_code": (folder / "starter.py").read_text(),
            "reference_solution": (folder / "solution.py").read_text(),
            "spec": {key: value for key, value in spec.to_json().items() if key != "hints"},
            "hints": list(spec.hints),
            "solution_explanation_md": (folder / "explanation.md").read_text()
            if (folder / "explanation.md").exists()
            else "",
            "is_active": True,
        },
    )
    return exercise


def graded_submission(engine: Any, user: Any, exercise: Exercise, code: str) -> Submission:
    """A submission of `code` graded by the real `engine` (as a worker would) and stored as graded."""
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / exercise.slug), code)
    return Submission.objects.create(
        user=user,
        exercise=exercise,
        code=code,
        status="graded",
        stage="done",
        verdict=result.verdict.value,
        score=result.score,
        result=result.to_json(),
        isolation=result.isolation.value,
        finished_at=timezone.now(),
    )


def solution(slug: str = "linear-backward") -> str:
    return (EXERCISES_DIR / slug / "solution.py").read_text()


def wrong(slug: str = "linear-backward", name: str = "dw_transposed") -> str:
    return (EXERCISES_DIR / slug / "wrong" / f"{name}.py").read_text()


# A linear_backward that burns CPU in the sandbox before answering (about 0.3 s per call):
# long enough for a test to kill the worker while it grades.
SLOW_LINEAR = """
import numpy as np


def linear_backward(dout, x, w, b):
    total = 0
    for i in range(3_000_000):
        total += i
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
"""


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the ids `submission_enqueue` would send instead of sending them.

    Autouse in every test module that imports it; the others enqueue for real."""
    sent: list[int] = []

    def record(submission: Submission) -> bool:
        sent.append(submission.pk)
        Submission.objects.filter(pk=submission.pk).update(enqueued_at=timezone.now())
        return True

    monkeypatch.setattr(services, "submission_enqueue", record)
    return sent
