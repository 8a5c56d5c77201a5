"""Lessons, and which learner has read which."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Difficulty(models.TextChoices):
    EASY = "EASY", "Easy"
    MEDIUM = "MEDIUM", "Medium"
    HARD = "HARD", "Hard"


class Lesson(models.Model):
    """A question-and-answer lesson imported from `content/lessons/<slug>.md`.

    `body_md` keeps the Markdown exactly as authored (for export); `body_html` and
    `short_answer_html` are rendered and sanitized once, at import.
    """

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    difficulty = models.CharField(max_length=10, choices=Difficulty.choices, default=Difficulty.MEDIUM)
    order = models.PositiveIntegerField(default=0)
    summary = models.TextField(blank=True)
    question = models.TextField(help_text="The question the lesson answers, as worded for the learner.")
    short_answer_md = models.TextField(blank=True)
    short_answer_html = models.TextField(blank=True)
    body_md = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    related = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="related_from")
    references = models.JSONField(default=list, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="Front-matter keys kept for export.")
    source_path = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table kept its name when lessons moved out of the quizzes app (migration lessons 0001).
        db_table = "quizzes_lesson"
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("lesson_detail", args=[self.slug])


class LessonRead(models.Model):
    """A learner opened a lesson (counts as read for progress)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_reads")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="reads")
    first_read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "quizzes_lessonread"
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="unique_lesson_read")]
