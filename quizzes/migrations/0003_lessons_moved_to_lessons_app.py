"""Lesson and LessonRead now belong to the lessons app (lessons 0001): drop them from this app's state.

No table changes. The two content types are relabelled, so permissions already granted
on lessons (the instructor group's, or any added by hand) stay attached to them.
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

MOVED_MODELS = ("lesson", "lessonread")


def relabel_content_types(apps: Any, schema_editor: Any, source: str = "quizzes", target: str = "lessons") -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED_MODELS:
        if ContentType.objects.using(db).filter(app_label=target, model=model).exists():
            continue
        ContentType.objects.using(db).filter(app_label=source, model=model).update(app_label=target)


def relabel_content_types_back(apps: Any, schema_editor: Any) -> None:
    relabel_content_types(apps, schema_editor, source="lessons", target="quizzes")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("quizzes", "0002_quiz_questions_attempts"),
        ("lessons", "0001_initial"),
        ("grader", "0005_exercise_lesson_in_lessons_app"),
        ("courses", "0002_item_lesson_in_lessons_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="quizquestion",
                    name="lesson",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="quiz_questions",
                        to="lessons.lesson",
                    ),
                ),
                migrations.DeleteModel(name="LessonRead"),
                migrations.DeleteModel(name="Lesson"),
            ],
        ),
        migrations.RunPython(relabel_content_types, relabel_content_types_back),
    ]
