"""Courses, their staff and learners, assignments with deadlines, and the gradebook's rows.

Scores are cached per (item, learner) in `ItemScore` and per (assignment, learner) in
`AssignmentScore`, recomputed by `courses.services.assignment_score_recompute` from the
submissions and quiz attempts; the cache is what the gradebook and the API read. Every
change of a learner's points is recorded in `GradeChange` (the audit log).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in a lecture hall
JOIN_CODE_LENGTH = 8


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class Course(models.Model):
    """A class run on Gradlab. Learners join with `join_code` or the invite link (`invite_token`).

    A course whose `ended_at` has passed is ended: nobody joins any more and its
    assignments take no new work into the gradebook; staff still read everything.
    """

    slug = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=200)
    term = models.CharField(max_length=60, blank=True, help_text="e.g. Spring 2027")
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code)
    invite_token = models.CharField(max_length=64, unique=True, default=new_invite_token)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "slug"]

    def __str__(self) -> str:
        return f"{self.title} ({self.term})" if self.term else self.title

    def get_absolute_url(self) -> str:
        return reverse("course_detail", args=[self.slug])

    def is_ended(self, now: datetime | None = None) -> bool:
        return self.ended_at is not None and self.ended_at <= (now or timezone.now())


class CourseRole(models.TextChoices):
    OWNER = "owner", "Owner"
    INSTRUCTOR = "instructor", "Instructor"
    TEACHING_ASSISTANT = "teaching_assistant", "Teaching assistant"


class CourseStaff(models.Model):
    """A member of a course's staff. Owners and instructors manage the course; TAs grade.

    Every role sees the course's learners, submissions and gradebook, and may override
    scores and grant extensions; only owners and instructors edit the course, its
    assignments and its staff, and start regrades.
    """

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="course_roles")
    role = models.CharField(max_length=20, choices=CourseRole.choices)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="unique_course_staff")]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.course.slug})"

    def can_manage(self) -> bool:
        return self.role in {CourseRole.OWNER, CourseRole.INSTRUCTOR}


class EnrollmentSource(models.TextChoices):
    JOIN_CODE = "join_code", "Join code"
    INVITE_LINK = "invite_link", "Invite link"
    ROSTER = "roster", "Roster upload"
    STAFF = "staff", "Added by staff"


class Enrollment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    source = models.CharField(max_length=20, choices=EnrollmentSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="unique_enrollment")]
        indexes = [models.Index(fields=["user", "course"], name="enrollment_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} in {self.course.slug}"


class RosterInvitation(models.Model):
    """An address from a roster upload that has no account yet.

    Whoever signs up (or logs in) through the invitation's link with this address is
    enrolled; `accepted_by` records who did.
    """

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    token = models.CharField(max_length=64, unique=True, default=new_invite_token)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "email"], name="unique_invitation_email")]

    def __str__(self) -> str:
        return f"{self.email} -> {self.course.slug}"


class LatePolicy(models.TextChoices):
    """What a submission after the (learner's) due time is worth."""

    NONE = "none", "Late work counts in full (flagged late)"
    PENALTY_PER_DAY = "penalty_per_day", "A penalty per started day late"
    HARD_CLOSE = "hard_close", "Nothing counts after the due time"


class Counting(models.TextChoices):
    BEST = "best", "Best submission"
    LAST = "last", "Last submission"


class Assignment(models.Model):
    """A set of items with points, open and due times, a late policy and a counting rule.

    Work done before `opens_at` does not count. With LatePolicy.PENALTY_PER_DAY the
    points of late work lose `late_penalty_percent` per started day (never below 0).
    Each hint of an exercise revealed before the counting submission takes off
    `hint_penalty_percent` of the item's points (never below 0).
    """

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assignments")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    opens_at = models.DateTimeField()
    due_at = models.DateTimeField()
    late_policy = models.CharField(max_length=20, choices=LatePolicy.choices, default=LatePolicy.NONE)
    late_penalty_percent = models.FloatField(default=0.0, help_text="Per started day late (penalty policy only)")
    counting = models.CharField(max_length=10, choices=Counting.choices, default=Counting.BEST)
    # What a hint costs on an exercise item: this percent of the item's points per hint the learner
    # revealed before the counting submission (never below 0 points); 0 = hints are free.
    hint_penalty_percent = models.FloatField(
        default=0.0, help_text="Percent of an exercise item's points per hint revealed before the counted submission"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["course", "due_at"], name="assignment_course_due_idx")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("assignment_detail", args=[self.course.slug, self.pk])

    def max_points(self) -> float:
        return float(sum(item.points for item in self.items.all()))

    def is_open(self, now: datetime | None = None) -> bool:
        return self.opens_at <= (now or timezone.now())

    def late_factor(self, submitted_at: datetime, due_at: datetime) -> float | None:
        """The fraction of its points work done at `submitted_at` keeps, or None when it does not count."""
        if submitted_at < self.opens_at:
            return None
        if submitted_at <= due_at:
            return 1.0
        if self.late_policy == LatePolicy.HARD_CLOSE:
            return None
        if self.late_policy == LatePolicy.PENALTY_PER_DAY:
            days = late_days(submitted_at, due_at)
            return max(0.0, 1.0 - days * self.late_penalty_percent / 100.0)
        return 1.0


def late_days(submitted_at: datetime, due_at: datetime) -> int:
    """Started days late (1 s late is one day); 0 when on time."""
    if submitted_at <= due_at:
        return 0
    late = submitted_at - due_at
    return int(late // timedelta(days=1)) + (1 if late % timedelta(days=1) else 0)


class ItemKind(models.TextChoices):
    EXERCISE = "exercise", "Exercise"
    QUIZ = "quiz", "Quiz"


class AssignmentItem(models.Model):
    """An exercise, or a lesson's quiz (all its active questions, or the chosen `questions`)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="items")
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    exercise = models.ForeignKey(
        "grader.Exercise", on_delete=models.PROTECT, null=True, blank=True, related_name="assignment_items"
    )
    lesson = models.ForeignKey(
        "lessons.Lesson", on_delete=models.PROTECT, null=True, blank=True, related_name="assignment_items"
    )
    questions = models.ManyToManyField("quizzes.QuizQuestion", blank=True, related_name="assignment_items")
    points = models.FloatField(default=1.0)

    class Meta:
        ordering = ["assignment", "order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="exercise", exercise__isnull=False, lesson__isnull=True))
                | (models.Q(kind="quiz", lesson__isnull=False, exercise__isnull=True)),
                name="item_kind_matches_target",
            ),
            models.CheckConstraint(condition=models.Q(points__gte=0), name="item_points_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.assignment}: {self.label()}"

    def slug(self) -> str:
        if self.kind == ItemKind.EXERCISE and self.exercise is not None:
            return self.exercise.slug
        return self.lesson.slug if self.lesson is not None else ""

    def label(self) -> str:
        if self.kind == ItemKind.EXERCISE and self.exercise is not None:
            return self.exercise.title
        return f"Quiz: {self.lesson.title}" if self.lesson is not None else "?"


class Extension(models.Model):
    """A later due time for one learner on one assignment."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="extensions")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extensions")
    due_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "learner"], name="unique_extension")]

    def __str__(self) -> str:
        return f"{self.learner} until {self.due_at:%Y-%m-%d %H:%M} on {self.assignment}"


class ItemScore(models.Model):
    """A learner's points on one item, as counted (cached; recomputed by the services).

    `computed_points` follows from the work (counting rule, late policy); an override
    replaces it in `points` until it is cleared. `counted_at` is when the counting
    submission or answer was made; `submission` is the counting exercise submission.
    """

    item = models.ForeignKey(AssignmentItem, on_delete=models.CASCADE, related_name="scores")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="item_scores")
    computed_points = models.FloatField(null=True, blank=True)
    override_points = models.FloatField(null=True, blank=True)
    override_reason = models.CharField(max_length=500, blank=True)
    points = models.FloatField(null=True, blank=True)
    counted_at = models.DateTimeField(null=True, blank=True)
    submission = models.ForeignKey(
        "grader.Submission", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    is_late = models.BooleanField(default=False)
    late_days = models.PositiveIntegerField(default=0)
    # Hints of the item's exercise revealed before the counting submission (charged when the
    # assignment has a hint penalty: `hint_penalty` points taken off), and revealed at all.
    hints_charged = models.PositiveSmallIntegerField(default=0)
    hint_penalty = models.FloatField(default=0.0)
    hints_seen = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "learner"], name="unique_item_score")]

    def __str__(self) -> str:
        return f"{self.learner_id} on item {self.item_id}: {self.points}"

    def is_overridden(self) -> bool:
        return self.override_points is not None


class AssignmentScore(models.Model):
    """A learner's total on an assignment (the sum of the item points), cached."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="totals")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignment_scores")
    score = models.FloatField(default=0.0)
    max_score = models.FloatField(default=0.0)
    is_late = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "learner"], name="unique_assignment_score")]

    def __str__(self) -> str:
        return f"{self.learner_id} on {self.assignment_id}: {self.score}/{self.max_score}"


class GradeChangeCause(models.TextChoices):
    SUBMISSION = "submission", "Graded submission"
    QUIZ_ANSWER = "quiz_answer", "Quiz answer"
    OVERRIDE = "override", "Override"
    OVERRIDE_CLEARED = "override_cleared", "Override cleared"
    EXTENSION = "extension", "Extension"
    HINT = "hint", "Hint revealed"
    REGRADE = "regrade", "Regrade"
    RECOMPUTE = "recompute", "Recomputed"


class GradeChange(models.Model):
    """The audit log: every change of a learner's points on an item (who, when, old, new, why)."""

    item = models.ForeignKey(AssignmentItem, on_delete=models.CASCADE, related_name="grade_changes")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grade_changes")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cause = models.CharField(max_length=20, choices=GradeChangeCause.choices)
    old_points = models.FloatField(null=True, blank=True)
    new_points = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["item", "learner", "created_at"], name="gradechange_item_learner_idx")]

    def __str__(self) -> str:
        return f"{self.learner_id} item {self.item_id}: {self.old_points} -> {self.new_points} ({self.cause})"


class RegradeMode(models.TextChoices):
    PREVIEW = "preview", "Dry run"
    APPLY = "apply", "Apply"


class RegradeStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RegradeJob(models.Model):
    """Regrading the past exercise submissions of an assignment with the exercises as they are now.

    A preview stores the new results without counting them; an apply job's results
    count (the newest applied result of a submission wins). Progress is `done` of
    `total`; `summary` holds what changed once finished.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="regrades")
    mode = models.CharField(max_length=10, choices=RegradeMode.choices)
    status = models.CharField(max_length=10, choices=RegradeStatus.choices, default=RegradeStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} of {self.assignment} ({self.status}, {self.done}/{self.total})"

    def is_finished(self) -> bool:
        return self.status in {RegradeStatus.DONE, RegradeStatus.FAILED}


class SubmissionRegrade(models.Model):
    """One submission graded again: the old verdict and score and the new result, side by side.

    The submission row itself is never rewritten, so the original result stays as it was.
    """

    job = models.ForeignKey(RegradeJob, on_delete=models.CASCADE, related_name="results")
    submission = models.ForeignKey("grader.Submission", on_delete=models.CASCADE, related_name="regrades")
    status = models.CharField(max_length=10, choices=RegradeStatus.choices, default=RegradeStatus.QUEUED)
    old_verdict = models.CharField(max_length=30, blank=True)
    old_score = models.FloatField(null=True, blank=True)
    new_verdict = models.CharField(max_length=30, blank=True)
    new_score = models.FloatField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "submission"], name="unique_regrade_submission")]
        indexes = [models.Index(fields=["submission", "finished_at"], name="regrade_submission_idx")]

    def __str__(self) -> str:
        return f"{self.submission_id}: {self.old_verdict} -> {self.new_verdict}"
