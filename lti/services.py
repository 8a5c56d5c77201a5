"""What a valid launch does, and the LTI services Gradlab calls on the platforms.

- `launch_account`: the Gradlab account of an LMS identity (issuer, subject), made on
  first launch; never matched by e-mail, which the LMS controls.
- `launch_enroll`: LMS roles -> course role (owner/instructor/teaching assistant stay
  staff, learners are enrolled).
- `outbox_write_for`: a learner's assignment total changed -> one ScoreOutbox row per
  linked line item, in the caller's transaction, and a task to send it after commit.
- `score_send`: the task's body: claim, send, mark delivered (or reschedule).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.text import slugify
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.roles import DesignerRole, StudentRole, TeacherRole, TeachingAssistantRole
from pylti1p3.service_connector import ServiceConnector

from courses.models import (
    AssignmentScore,
    Course,
    CourseRole,
    CourseStaff,
    EnrollmentSource,
)
from courses.services import enrollment_ensure
from gradlab.tasks_send import task_send
from lti.launch import AGS_ENDPOINT, CONTEXT, NRPS, RESOURCE_LINK, ROLES
from lti.models import (
    LinkTarget,
    LtiContext,
    LtiIdentity,
    OutboxStatus,
    Platform,
    ResourceLink,
    ScoreOutbox,
)
from lti.tool_config import registration_for

logger = logging.getLogger(__name__)

LEARNER = "learner"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SERVICE_TIMEOUT_S = 15
# Access tokens are kept this long (LMSs issue them for an hour; a 401 drops one early).
TOKEN_CACHE_S = 50 * 60


# --- Roles ----------------------------------------------------------------------


def course_role_for(roles: list[str]) -> str | None:
    """The course role of a list of LTI role URIs: CourseRole value, LEARNER, or None (no access).

    Teaching assistants are checked before instructors (their URI is a sub-role of
    Instructor); content developers count as instructors; mentors and observers get none.
    """
    body = {ROLES: [str(role) for role in roles]}
    if TeachingAssistantRole(body).check():
        return CourseRole.TEACHING_ASSISTANT.value
    if TeacherRole(body).check() or DesignerRole(body).check():
        return CourseRole.INSTRUCTOR.value
    if StudentRole(body).check():
        return LEARNER
    return None


def is_staff_role(role: str | None) -> bool:
    return role in {CourseRole.OWNER, CourseRole.INSTRUCTOR, CourseRole.TEACHING_ASSISTANT}


# --- Accounts and enrollments ---------------------------------------------------


def _username_for(issuer: str, subject: str) -> str:
    return "lti-" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:16]


def launch_account(platform: Platform, subject: str, claims: dict[str, Any]) -> User:
    """The Gradlab account linked to (platform issuer, subject), created on first sight.

    Name and e-mail are refreshed from the claims when present. The account has no
    usable password: it signs in through the LMS only.
    """
    identity = LtiIdentity.objects.select_related("user").filter(issuer=platform.issuer, subject=subject).first()
    if identity is None:
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=_username_for(platform.issuer, subject))
                user.set_unusable_password()
                user.save()
                identity = LtiIdentity.objects.create(
                    issuer=platform.issuer, subject=subject, platform=platform, user=user
                )
        except IntegrityError:  # two first launches at once: the other one made it
            identity = LtiIdentity.objects.select_related("user").get(issuer=platform.issuer, subject=subject)
    user = identity.user
    changed = []
    for field_name, claim in (("first_name", "given_name"), ("last_name", "family_name"), ("email", "email")):
        value = str(claims.get(claim) or "")[:150]
        if value and getattr(user, field_name) != value:
            setattr(user, field_name, value)
            changed.append(field_name)
    if changed:
        user.save(update_fields=changed)
    LtiIdentity.objects.filter(pk=identity.pk).update(last_launch_at=timezone.now())
    return user


def launch_enroll(course: Course, user: User, role: str) -> None:
    """Give `user` the course role of their LMS roles in `course`.

    An owner stays owner. A learner launch takes away an instructor or TA role
    (the LMS demoted them); a staff launch keeps any learner enrollment.
    """
    staff = CourseStaff.objects.filter(course=course, user=user).first()
    if is_staff_role(role):
        if staff is None:
            try:
                with transaction.atomic():
                    CourseStaff.objects.create(course=course, user=user, role=role)
            except IntegrityError:
                pass
        elif staff.role not in {CourseRole.OWNER, role}:
            CourseStaff.objects.filter(pk=staff.pk).update(role=role)
        return
    if staff is not None and staff.role != CourseRole.OWNER:
        staff.delete()
    try:
        # Work this account did before (in another LMS course, or on its own) is counted, and those
        # scores go to the LMS like any other.
        enrollment_ensure(course, user.pk, EnrollmentSource.ROSTER)
    except IntegrityError:
        pass  # enrolled at the same moment by another launch, which counts the work


def _unique_course_slug(title: str) -> str:
    base = (slugify(title) or "lms-course")[:48]
    slug = base
    while Course.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def context_link(platform: Platform, claims: dict[str, Any]) -> LtiContext | None:
    """The LtiContext of the launch (made on first sight), with its title and service URLs refreshed."""
    context_claim = claims.get(CONTEXT) or {}
    context_id = str(context_claim.get("id") or "") if isinstance(context_claim, dict) else ""
    if not context_id:
        return None
    title = str(context_claim.get("title") or context_claim.get("label") or "")[:255]
    context, _ = LtiContext.objects.get_or_create(platform=platform, context_id=context_id, defaults={"title": title})
    updates: dict[str, Any] = {}
    nrps = claims.get(NRPS)
    if isinstance(nrps, dict) and nrps.get("context_memberships_url"):
        updates["memberships_url"] = str(nrps["context_memberships_url"])[:500]
    ags = claims.get(AGS_ENDPOINT)
    if isinstance(ags, dict) and ags.get("lineitems"):
        updates["lineitems_url"] = str(ags["lineitems"])[:500]
    deployment = claims.get("https://purl.imsglobal.org/spec/lti/claim/deployment_id")
    if deployment:
        updates["deployment_id"] = str(deployment)[:255]
    if title and title != context.title:
        updates["title"] = title
    if updates:
        for name, value in updates.items():
            setattr(context, name, value)
        context.save(update_fields=list(updates))
    return context


def context_course_ensure(context: LtiContext, user: User) -> Course:
    """The context's Gradlab course; made (owned by `user`, a staff member in the LMS) when it has none."""
    if context.course is not None:
        return context.course
    with transaction.atomic():
        course = Course.objects.create(
            slug=_unique_course_slug(context.title or context.context_id),
            title=context.title or "LMS course",
            created_by=user,
        )
        CourseStaff.objects.create(course=course, user=user, role=CourseRole.OWNER)
        LtiContext.objects.filter(pk=context.pk).update(course=course)
    context.course = course
    return course


def resource_link_record(context: LtiContext, claims: dict[str, Any]) -> ResourceLink:
    """The ResourceLink of a resource-link launch: bound to its target, with its AGS line item."""
    link_claim = claims.get(RESOURCE_LINK) or {}
    link, _ = ResourceLink.objects.get_or_create(context=context, resource_link_id=str(link_claim["id"])[:255])
    updates: dict[str, Any] = {}
    title = str(link_claim.get("title") or "")[:255]
    if title and title != link.title:
        updates["title"] = title
    custom = claims.get("https://purl.imsglobal.org/spec/lti/claim/custom") or {}
    token = str(custom.get("gradlab_link") or "") if isinstance(custom, dict) else ""
    if token:
        target = LinkTarget.objects.filter(token=token, platform=context.platform).first()
        if target is not None and link.target_id != target.pk:
            updates["target"] = target
    ags = claims.get(AGS_ENDPOINT)
    if isinstance(ags, dict):
        if ags.get("lineitem") and ags["lineitem"] != link.lineitem_url:
            updates["lineitem_url"] = str(ags["lineitem"])[:500]
        scopes = [str(scope) for scope in ags.get("scope") or []]
        if scopes != link.ags_scopes:
            updates["ags_scopes"] = scopes
    if updates:
        for name, value in updates.items():
            setattr(link, name, value)
        link.save(update_fields=[*updates, "updated_at"])
    return link


def link_target_create(platform: Platform, kind: str, obj: Any, user: User) -> LinkTarget:
    """A new deep-link target for an assignment, an exercise or a lesson's quiz."""
    return LinkTarget.objects.create(
        token=secrets.token_urlsafe(24), platform=platform, kind=kind, created_by=user, **{_target_field(kind): obj}
    )


def _target_field(kind: str) -> str:
    return {"assignment": "assignment", "exercise": "exercise", "quiz": "lesson"}[kind]


# --- Scores: outbox and delivery ------------------------------------------------


def outbox_write_for(assignment_id: int, learner_id: int) -> list[ScoreOutbox]:
    """Write the learner's current assignment total to the outbox of every linked line item.

    Runs in the caller's transaction (joining it, or its own). One row per (line item,
    learner, score version); writing the same version again adds nothing. Older rows of
    the same line item and learner that are still waiting are superseded (the newer
    total is what the LMS must show). Each new row's task is enqueued after commit.
    """
    total = AssignmentScore.objects.filter(assignment_id=assignment_id, learner_id=learner_id).first()
    if total is None or total.max_score <= 0:
        return []
    links = list(
        ResourceLink.objects.filter(target__assignment_id=assignment_id)
        .exclude(lineitem_url="")
        .select_related("context__platform")
    )
    if not links:
        return []
    identities = {identity.issuer: identity.subject for identity in LtiIdentity.objects.filter(user_id=learner_id)}
    written: list[ScoreOutbox] = []
    seen: set[str] = set()
    with transaction.atomic():
        for link in links:
            platform = link.context.platform
            subject = identities.get(platform.issuer)
            if subject is None:
                continue  # the learner never came from this LMS: it has no user id for them
            score_time = total.updated_at
            key = ScoreOutbox.make_key(link.lineitem_url, subject, score_time.isoformat())
            if key in seen:
                continue
            seen.add(key)
            latest = (
                ScoreOutbox.objects.filter(lineitem_url=link.lineitem_url, user_id=learner_id)
                .exclude(status__in=[OutboxStatus.SUPERSEDED, OutboxStatus.FAILED])
                .order_by("-score_time")
                .values_list("score_given", "score_maximum")
                .first()
            )
            if latest == (max(0.0, float(total.score)), float(total.max_score)):
                continue  # the LMS has (or is getting) this very score: only lateness or the like changed
            ScoreOutbox.objects.bulk_create(
                [
                    ScoreOutbox(
                        key=key,
                        platform=platform,
                        resource_link=link,
                        lineitem_url=link.lineitem_url,
                        user_id=learner_id,
                        subject=subject,
                        assignment_id=assignment_id,
                        score_given=max(0.0, float(total.score)),
                        score_maximum=float(total.max_score),
                        score_time=score_time,
                    )
                ],
                ignore_conflicts=True,
            )
            row = ScoreOutbox.objects.get(key=key)
            ScoreOutbox.objects.filter(
                lineitem_url=link.lineitem_url,
                user_id=learner_id,
                status=OutboxStatus.PENDING,
                score_time__lt=score_time,
            ).update(status=OutboxStatus.SUPERSEDED)
            if row.status == OutboxStatus.PENDING:
                written.append(row)
                transaction.on_commit(functools.partial(_enqueue_send, row.pk))
    return written


SEND_SCORE_TASK_NAME = "lti.tasks.send_score"


def _enqueue_send(outbox_id: int) -> None:
    task_send(SEND_SCORE_TASK_NAME, outbox_id)  # refused: the row waits, the sweeper sends it later


def retry_delay_s(attempts: int) -> int:
    """Exponential backoff after `attempts` failed tries: base * 2^(attempts-1), capped."""
    base = settings.LTI_SCORE_RETRY_BASE_S
    return int(min(settings.LTI_SCORE_RETRY_CAP_S, base * 2 ** max(0, attempts - 1)))


@dataclass
class SendOutcome:
    """What `score_send` did: `sent` when this call delivered; `retry_in_s` when it should run again."""

    outbox_id: int
    sent: bool = False
    retry_in_s: int | None = None
    note: str = ""


def _is_transient(error: Exception) -> bool:
    if isinstance(error, LtiServiceException):
        status = error.response.status_code
        return status >= 500 or status in {401, 408, 425, 429}
    return isinstance(error, requests.RequestException)


class _TimeoutSession(requests.Session):
    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", SERVICE_TIMEOUT_S)
        return super().request(*args, **kwargs)


class _CachingConnector(ServiceConnector):
    """A service connector that keeps each access token (per platform and scopes) until shortly before it expires.

    Without it every score would cost a token request: a burst of gradings would be a
    burst of token requests at the LMS.
    """

    def get_access_token(self, scopes: Sequence[str]) -> str:
        key = _token_cache_key(self._registration, scopes)
        token = cache.get(key)
        if isinstance(token, str) and token:
            return token
        token = super().get_access_token(scopes)
        cache.set(key, token, TOKEN_CACHE_S)
        return token


def connector_for(platform: Platform) -> ServiceConnector:
    session = _TimeoutSession()
    session.headers["User-Agent"] = "Gradlab-LTI"
    return _CachingConnector(registration_for(platform), session)


def _token_cache_key(registration: Any, scopes: Sequence[str]) -> str:
    parts = [registration.get_auth_token_url() or "", registration.get_client_id() or "", *sorted(scopes)]
    return "lti-token:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def token_forget(platform: Platform, scopes: Sequence[str]) -> None:
    cache.delete(_token_cache_key(registration_for(platform), scopes))


def score_send(outbox_id: int, *, now: datetime | None = None) -> SendOutcome:
    """Send one outbox row to its line item, at most once successfully.

    Only the caller whose guarded UPDATE moves the row from PENDING (and due) to SENDING
    goes on, so a redelivered task message does nothing. Success moves it to DELIVERED
    in one UPDATE; a transient failure (network, 5xx, 429) puts it back to PENDING with
    the next attempt after an exponential, capped backoff; a refusal (other 4xx) marks
    it FAILED for a person to look at (the admin can send it again).
    """
    now = now or timezone.now()
    claimed = ScoreOutbox.objects.filter(pk=outbox_id, status=OutboxStatus.PENDING, next_attempt_at__lte=now).update(
        status=OutboxStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        row = ScoreOutbox.objects.filter(pk=outbox_id).only("status", "next_attempt_at").first()
        if row is not None and row.status == OutboxStatus.PENDING:
            wait = max(1, int((row.next_attempt_at - now).total_seconds()))
            return SendOutcome(outbox_id, retry_in_s=wait, note="not due yet")
        return SendOutcome(outbox_id, note="already handled" if row else "no such row")
    row = ScoreOutbox.objects.select_related("platform").get(pk=outbox_id)
    newer = (
        ScoreOutbox.objects.filter(lineitem_url=row.lineitem_url, user_id=row.user_id, score_time__gt=row.score_time)
        .exclude(status__in=[OutboxStatus.SUPERSEDED, OutboxStatus.FAILED])
        .exists()
    )
    if newer:
        ScoreOutbox.objects.filter(pk=outbox_id, status=OutboxStatus.SENDING).update(status=OutboxStatus.SUPERSEDED)
        return SendOutcome(outbox_id, note="superseded by a newer score")
    grade = (
        Grade()
        .set_score_given(row.score_given)
        .set_score_maximum(row.score_maximum)
        .set_timestamp(row.score_time.isoformat())
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_user_id(row.subject)
    )
    scopes = list(row.resource_link.ags_scopes) if row.resource_link and row.resource_link.ags_scopes else []
    if SCORE_SCOPE not in scopes:
        scopes.append(SCORE_SCOPE)
    try:
        service = AssignmentsGradesService(connector_for(row.platform), {"scope": scopes, "lineitem": row.lineitem_url})
        service.put_grade(grade)
    except (LtiException, requests.RequestException) as error:
        message = str(error)[:2000]
        if isinstance(error, LtiServiceException) and error.response.status_code == 401:
            token_forget(row.platform, scopes)  # revoked or expired early: the next try asks for a new one
        if _is_transient(error):
            delay = retry_delay_s(row.attempts)
            ScoreOutbox.objects.filter(pk=outbox_id, status=OutboxStatus.SENDING).update(
                status=OutboxStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay), last_error=message
            )
            logger.info(
                "score %s not delivered (attempt %s), next try in %s s: %s", outbox_id, row.attempts, delay, message
            )
            return SendOutcome(outbox_id, retry_in_s=delay, note=message)
        ScoreOutbox.objects.filter(pk=outbox_id, status=OutboxStatus.SENDING).update(
            status=OutboxStatus.FAILED, last_error=message
        )
        logger.warning("score %s refused by the platform: %s", outbox_id, message)
        return SendOutcome(outbox_id, note=message)
    ScoreOutbox.objects.filter(pk=outbox_id, status=OutboxStatus.SENDING).update(
        status=OutboxStatus.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    return SendOutcome(outbox_id, sent=True)


def outbox_resend(outbox_ids: list[int]) -> int:
    """Put FAILED rows back in the queue (admin action); return how many."""
    count = ScoreOutbox.objects.filter(pk__in=outbox_ids, status=OutboxStatus.FAILED).update(
        status=OutboxStatus.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    for outbox_id in outbox_ids:
        transaction.on_commit(functools.partial(_enqueue_send, outbox_id))
    return count


def outbox_reconcile(now: datetime | None = None) -> int:
    """Write outbox rows for recent total changes that have none (a listener failed); return how many.

    Looks at totals changed in the last LTI_RECONCILE_WINDOW_S on assignments that
    have a line item; `outbox_write_for` adds nothing for a version already written.
    """
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.LTI_RECONCILE_WINDOW_S)
    linked = ResourceLink.objects.filter(target__assignment__isnull=False).exclude(lineitem_url="")
    assignment_ids = set(linked.values_list("target__assignment_id", flat=True))
    if not assignment_ids:
        return 0
    written_versions = ScoreOutbox.objects.filter(
        assignment_id=OuterRef("assignment_id"), user_id=OuterRef("learner_id"), score_time=OuterRef("updated_at")
    )
    missing = (
        AssignmentScore.objects.filter(assignment_id__in=assignment_ids, updated_at__gte=since)
        .exclude(Exists(written_versions))
        .filter(learner__lti_identities__isnull=False)
        .values_list("assignment_id", "learner_id")
        .distinct()[:1000]
    )
    count = 0
    for assignment_id, learner_id in missing:
        count += len(outbox_write_for(assignment_id, learner_id))
    return count


def outbox_sweep(now: datetime | None = None) -> list[int]:
    """Find rows whose message was lost: due PENDING rows, and SENDING rows whose worker died.

    Returns the ids sent to the queue again. A SENDING row is given back after
    LTI_SENDING_STALE_S; the platform may then receive the same score twice, with the
    same timestamp, which AGS treats as one.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.LTI_SENDING_STALE_S)
    ScoreOutbox.objects.filter(status=OutboxStatus.SENDING, claimed_at__lt=stale).update(
        status=OutboxStatus.PENDING, next_attempt_at=now
    )
    due = list(
        ScoreOutbox.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    for outbox_id in due:
        _enqueue_send(outbox_id)
    return due
