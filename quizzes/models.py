"""Lessons and what a learner has done with them."""

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
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="unique_lesson_read")]


# --- Quizzes -------------------------------------------------------------------


class QuestionKind(models.TextChoices):
    SINGLE_CHOICE = "single_choice", "Single choice"
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    NUMERIC = "numeric", "Numeric"
    MATRIX = "matrix", "Vector or matrix"
    PARAMETERIZED = "parameterized", "Parameterized"


class QuizQuestion(models.Model):
    """One quiz question of a lesson, imported from `content/quizzes/<lesson-slug>.yaml`.

    What the answer looks like depends on `kind`:
    - choices: `choices` is a list of `{"key", "text_md", "text_html", "correct"}`;
    - numeric / matrix: `answer` holds the number or the list of rows, `tolerance`
      holds `{"absolute": float, "relative": float}` (either may be 0);
    - parameterized: `generator` names a function in quizzes/parameterized.py, which
      computes the numbers and the answer for each learner's variant; `prompt_md` is a
      template whose `{{name}}` slots the generator fills.
    """

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="quiz_questions")
    key = models.SlugField(max_length=100)
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=QuestionKind.choices)
    prompt_md = models.TextField()
    prompt_html = models.TextField(blank=True, help_text="Rendered at import; empty for parameterized questions.")
    explanation_md = models.TextField()
    explanation_html = models.TextField(blank=True)
    choices = models.JSONField(default=list, blank=True)
    answer = models.JSONField(null=True, blank=True)
    tolerance = models.JSONField(default=dict, blank=True)
    generator = models.CharField(max_length=100, blank=True)
    # A question removed from its file is retired, not deleted, so learners' attempts survive.
    is_active = models.BooleanField(default=True)
    source_path = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lesson", "order", "key"]
        constraints = [models.UniqueConstraint(fields=["lesson", "key"], name="unique_question_key_per_lesson")]

    def __str__(self) -> str:
        return f"{self.lesson.slug}/{self.key}"

    def is_parameterized(self) -> bool:
        return self.kind == QuestionKind.PARAMETERIZED

    def allows_retry(self) -> bool:
        """Only parameterized questions can be answered again (each time with new numbers)."""
        return self.is_parameterized()


class QuizAttempt(models.Model):
    """One graded answer. Bad input is never stored: an attempt always has a score.

    `variant` is the index of the parameterized variant that was answered (0 for
    fixed questions); the numbers are re-derived from it server-side. `feedback`
    keeps what was shown (expected answer, message) so the page can show it again.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts")
    question = models.ForeignKey(QuizQuestion, on_delete=models.CASCADE, related_name="attempts")
    variant = models.PositiveIntegerField(default=0)
    answer_text = models.TextField()
    score = models.FloatField()
    is_correct = models.BooleanField()
    feedback = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["user", "question", "created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["user", "question", "variant"], name="one_attempt_per_variant"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.question} #{self.variant}: {self.score:.2f}"
