"""Quiz questions of the lessons and learners' graded answers."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from lessons.models import Lesson


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

    def is_choice(self) -> bool:
        return self.kind in (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE)


DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_CREDITS = [1.0, 0.5, 0.25]
MAX_ATTEMPTS_LIMIT = 10


def policy_problem(max_attempts: object, credits: object) -> str | None:
    """Why (`max_attempts`, `credits`) is not a valid attempt policy, in one sentence; None when it is.

    Shared by the quiz file loader (quizzes/content.py) and the admin (QuizPolicy.clean)."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        return f"the number of attempts must be a whole number from 1 to {MAX_ATTEMPTS_LIMIT}, not {max_attempts!r}"
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        return f"the number of attempts must be from 1 to {MAX_ATTEMPTS_LIMIT}, not {max_attempts}"
    if not isinstance(credits, list) or not credits:
        return "the credits must be a list of numbers from 0 to 1, one per attempt, e.g. [1, 0.5, 0.25]"
    for number, credit in enumerate(credits, start=1):
        if isinstance(credit, bool) or not isinstance(credit, int | float) or not 0 <= credit <= 1:
            return f"the credit of attempt {number} must be a number from 0 to 1, not {credit!r}"
    if credits[0] <= 0:
        return "the first attempt's credit must be more than 0"
    if len(credits) > max_attempts:
        return f"{len(credits)} credits are listed for {max_attempts} attempt(s): give at most one per attempt"
    for number in range(1, len(credits)):
        if credits[number] > credits[number - 1]:
            return (
                f"the credit of attempt {number + 1} ({credits[number]}) is more than that of attempt {number} "
                f"({credits[number - 1]}): credits must not increase"
            )
    return None


def default_credits() -> list[float]:
    return list(DEFAULT_CREDITS)


class QuizPolicy(models.Model):
    """How many attempts a lesson's quiz gives each fixed question, and what each attempt can earn.

    A fixed question (choice, number, matrix) can be answered up to `max_attempts` times
    until it is right; attempt n (1-based) earns its grade times `credits[n - 1]` (the last
    credit repeats). A lesson without a row uses the defaults (3 attempts, 1, 1/2, 1/4).
    Parameterized questions are not limited: every attempt has new numbers.
    """

    lesson = models.OneToOneField(Lesson, on_delete=models.CASCADE, related_name="quiz_policy")
    max_attempts = models.PositiveSmallIntegerField(default=DEFAULT_MAX_ATTEMPTS)
    credits = models.JSONField(default=default_credits, help_text="Credit of attempt 1, 2, ... e.g. [1, 0.5, 0.25]")

    class Meta:
        verbose_name_plural = "quiz policies"

    def __str__(self) -> str:
        return f"{self.lesson.slug}: {self.max_attempts} attempts"

    def clean(self) -> None:
        problem = policy_problem(self.max_attempts, self.credits)
        if problem:
            raise ValidationError(problem[0].upper() + problem[1:] + ".")

    @property
    def attempt_credits(self) -> list[float]:
        """The credit of each allowed attempt in order (the last listed credit repeats)."""
        return [self.credit(index) for index in range(self.max_attempts)]

    def credit(self, attempt_index: int) -> float:
        """The credit of attempt `attempt_index` (0 for the first)."""
        credits = self.credits or [1.0]
        return float(credits[min(attempt_index, len(credits) - 1)])


class QuizAttempt(models.Model):
    """One graded answer. Bad input is never stored: an attempt always has a score.

    `variant` is the attempt's number for this learner and question (0 for the first):
    for a parameterized question it also selects the numbers, re-derived server-side.
    `feedback` keeps what was shown (expected answer, message) so the page can show it
    again. `choice_order` is the order the choices were shown in (choice questions).
    `score` is the grade times the attempt's credit (QuizPolicy).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts")
    question = models.ForeignKey(QuizQuestion, on_delete=models.CASCADE, related_name="attempts")
    variant = models.PositiveIntegerField(default=0)
    answer_text = models.TextField()
    score = models.FloatField()
    is_correct = models.BooleanField()
    feedback = models.JSONField(default=dict, blank=True)
    choice_order = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["user", "question", "created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["user", "question", "variant"], name="one_attempt_per_variant"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.question} #{self.variant}: {self.score:.2f}"
