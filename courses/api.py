"""The courses part of the JSON API (/api/courses...), mounted on grader.api's NinjaAPI by `install`.

Same authentication and error shape as the rest of the API: `{"detail", "code"}` with a
4xx status and a one-line reason; a refused request changes nothing. A course is 404 to
anyone who is neither its staff nor enrolled in it, so its existence does not leak.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Path, Router, Schema, Status
from ninja.errors import HttpError

from courses import regrades, selectors, services
from courses.models import Assignment, Course, RegradeJob

MAX_ID = 2**63 - 1
router = Router(tags=["courses"])


class ErrorOut(Schema):
    detail: str
    code: str


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


class CourseIn(Schema):
    slug: str = Field(..., max_length=60, description="Lowercase letters, digits and hyphens", examples=["ml-101"])
    title: str = Field(..., max_length=200, examples=["Deep learning fundamentals"])
    term: str = Field("", max_length=60, examples=["Spring 2027"])


class CourseOut(Schema):
    slug: str
    title: str
    term: str
    ended: bool
    role: str | None = Field(None, description="owner, instructor or teaching_assistant; null for a learner")
    enrolled: bool
    join_code: str | None = Field(None, description="Only for the course's staff")
    invite_url: str | None = Field(None, description="Only for the course's staff")
    learners: int | None = Field(None, description="Only for the course's staff")
    url: str


class JoinIn(Schema):
    code: str = Field(..., max_length=32, examples=["K7QX2M9P"])


class JoinOut(Schema):
    course: str
    enrolled: bool
    url: str


class ItemIn(Schema):
    kind: Literal["exercise", "quiz"]
    slug: str = Field(..., max_length=100)
    points: float = Field(..., gt=0, le=services.MAX_POINTS)
    questions: list[str] = Field(
        default_factory=list, max_length=200, description="Quiz only: the question keys to count (default all)"
    )


class AssignmentIn(Schema):
    title: str = Field(..., max_length=200)
    items: list[ItemIn] = Field(..., max_length=services.MAX_ITEMS)
    opens_at: datetime = Field(..., description="With a time zone, e.g. 2027-03-01T09:00:00+01:00")
    due_at: datetime
    late_policy: Literal["none", "penalty_per_day", "hard_close"] = "none"
    late_penalty_percent: float = Field(0.0, ge=0, le=100, description="Per started day late (penalty_per_day)")
    counting: Literal["best", "last"] = "best"
    hint_penalty_percent: float = Field(
        0.0,
        ge=0,
        le=100,
        description="Percent of an exercise item's points taken off per hint revealed before the counted "
        "submission (never below 0 points); 0: hints are free",
    )


class AssignmentOut(Schema):
    id: int
    title: str
    opens_at: datetime
    due_at: datetime
    late_policy: str
    late_penalty_percent: float
    counting: str
    hint_penalty_percent: float
    max_points: float
    url: str


class RegradeIn(Schema):
    dry_run: bool = Field(True, description="true: only show what would change; false: apply the regrade")


class RegradeOut(Schema):
    id: int
    mode: str = Field(..., description="preview (dry run) or apply")
    status: str = Field(..., description="queued, running, done or failed")
    done: int
    total: int
    summary: dict[str, Any] = Field(
        ...,
        description="Once done: submissions, verdicts_changed, scores_changed, points_changed, learners_changed "
        "and changes [{learner, item, old, new}]",
    )
    url: str


def _access(request: HttpRequest, slug: str) -> selectors.CourseAccess:
    access = selectors.course_access(slug, request.user)
    if access is None:
        raise HttpError(404, f"There is no course {slug!r} (or you are not in it).")
    return access


def _course_out(course: Course, access: selectors.CourseAccess | None) -> dict[str, Any]:
    from django.urls import reverse

    staff = access is not None and access.is_staff
    return {
        "slug": course.slug,
        "title": course.title,
        "term": course.term,
        "ended": course.is_ended(),
        "role": access.role if access else "owner",
        "enrolled": bool(access and access.enrolled),
        "join_code": course.join_code if staff or access is None else None,
        "invite_url": reverse("course_invite", args=[course.invite_token]) if staff or access is None else None,
        "learners": course.enrollments.count() if staff or access is None else None,
        "url": course.get_absolute_url(),
    }


def _assignment_out(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.pk,
        "title": assignment.title,
        "opens_at": assignment.opens_at,
        "due_at": assignment.due_at,
        "late_policy": assignment.late_policy,
        "late_penalty_percent": assignment.late_penalty_percent,
        "counting": assignment.counting,
        "hint_penalty_percent": assignment.hint_penalty_percent,
        "max_points": assignment.max_points(),
        "url": assignment.get_absolute_url(),
    }


def _regrade_out(job: RegradeJob) -> dict[str, Any]:
    from django.urls import reverse

    return {
        **regrades.regrade_job_progress(job),
        "summary": job.summary or {},
        "url": reverse("api:regrade_job", args=[job.assignment.course.slug, job.pk]),
    }


@router.post("", response={201: CourseOut, **ERRORS}, summary="Create a course (staff and instructors)")
def create_course(request: HttpRequest, payload: CourseIn) -> Status[dict[str, Any]]:
    """The caller becomes the course's owner. 403 for a learner; 409 if the slug is taken."""
    course = services.course_create(user=request.user, slug=payload.slug, title=payload.title, term=payload.term)
    return Status(201, _course_out(course, None))


@router.get("", response={200: list[CourseOut], **ERRORS}, summary="Your courses (teaching and enrolled)")
def list_courses(request: HttpRequest) -> list[dict[str, Any]]:
    teaching, learning = selectors.courses_for_user(request.user)
    out = []
    for course in dict.fromkeys([*teaching, *learning]):
        access = selectors.course_access(course.slug, request.user)
        out.append(_course_out(course, access))
    return out


@router.post("/join", response={200: JoinOut, **ERRORS}, summary="Join a course with its join code")
def join_course(request: HttpRequest, payload: JoinIn) -> dict[str, Any]:
    """404 for a wrong code, 409 for an ended course; joining twice changes nothing."""
    enrollment = services.course_join(user=request.user, code=payload.code)
    return {"course": enrollment.course.slug, "enrolled": True, "url": enrollment.course.get_absolute_url()}


@router.get("/{slug}", response={200: CourseOut, **ERRORS}, summary="A course (its join code only for staff)")
def get_course(request: HttpRequest, slug: str = Path(..., max_length=60)) -> dict[str, Any]:
    access = _access(request, slug)
    return _course_out(access.course, access)


@router.post(
    "/{slug}/assignments", response={201: AssignmentOut, **ERRORS}, summary="Create an assignment (owners, instructors)"
)
def create_assignment(
    request: HttpRequest, payload: AssignmentIn, slug: str = Path(..., max_length=60)
) -> Status[dict[str, Any]]:
    """400 for a due time not after the open time, an unknown exercise, lesson or question, or an ended course."""
    access = _access(request, slug)
    assignment = services.assignment_create(
        access.course,
        by=request.user,
        title=payload.title,
        items=[
            services.ItemSpec(kind=item.kind, slug=item.slug, points=item.points, questions=tuple(item.questions))
            for item in payload.items
        ],
        opens_at=payload.opens_at,
        due_at=payload.due_at,
        late_policy=payload.late_policy,
        late_penalty_percent=payload.late_penalty_percent,
        counting=payload.counting,
        hint_penalty_percent=payload.hint_penalty_percent,
    )
    return Status(201, _assignment_out(assignment))


@router.get("/{slug}/gradebook", response={200: dict[str, Any], **ERRORS}, summary="The gradebook as JSON (staff)")
def get_gradebook(request: HttpRequest, slug: str = Path(..., max_length=60)) -> dict[str, Any]:
    """Items (columns) and learners (rows) with points, counting time, late flags and totals."""
    access = _access(request, slug)
    services.require_staff(request.user, access.course)
    return selectors.gradebook_json(selectors.gradebook(access.course))


@router.get(
    "/{slug}/gradebook.csv",
    response={200: str, **ERRORS},
    summary="The gradebook as CSV (staff): one row per learner, Canvas/Moodle import columns",
    openapi_extra={"responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def get_gradebook_csv(request: HttpRequest, slug: str = Path(..., max_length=60)) -> HttpResponse:
    access = _access(request, slug)
    services.require_staff(request.user, access.course)
    response = HttpResponse(
        selectors.gradebook_csv(selectors.gradebook(access.course)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{access.course.slug}-gradebook.csv"'
    return response


@router.post(
    "/{slug}/assignments/{assignment_id}/regrade",
    response={202: RegradeOut, **ERRORS},
    summary="Regrade an assignment's submissions: a dry run (preview) or for real",
)
def regrade_assignment(
    request: HttpRequest,
    payload: RegradeIn,
    slug: str = Path(..., max_length=60),
    assignment_id: int = Path(..., ge=1, le=MAX_ID),
) -> Status[dict[str, Any]]:
    """Queues the regrade and answers with its job; read the progress and, once done, what changed
    (old -> new points per learner and item) at the job's `url`. A dry run changes no score."""
    access = _access(request, slug)
    assignment = Assignment.objects.filter(course=access.course, pk=assignment_id).first()
    if assignment is None:
        raise HttpError(404, f"The course has no assignment {assignment_id}.")
    job = regrades.regrade_start(assignment, by=request.user, dry_run=payload.dry_run)
    return Status(202, _regrade_out(job))


@router.get(
    "/{slug}/regrades/{job_id}",
    response={200: RegradeOut, **ERRORS},
    summary="A regrade's progress and, once done, what it changes",
    url_name="regrade_job",
)
def get_regrade(
    request: HttpRequest, slug: str = Path(..., max_length=60), job_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    access = _access(request, slug)
    services.require_staff(request.user, access.course)
    job = RegradeJob.objects.filter(assignment__course=access.course, pk=job_id).select_related("assignment__course")
    found = job.first()
    if found is None:
        raise HttpError(404, f"The course has no regrade {job_id}.")
    return _regrade_out(found)


def install(api: NinjaAPI) -> None:
    """Mount the router at /api/courses (CourseError is a gradlab.errors.Refused: grader.api answers it)."""
    api.add_router("/courses", router)
