"""Lessons moved out of the quizzes app: the models change app, the tables stay.

`Lesson` and `LessonRead` keep their tables (`quizzes_lesson`, `quizzes_lesson_related`,
`quizzes_lessonread`) and their rows: this migration only tells Django's state that the
models now belong here. quizzes 0003 removes them from the quizzes app's state and moves
their content types (so permissions granted on lessons are kept).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("quizzes", "0002_quiz_questions_attempts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Lesson",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("slug", models.SlugField(max_length=100, unique=True)),
                        ("title", models.CharField(max_length=200)),
                        (
                            "difficulty",
                            models.CharField(
                                choices=[("EASY", "Easy"), ("MEDIUM", "Medium"), ("HARD", "Hard")],
                                default="MEDIUM",
                                max_length=10,
                            ),
                        ),
                        ("order", models.PositiveIntegerField(default=0)),
                        ("summary", models.TextField(blank=True)),
                        (
                            "question",
                            models.TextField(help_text="The question the lesson answers, as worded for the learner."),
                        ),
                        ("short_answer_md", models.TextField(blank=True)),
                        ("short_answer_html", models.TextField(blank=True)),
                        ("body_md", models.TextField(blank=True)),
                        ("body_html", models.TextField(blank=True)),
                        ("references", models.JSONField(blank=True, default=list)),
                        (
                            "extra",
                            models.JSONField(blank=True, default=dict, help_text="Front-matter keys kept for export."),
                        ),
                        ("source_path", models.CharField(blank=True, max_length=300)),
                        ("content_hash", models.CharField(blank=True, max_length=64)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "related",
                            models.ManyToManyField(blank=True, related_name="related_from", to="lessons.lesson"),
                        ),
                    ],
                    options={"db_table": "quizzes_lesson", "ordering": ["order", "slug"]},
                ),
                migrations.CreateModel(
                    name="LessonRead",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("first_read_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "lesson",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="reads", to="lessons.lesson"
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="lesson_reads",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "quizzes_lessonread",
                        "constraints": [models.UniqueConstraint(fields=("user", "lesson"), name="unique_lesson_read")],
                    },
                ),
            ],
        ),
    ]
