"""AssignmentItem.lesson points at lessons.Lesson (the same table, quizzes_lesson): a state-only change."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_initial"),
        ("lessons", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="assignmentitem",
                    name="lesson",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assignment_items",
                        to="lessons.lesson",
                    ),
                ),
            ],
        ),
    ]
