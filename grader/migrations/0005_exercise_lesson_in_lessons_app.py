"""Exercise.lesson points at lessons.Lesson (the same table, quizzes_lesson): a state-only change."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("grader", "0004_exercise_hints"),
        ("lessons", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="exercise",
                    name="lesson",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="exercises",
                        to="lessons.lesson",
                    ),
                ),
            ],
        ),
    ]
