"""Exercises, their known-wrong variants, and learners' submissions.

The Submission row is the source of truth for a grading: the Redis message only
wakes a worker up (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from grader.diagnosis import Diagnosis
from grader.result import GradeResult
from grader.verdicts import Isolation, Stage, Verdict

DIAGNOSIS_OUTPUT_MAX = 200
DIAGNOSIS_MISTAKE_MAX = 100


def _choices(enum: type[Verdict] | type[Stage] | type[Isolation]) -> list[tuple[str, str]]:
    return [(member.value, member.label if hasattr(member, "label") else member.value) for member in enum]


class ValidationStatus(models.TextChoices):
    """Where the validation of an exercise saved in the admin stands (grader/authoring.py, grader/validation.py)."""

    UNKNOWN = "unknown", "Not validated"
    PENDING = "pending", "Validating"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"
    ERROR = "error", "The grader could not run"
    NOT_QUEUED = "not_queued", "Not queued"


class Exercise(models.Model):
    """An exercise from `content/exercises/<slug>/` (or authored in the admin).

    `spec` holds the grading specification (kind, function, cases, tolerances,
    limits, allowed imports, training run); the reference solution never leaves
    the trusted side.
    """

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    lesson = models.ForeignKey(
        "lessons.Lesson", on_delete=models.SET_NULL, null=True, blank=True, related_name="exercises"
    )
    order = models.PositiveIntegerField(default=0)
    difficulty = models.CharField(max_length=10, default="MEDIUM")
    function_name = models.CharField(max_length=100)
    signature = models.CharField(max_length=300, help_text="e.g. linear_backward(dout, x, w, b) -> (dx, dw, db)")
    statement_md = models.TextField()
    statement_html = models.TextField(blank=True)
    starter_code = models.TextField()
    reference_solution = models.TextField()
    spec = models.JSONField(default=dict)
    # The hint ladder: Markdown texts revealed one at a time on request (idea, shapes and chain
    # rule, formula); empty when the exercise has none. Each reveal is a HintReveal row.
    hints = models.JSONField(default=list, blank=True)
    # Shown next to the learner's accepted code, never before Accepted (Markdown).
    solution_explanation_md = models.TextField(blank=True)
    # Outcome of grading the reference and every known-wrong variant (check_content / admin save).
    validation_status = models.CharField(
        max_length=20, choices=ValidationStatus.choices, default=ValidationStatus.UNKNOWN
    )
    validation_report = models.JSONField(default=dict, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    source_path = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    # An exercise whose folder was removed is retired, not deleted: its submissions survive,
    # but it takes no new ones.
    is_active = models.BooleanField(default=True)
    # Set when a failed validation took a live exercise offline (is_active = False); a later
    # passing validation puts it back only then, so an exercise its author retired stays retired.
    withdrawn_by_validation = models.BooleanField(default=False)
    # What the verdicts depend on (spec, reference, known-wrong variants), digested by
    # grader.grading_version, and when it last changed: submissions graded before that moment
    # may deserve a regrade.
    grading_digest = models.CharField(max_length=64, blank=True, editable=False)
    grading_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title


class HintReveal(models.Model):
    """A learner asked to see hint `level` (1 = the first) of an exercise; recorded once per level.

    Staff read these (admin, submission page); a course assignment may charge for them
    (grader.selectors.hints_revealed counts them, optionally up to a moment).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hint_reveals")
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="hint_reveals")
    level = models.PositiveSmallIntegerField()
    revealed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "exercise", "level"]
        constraints = [models.UniqueConstraint(fields=["user", "exercise", "level"], name="unique_hint_reveal")]

    def __str__(self) -> str:
        return f"{self.user} saw hint {self.level} of {self.exercise.slug}"


class KnownWrongVariant(models.Model):
    """A wrong solution kept with its exercise; grading must reject it with `mistake`."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="wrong_variants")
    name = models.SlugField(max_length=100)
    mistake = models.CharField(max_length=60, help_text="The diagnosis the grader must give (a Mistake code).")
    description = models.TextField(blank=True)
    code = models.TextField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["exercise", "name"], name="unique_variant_name")]

    def __str__(self) -> str:
        return f"{self.exercise.slug}/{self.name}"


class SubmissionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    GRADED = "graded", "Graded"
    FAILED = "failed", "Failed"


class SubmissionQuerySet(models.QuerySet["Submission"]):
    def held(self, submission_id: int, claim: int) -> SubmissionQuerySet:
        """The submission, if it is still RUNNING under claim number `claim`.

        Every write a worker makes while grading goes through this filter, so a worker whose claim
        went stale (the sweeper gave the row to another) can no longer change the row.
        """
        return self.filter(pk=submission_id, status=SubmissionStatus.RUNNING, claim_count=claim)


class Submission(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="submissions")
    code = models.TextField()
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=SubmissionStatus.choices, default=SubmissionStatus.QUEUED)
    stage = models.CharField(max_length=10, choices=_choices(Stage), default=Stage.QUEUED.value)
    verdict = models.CharField(max_length=30, choices=_choices(Verdict), blank=True)
    score = models.FloatField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    isolation = models.CharField(max_length=30, choices=_choices(Isolation), blank=True)
    # How often a worker claimed this row (1 in normal life; > 1 only after a sweep re-grade).
    claim_count = models.PositiveIntegerField(default=0)
    # How often a verdict was written: 1 for every finished submission, whatever happened on the way.
    graded_count = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    # Phase timestamps (dashboard and benchmarks read these).
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    sandbox_ready_at = models.DateTimeField(null=True, blank=True)
    checks_finished_at = models.DateTimeField(null=True, blank=True)
    training_finished_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Per-check timings, {check name: seconds}, as reported by the engine.
    phase_times = models.JSONField(default=dict, blank=True)

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # A learner's history of one exercise (read backwards for "latest first"), and
            # with the verdict the dashboard's attempts-to-first-accept, index-only.
            models.Index(fields=["user", "exercise", "created_at", "verdict"], name="submission_user_ex_time_idx"),
            models.Index(fields=["exercise", "verdict", "created_at"], name="submission_ex_verdict_idx"),
            # Everything the dashboard aggregates over a window, so PostgreSQL answers with
            # index-only scans instead of reading the wide rows (code, result JSON).
            # Key columns rather than INCLUDE: SQLite has no INCLUDE but covers with these too.
            models.Index(
                fields=[
                    "created_at",
                    "exercise",
                    "verdict",
                    "user",
                    "enqueued_at",
                    "started_at",
                    "sandbox_ready_at",
                    "checks_finished_at",
                    "training_finished_at",
                    "finished_at",
                ],
                name="submission_dashboard_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Submission {self.pk} ({self.exercise_id}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("submission_detail", args=[self.pk])

    def is_finished(self) -> bool:
        return self.status in {SubmissionStatus.GRADED, SubmissionStatus.FAILED}

    def is_accepted(self) -> bool:
        return self.verdict == Verdict.ACCEPTED.value

    def grade_result(self) -> GradeResult:
        """The stored result as the typed GradeResult (grader/result.py; an unfinished one reads as empty)."""
        return GradeResult.from_json(self.result)

    def is_waiting_for_broker(self) -> bool:
        """True when the wake-up message could not be sent (Redis was down): the sweeper sends it later."""
        return self.status == SubmissionStatus.QUEUED and self.enqueued_at is None


def diagnosis_pairs(diagnoses: Iterable[Diagnosis]) -> set[tuple[str, str]]:
    """The distinct (output, mistake) pairs of a result's diagnoses, cut to the SubmissionDiagnosis column sizes."""
    return {(d.output[:DIAGNOSIS_OUTPUT_MAX], d.mistake.value[:DIAGNOSIS_MISTAKE_MAX]) for d in diagnoses}


class SubmissionDiagnosis(models.Model):
    """One (output, mistake) diagnosis of a wrong answer, copied out of `Submission.result`.

    Written with the verdict (SubmissionDiagnosis.store_for, from submission_finish)
    so the dashboard counts what learners get wrong from a narrow table instead of
    expanding every submission's result JSON. `exercise` and `created_at` repeat the
    submission's. Only submissions whose verdict is wrong_answer have rows.
    """

    # The unique constraint's index (submission first) serves lookups by submission.
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="diagnoses", db_index=False)
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField()
    output = models.CharField(max_length=DIAGNOSIS_OUTPUT_MAX, blank=True)
    mistake = models.CharField(max_length=DIAGNOSIS_MISTAKE_MAX)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["submission", "output", "mistake"], name="unique_submission_diagnosis")
        ]
        indexes = [models.Index(fields=["created_at", "exercise", "output", "mistake"], name="diagnosis_dashboard_idx")]

    def __str__(self) -> str:
        return f"{self.submission_id}: {self.output} {self.mistake}"

    @staticmethod
    def store_for(submission_id: int, verdict: str, result: GradeResult | Mapping[str, Any]) -> int:
        """Replace the diagnosis rows of a submission by those of this verdict and result; return how many.

        Call it wherever a verdict and result are stored (in the same transaction). A result JSON
        is read as GradeResult.from_json reads it.
        """
        SubmissionDiagnosis.objects.filter(submission_id=submission_id).delete()
        if verdict != Verdict.WRONG_ANSWER.value:
            return 0
        pairs = diagnosis_pairs(GradeResult.coerce(result).diagnosis)
        if not pairs:
            return 0
        row = Submission.objects.filter(pk=submission_id).values_list("exercise_id", "created_at").first()
        if row is None:
            return 0
        exercise_id, created_at = row
        made = SubmissionDiagnosis.objects.bulk_create(
            [
                SubmissionDiagnosis(
                    submission_id=submission_id, exercise_id=exercise_id, created_at=created_at, output=o, mistake=m
                )
                for o, m in sorted(pairs)
            ]
        )
        return len(made)


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only a SHA-256 of the token is stored.

    `prefix` (the token's first characters) lets a user tell their tokens apart
    without the database ever holding the secret.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # A token stops working at `expires_at` (settings.API_TOKEN_DAYS after creation) or once revoked
    # (command, admin, or the user's password changing: grader/auth.py).
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.user})"

    @property
    def state(self) -> str:
        """`active`, `expired` or `revoked`."""
        from django.utils import timezone

        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class ExampleRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExampleRun(models.Model):
    """A "Run on an example" request: the learner's code called on one fixed small case (not a submission).

    `result` is grader.example_run.run_example's report (or {"message"} when it could not run).
    Rows also count against the learner's own per-minute limit (GRADER_EXAMPLE_RUNS_PER_MINUTE).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="example_runs")
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="example_runs")
    code = models.TextField()
    status = models.CharField(max_length=10, choices=ExampleRunStatus.choices, default=ExampleRunStatus.QUEUED)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="example_run_user_time_idx")]

    def __str__(self) -> str:
        return f"ExampleRun {self.pk} ({self.exercise_id}, {self.status})"

    def is_finished(self) -> bool:
        return self.status in {ExampleRunStatus.DONE, ExampleRunStatus.FAILED}
