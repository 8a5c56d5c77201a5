"""Exercises, their known-wrong variants, and learners' submissions.

The Submission row is the source of truth for a grading: the Redis message only
wakes a worker up (DESIGN.md, "Data flow").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from grader.verdicts import Isolation, Stage, Verdict

DIAGNOSIS_OUTPUT_MAX = 200
DIAGNOSIS_MISTAKE_MAX = 100


def _choices(enum: type[Verdict] | type[Stage] | type[Isolation]) -> list[tuple[str, str]]:
    return [(member.value, member.label if hasattr(member, "label") else member.value) for member in enum]


class Exercise(models.Model):
    """An exercise from `content/exercises/<slug>/` (or authored in the admin).

    `spec` holds the grading specification (kind, function, cases, tolerances,
    limits, allowed imports, training run); the reference solution never leaves
    the trusted side.
    """

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    lesson = models.ForeignKey(
        "quizzes.Lesson", on_delete=models.SET_NULL, null=True, blank=True, related_name="exercises"
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
    # Outcome of grading the reference and every known-wrong variant (check_content / admin save).
    validation_status = models.CharField(max_length=20, default="unknown")
    validation_report = models.JSONField(default=dict, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    source_path = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    # An exercise whose folder was removed is retired, not deleted: its submissions survive,
    # but it takes no new ones.
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title


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

    def is_waiting_for_broker(self) -> bool:
        """True when the wake-up message could not be sent (Redis was down): the sweeper sends it later."""
        return self.status == SubmissionStatus.QUEUED and self.enqueued_at is None


def diagnosis_pairs(result: object) -> set[tuple[str, str]]:
    """The distinct (output, mistake) pairs of a result's `diagnosis` list.

    An entry without an output counts as output "", without a mistake as "unknown";
    an entry that is not an object counts as ("", "unknown"); a `diagnosis` that is
    not a list has no pairs. Values are cut to the SubmissionDiagnosis column sizes.
    """
    entries = result.get("diagnosis") if isinstance(result, dict) else None
    if not isinstance(entries, list):
        return set()
    pairs = set()
    for entry in entries:
        item = entry if isinstance(entry, dict) else {}
        output, mistake = item.get("output"), item.get("mistake")
        pairs.add(
            (
                ("" if output is None else str(output))[:DIAGNOSIS_OUTPUT_MAX],
                ("unknown" if mistake is None else str(mistake))[:DIAGNOSIS_MISTAKE_MAX],
            )
        )
    return pairs


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
    def store_for(submission_id: int, verdict: str, result: object) -> int:
        """Replace the diagnosis rows of a submission by those of this verdict and result; return how many.

        Call it wherever a verdict and result are stored (in the same transaction).
        """
        SubmissionDiagnosis.objects.filter(submission_id=submission_id).delete()
        if verdict != Verdict.WRONG_ANSWER.value:
            return 0
        pairs = diagnosis_pairs(result)
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

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.user})"
