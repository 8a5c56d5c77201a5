"""A database created before an app move migrates forward with every row where it was.

The moves change which app a model belongs to, never its table: `lessons` took Lesson and
LessonRead from `quizzes` (tables `quizzes_lesson*` kept), `contentsync` took ContentSource
from `dashboard` (table `dashboard_contentsource` kept). The test rolls the schema back to
the last migrations before the moves, writes rows through the old models, migrates forward
and reads them through today's models.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from contentsync.models import ContentSource
from grader.models import Exercise
from lessons.models import Lesson, LessonRead
from quizzes.models import QuizAttempt, QuizQuestion

# The newest migration of each app before the moves; apps that did not exist yet are unapplied.
BEFORE_MOVES: list[tuple[str, str | None]] = [
    ("lessons", None),
    ("contentsync", None),
    ("quizzes", "0002_quiz_questions_attempts"),
    ("grader", "0004_exercise_hints"),
    ("courses", "0001_initial"),
    ("dashboard", "0001_initial"),
]


def _migrate(targets: list[tuple[str, str | None]]) -> Any:
    """Migrate to `targets` (migrations of other apps that depend on what is unapplied go too);
    return the apps registry of the state reached."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    applied = [node for node in executor.loader.applied_migrations if node in executor.loader.graph.nodes]
    return executor.loader.project_state(applied).apps


def _write_old_rows(old: Any) -> None:
    User = old.get_model("auth", "User")
    OldContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    OldGroup = old.get_model("auth", "Group")
    OldLesson = old.get_model("quizzes", "Lesson")
    ada = User.objects.create(username="ada")
    chain = OldLesson.objects.create(slug="chain-rule", title="Chain rule", question="Why?", order=1)
    backprop = OldLesson.objects.create(slug="backprop", title="Backprop", question="How?", order=2)
    backprop.related.add(chain)
    old.get_model("quizzes", "LessonRead").objects.create(user=ada, lesson=backprop)
    question = old.get_model("quizzes", "QuizQuestion").objects.create(
        lesson=backprop, key="order", kind="numeric", prompt_md="2+2?", explanation_md="4", answer=4
    )
    old.get_model("quizzes", "QuizAttempt").objects.create(
        user=ada, question=question, answer_text="4", score=1.0, is_correct=True
    )
    old.get_model("grader", "Exercise").objects.create(slug="linear-backward", title="Linear", lesson=backprop)
    old.get_model("dashboard", "ContentSource").objects.create(path="lessons/backprop.md", text="---\n")
    # An old database has the lesson's content type under `quizzes`, with a permission granted on it.
    for model in ("lesson", "lessonread"):
        OldContentType.objects.filter(app_label="lessons", model=model).update(app_label="quizzes")
    OldContentType.objects.filter(app_label="contentsync", model="contentsource").update(app_label="dashboard")
    lesson_type = OldContentType.objects.get(app_label="quizzes", model="lesson")
    permission = Permission.objects.get(content_type=lesson_type, codename="change_lesson")
    OldGroup.objects.get_or_create(name="editors")[0].permissions.add(permission)


@pytest.mark.django_db(transaction=True)
def test_an_old_database_keeps_its_lessons_quizzes_exercises_sources_and_permissions() -> None:
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _write_old_rows(_migrate(BEFORE_MOVES))
    finally:
        _migrate(leaves)
    ContentType.objects.clear_cache()

    backprop = Lesson.objects.get(slug="backprop")
    assert [lesson.slug for lesson in backprop.related.all()] == ["chain-rule"]
    assert LessonRead.objects.get(lesson=backprop).user.username == "ada"
    question = QuizQuestion.objects.get(lesson=backprop, key="order")
    assert QuizAttempt.objects.get(question=question).is_correct
    assert Exercise.objects.get(slug="linear-backward").lesson == backprop
    lesson_type = ContentType.objects.get_for_model(Lesson)
    assert lesson_type.app_label == "lessons"
    assert not ContentType.objects.filter(app_label="quizzes", model__in=["lesson", "lessonread"]).exists()
    assert ContentSource.objects.get(path="lessons/backprop.md").text == "---\n"
    assert ContentType.objects.get_for_model(ContentSource).app_label == "contentsync"
    assert not ContentType.objects.filter(app_label="dashboard").exists()
    editors = Group.objects.get(name="editors")
    assert editors.permissions.filter(content_type=lesson_type, codename="change_lesson").exists()
    # New rows still get ids after the old ones (the tables and their sequences were kept).
    assert Lesson.objects.create(slug="new", title="New", question="?").pk > backprop.pk
