"""LTI 1.3: registered platforms, Gradlab's own signing keys, linked identities and courses,
launch state, and the outbox of scores on their way to the platforms' gradebooks.

A platform (one LMS registration: issuer + client id) has deployments; a launch from
an unknown deployment is refused. Gradlab signs what it sends (deep-linking responses,
OAuth2 client assertions) with the current `ToolKey`; the JWKS serves the current and
the previous key so a platform that cached the old key keeps working across a rotation.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, or "" when it has no scheme or host."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


class Platform(models.Model):
    """One registration of Gradlab in an LMS (Canvas, Moodle...): what the LMS admin gave us."""

    name = models.CharField(max_length=200, help_text="For people: e.g. 'University Canvas'.")
    issuer = models.CharField(
        max_length=255, help_text="The platform's issuer (iss), e.g. https://canvas.instructure.com"
    )
    client_id = models.CharField(max_length=255, help_text="The client id the platform gave to Gradlab.")
    auth_login_url = models.URLField(max_length=500, help_text="The platform's OIDC authorization endpoint.")
    auth_token_url = models.URLField(max_length=500, help_text="The platform's OAuth2 token endpoint.")
    auth_audience = models.CharField(
        max_length=500, blank=True, help_text="Audience of the token request when it differs from the token URL."
    )
    jwks_url = models.URLField(max_length=500, help_text="Where the platform publishes its public keys.")
    frame_origins = models.TextField(
        blank=True,
        help_text=(
            "Origins allowed to show Gradlab in an iframe, one per line (e.g. https://school.instructure.com). "
            "The issuer's and the login URL's origins are always allowed."
        ),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "issuer"]
        verbose_name = "platform (LMS registration)"
        verbose_name_plural = "platforms (LMS registrations)"
        constraints = [models.UniqueConstraint(fields=["issuer", "client_id"], name="unique_platform_client")]

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer}, client {self.client_id})"

    def clean(self) -> None:
        """The issuer must be the URL the LMS puts in `iss` (a launch from any other is refused), and each
        frame origin a scheme and host: a line that is not one would be dropped and the LMS frame refused."""
        self.issuer = self.issuer.strip()
        self.frame_origins = "\n".join(line.strip() for line in self.frame_origins.splitlines() if line.strip())
        problems: dict[str, str] = {}
        issuer = urlsplit(self.issuer)
        if issuer.scheme not in ("https", "http") or not issuer.hostname or issuer.query or issuer.fragment:
            problems["issuer"] = (
                f"{self.issuer!r} is not an issuer: give the URL the LMS names as its issuer (iss), "
                "e.g. https://canvas.instructure.com (Canvas) or https://moodle.example.edu (Moodle)."
            )
        for line in self.frame_origins.splitlines():
            parts = urlsplit(line)
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
                problems["frame_origins"] = (
                    f"{line!r} is not an origin: write a scheme and a host, e.g. https://school.instructure.com"
                )
                break
        if problems:
            raise ValidationError(problems)

    def allowed_frame_origins(self) -> list[str]:
        """Origins that may frame Gradlab's pages for this platform (sorted, no duplicates)."""
        origins = {origin_of(self.issuer), origin_of(self.auth_login_url)}
        origins.update(origin_of(line) for line in self.frame_origins.splitlines())
        return sorted(origin for origin in origins if origin)


class Deployment(models.Model):
    """A deployment id of the tool on a platform (Canvas: per account or course; Moodle: per tool)."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(max_length=255)

    class Meta:
        ordering = ["platform", "deployment_id"]
        constraints = [models.UniqueConstraint(fields=["platform", "deployment_id"], name="unique_platform_deployment")]

    def __str__(self) -> str:
        return self.deployment_id


class KeyStatus(models.TextChoices):
    CURRENT = "current", "Current (signs)"
    PREVIOUS = "previous", "Previous (still published)"
    RETIRED = "retired", "Retired"


class ToolKey(models.Model):
    """An RSA key pair of Gradlab. Exactly one is current; `lti.keys.key_rotate` makes a new one."""

    kid = models.CharField(max_length=100, unique=True)
    private_key_pem = models.TextField()
    public_key_pem = models.TextField()
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.CURRENT)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "tool key"
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="current"), name="one_current_tool_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.status})"


class LtiIdentity(models.Model):
    """A Gradlab account linked to one LMS identity: (issuer, subject). Never linked by e-mail."""

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="identities")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities")
    created_at = models.DateTimeField(auto_now_add=True)
    last_launch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="unique_lti_identity")]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer} -> {self.user_id}"


class LaunchData(models.Model):
    """Short-lived state of the OIDC flow and of launches (pylti1p3's launch data storage).

    In the database rather than a per-process cache so that the login and the launch may
    reach different web processes.
    """

    key = models.CharField(max_length=255, unique=True)
    value = models.JSONField(null=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key

    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class UsedNonce(models.Model):
    """A nonce of an id_token that was accepted once; the same nonce again is a replay."""

    issuer = models.CharField(max_length=255)
    nonce = models.CharField(max_length=255)
    used_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "nonce"], name="unique_used_nonce")]

    def __str__(self) -> str:
        return f"{self.nonce} @ {self.issuer}"


class LtiContext(models.Model):
    """An LMS course (context) and the Gradlab course it is linked to, with its service URLs."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    course = models.ForeignKey(
        "courses.Course", on_delete=models.SET_NULL, null=True, blank=True, related_name="lti_contexts"
    )
    deployment_id = models.CharField(max_length=255, blank=True)
    memberships_url = models.URLField(max_length=500, blank=True, help_text="NRPS context memberships URL.")
    lineitems_url = models.URLField(max_length=500, blank=True, help_text="AGS line items URL.")
    last_roster_sync_at = models.DateTimeField(null=True, blank=True)
    last_roster_sync_report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["platform", "title"]
        verbose_name = "LMS course"
        constraints = [models.UniqueConstraint(fields=["platform", "context_id"], name="unique_lti_context")]

    def __str__(self) -> str:
        return self.title or self.context_id


class LinkTarget(models.Model):
    """What a deep link points at. The LMS keeps only `token` (a custom parameter of the link).

    An unguessable token rather than an id, and bound to the platform, so that editing a
    link's custom parameters in the LMS cannot open another course's assignment.
    """

    class Kind(models.TextChoices):
        ASSIGNMENT = "assignment", "Assignment"
        EXERCISE = "exercise", "Exercise"
        QUIZ = "quiz", "Quiz"

    token = models.CharField(max_length=64, unique=True)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="link_targets")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    assignment = models.ForeignKey("courses.Assignment", on_delete=models.CASCADE, null=True, blank=True)
    exercise = models.ForeignKey("grader.Exercise", on_delete=models.CASCADE, null=True, blank=True)
    lesson = models.ForeignKey("lessons.Lesson", on_delete=models.CASCADE, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="assignment", assignment__isnull=False)
                | models.Q(kind="exercise", exercise__isnull=False)
                | models.Q(kind="quiz", lesson__isnull=False),
                name="link_target_kind_matches",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} link {self.token[:8]}…"


class ResourceLink(models.Model):
    """A placement in the LMS (resource_link id) and, for an assignment, its AGS line item."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="resource_links")
    resource_link_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    target = models.ForeignKey(LinkTarget, on_delete=models.SET_NULL, null=True, blank=True, related_name="links")
    lineitem_url = models.URLField(max_length=500, blank=True)
    ags_scopes = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "resource_link_id"], name="unique_resource_link")]

    def __str__(self) -> str:
        return self.title or self.resource_link_id


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    DELIVERED = "delivered", "Delivered"
    SUPERSEDED = "superseded", "Replaced by a newer score before it was sent"
    FAILED = "failed", "Refused by the platform (needs a look)"


class ScoreOutbox(models.Model):
    """A score to send to one line item for one learner.

    `key` is unique per (line item, learner, score version): the score version is the
    time the learner's assignment total was last changed (AssignmentScore.updated_at),
    which is also the AGS `timestamp`, so writing the same change twice makes one row,
    and a platform that receives a retry of the same score sees the same timestamp.
    A row goes PENDING -> SENDING (a guarded claim) -> DELIVERED in single UPDATEs.
    """

    key = models.CharField(max_length=64, unique=True)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="outbox")
    resource_link = models.ForeignKey(ResourceLink, on_delete=models.SET_NULL, null=True, blank=True)
    lineitem_url = models.URLField(max_length=500)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=255, help_text="The learner's LMS user id (sub).")
    assignment = models.ForeignKey("courses.Assignment", on_delete=models.CASCADE, related_name="+")
    score_given = models.FloatField()
    score_maximum = models.FloatField()
    score_time = models.DateTimeField(help_text="The score version, sent as the AGS timestamp.")
    status = models.CharField(max_length=12, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "score outbox row"
        verbose_name_plural = "score outbox"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(fields=["lineitem_url", "user", "score_time"], name="outbox_lineitem_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.score_given}/{self.score_maximum} for {self.subject} ({self.status})"

    @staticmethod
    def make_key(lineitem_url: str, subject: str, score_time_iso: str) -> str:
        return hashlib.sha256(f"{lineitem_url}\n{subject}\n{score_time_iso}".encode()).hexdigest()

    def is_finished(self) -> bool:
        return self.status in {OutboxStatus.DELIVERED, OutboxStatus.SUPERSEDED}
