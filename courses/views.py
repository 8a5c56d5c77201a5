"""Course pages: my courses, a course, an assignment, the gradebook, a learner's work on an item,
the roster, the audit log and regrades.

Each view checks access (selectors.course_access: 404 for outsiders, 403 for a learner on a
staff page), calls one service or selector, and renders. Refusals from the services come
back as a message on the page they were sent from; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from courses import assignment_edit as assignment_edit_service
from courses import regrades, rosters, selectors, services
from courses.models import (
    Assignment,
    AssignmentItem,
    Counting,
    Course,
    Enrollment,
    ItemKind,
    ItemScore,
    LatePolicy,
    RegradeJob,
    RosterInvitation,
)

View = Callable[..., HttpResponse]


def course_member(*, staff: bool = False, manage: bool = False) -> Callable[[View], View]:
    """Load the course of `slug` into `request.course_access`; 404 for outsiders, 403 for a learner
    on a staff page (`staff`) or a TA on an owner/instructor page (`manage`)."""

    def decorate(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            access = selectors.course_access(slug, request.user)
            if access is None:
                raise Http404("No such course.")
            if (staff or manage) and not access.is_staff:
                raise PermissionDenied("This page is for the course's staff.")
            if manage and not access.can_manage:
                raise PermissionDenied("This page is for the course's owners and instructors.")
            return view(request, access, *args, **kwargs)

        return wrapper

    return decorate


def _refused(request: HttpRequest, error: services.CourseError, to: str) -> HttpResponse:
    messages.error(request, error.message)
    return HttpResponseRedirect(to)


def _aware(value: str, tz_offset_minutes: str = "") -> datetime | None:
    """A datetime-local value (no zone) read in the browser's zone (minutes east of UTC, sent by the form)."""
    parsed = parse_datetime((value or "").strip())
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        try:
            offset = int(tz_offset_minutes)
        except ValueError:
            offset = 0
        if abs(offset) > 14 * 60:
            offset = 0
        parsed = parsed.replace(tzinfo=dt_timezone(timedelta(minutes=offset)))
    return parsed


# --- My courses, joining ------------------------------------------------------------------


@login_required
@require_GET
def course_list(request: HttpRequest) -> HttpResponse:
    return _course_list_page(request)


def _course_list_page(request: HttpRequest, *, create_error: str = "", status: int = 200) -> HttpResponse:
    """My courses; after a refused "Create a course", its form as it was sent with the reason beside it."""
    teaching, learning = selectors.courses_for_user(request.user)
    context = {
        "teaching": teaching,
        "learning": learning,
        "upcoming": selectors.learner_assignments(request.user, courses=learning),
        "can_create": services.can_create_course(request.user),
        "create_form": {key: request.POST.get(key, "") for key in ("title", "slug", "term")},
        "create_error": create_error,
    }
    return render(request, "courses/course_list.html", context, status=status)


@login_required
@require_POST
def course_create(request: HttpRequest) -> HttpResponse:
    try:
        course = services.course_create(
            user=request.user,
            slug=request.POST.get("slug", ""),
            title=request.POST.get("title", ""),
            term=request.POST.get("term", ""),
        )
    except services.CourseForbidden as error:
        return _refused(request, error, reverse("course_list"))
    except services.CourseError as error:
        return _course_list_page(request, create_error=error.message, status=error.http_status)
    messages.success(request, f"Course {course.title} created. Learners join with the code {course.join_code}.")
    return HttpResponseRedirect(course.get_absolute_url())


@login_required
@require_POST
def course_join(request: HttpRequest) -> HttpResponse:
    try:
        enrollment = services.course_join(user=request.user, code=request.POST.get("code", ""))
    except services.CourseError as error:
        return _refused(request, error, reverse("course_list"))
    messages.success(request, f"You are enrolled in {enrollment.course.title}.")
    return HttpResponseRedirect(enrollment.course.get_absolute_url())


@require_http_methods(["GET", "POST"])
def course_invite(request: HttpRequest, token: str) -> HttpResponse:
    """An invite link (the course's, or a roster invitation's): shows the course, joins on POST."""
    course = Course.objects.filter(invite_token=token).first()
    invitation = None
    if course is None:
        invitation = RosterInvitation.objects.select_related("course").filter(token=token).first()
        if invitation is None:
            raise Http404("This invitation link is not valid.")
        course = invitation.course
    if not request.user.is_authenticated:
        return render(request, "courses/invite.html", {"course": course, "invitation": invitation, "token": token})
    if request.method == "POST":
        try:
            services.course_join_by_invite(user=request.user, token=token)
        except services.CourseError as error:
            return _refused(request, error, reverse("course_list"))
        messages.success(request, f"You are enrolled in {course.title}.")
        return HttpResponseRedirect(course.get_absolute_url())
    enrolled = Enrollment.objects.filter(course=course, user_id=request.user.pk).exists()
    context = {"course": course, "invitation": invitation, "token": token, "enrolled": enrolled}
    return render(request, "courses/invite.html", context)


# --- A course -------------------------------------------------------------------------------


@course_member()
@require_GET
def course_detail(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    return _course_page(request, access)


ASSIGNMENT_FORM_ITEMS = 5


def _assignment_form(data: Any = None) -> dict[str, Any]:
    """The new-assignment form's values: the defaults, or what was sent (so a refusal loses nothing)."""
    data = data or {}
    return {
        "title": data.get("title", ""),
        "opens_at": data.get("opens_at", ""),
        "due_at": data.get("due_at", ""),
        "late_policy": data.get("late_policy", LatePolicy.NONE),
        "late_penalty_percent": data.get("late_penalty_percent", "10"),
        "counting": data.get("counting", Counting.BEST),
        "hint_penalty_percent": data.get("hint_penalty_percent", "0"),
        "items": [
            {"n": n, "value": data.get(f"item_{n}", ""), "points": data.get(f"points_{n}", "10")}
            for n in range(1, ASSIGNMENT_FORM_ITEMS + 1)
        ],
    }


def _course_page(
    request: HttpRequest, access: selectors.CourseAccess, *, form: Any = None, error: str = "", status: int = 200
) -> HttpResponse:
    course = access.course
    context: dict[str, Any] = {"course": course, "access": access}
    if access.is_staff:
        context["assignments"] = list(course.assignments.prefetch_related("items"))
        context["learner_count"] = course.enrollments.count()
        context["staff"] = selectors.course_staff(course)
        context["invite_url"] = request.build_absolute_uri(reverse("course_invite", args=[course.invite_token]))
        context["late_policies"] = LatePolicy.choices
        context["countings"] = Counting.choices
        context["exercise_choices"], context["lesson_choices"] = _item_choices()
        context["form"], context["form_error"] = form or _assignment_form(), error
    else:
        context["mine"] = selectors.learner_assignments(request.user, courses=[course])
    return render(request, "courses/course_detail.html", context, status=status)


def _item_choices() -> tuple[list[Any], list[Any]]:
    """The new-assignment form's items as (value, label): exercises, then the lessons with a quiz."""
    from grader.models import Exercise
    from lessons.models import Lesson

    exercises = Exercise.objects.filter(is_active=True).order_by("order", "slug").values_list("slug", "title")
    lessons = (
        Lesson.objects.filter(quiz_questions__is_active=True).distinct().order_by("order").values_list("slug", "title")
    )
    return (
        [(f"exercise:{slug}", title) for slug, title in exercises],
        [(f"quiz:{slug}", f"Quiz: {title}") for slug, title in lessons],
    )


@course_member(manage=True)
@require_POST
def assignment_create(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    """The course page's form: title, times (browser-local, with the browser's offset), policy, items.

    Items come as `item_<n>` = 'exercise:<slug>' or 'quiz:<slug>' with `points_<n>`.
    """
    course = access.course
    items = []
    for key in sorted((k for k in request.POST if k.startswith("item_")), key=lambda k: k.split("_")[-1].zfill(4)):
        value = request.POST.get(key, "")
        if not value:
            continue
        kind, _, slug = value.partition(":")
        row = key.removeprefix("item_")
        try:
            points = float(request.POST.get("points_" + row, "") or "nan")
        except ValueError:
            points = float("nan")
        number = int(row) if row.isdigit() and len(row) < 4 else 0  # the form's "Item <n>"
        items.append(services.ItemSpec(kind=kind, slug=slug, points=points, number=number))
    offset = request.POST.get("tz_offset", "")
    opens_at = _aware(request.POST.get("opens_at", ""), offset)
    due_at = _aware(request.POST.get("due_at", ""), offset)
    if opens_at is None or due_at is None:
        return _assignment_refused(request, access, "Give an open and a due time.")
    try:
        penalty = float(request.POST.get("late_penalty_percent") or 0)
        hint_penalty = float(request.POST.get("hint_penalty_percent") or 0)
        assignment = services.assignment_create(
            course,
            by=request.user,
            title=request.POST.get("title", ""),
            items=items,
            opens_at=opens_at,
            due_at=due_at,
            late_policy=request.POST.get("late_policy", LatePolicy.NONE),
            late_penalty_percent=penalty,
            counting=request.POST.get("counting", Counting.BEST),
            hint_penalty_percent=hint_penalty,
        )
    except ValueError:
        return _assignment_refused(request, access, "The late penalty and the hint penalty must be numbers.")
    except services.CourseError as error:
        return _assignment_refused(request, access, error.message)
    messages.success(request, f"Assignment {assignment.title} created.")
    return HttpResponseRedirect(assignment.get_absolute_url())


def _assignment_refused(request: HttpRequest, access: selectors.CourseAccess, message: str) -> HttpResponse:
    """The course page again with the form as it was sent and the reason beside it (nothing stored)."""
    return _course_page(request, access, form=_assignment_form(request.POST), error=message, status=400)


def _assignment(access: selectors.CourseAccess, assignment_id: int) -> Assignment:
    return get_object_or_404(Assignment.objects.select_related("course"), course=access.course, pk=assignment_id)


@course_member()
@require_GET
def assignment_detail(request: HttpRequest, access: selectors.CourseAccess, assignment_id: int) -> HttpResponse:
    return _assignment_page(request, access, _assignment(access, assignment_id))


def _assignment_page(
    request: HttpRequest,
    access: selectors.CourseAccess,
    assignment: Assignment,
    *,
    extension_form: dict[str, str] | None = None,
    extension_error: str = "",
    edit_form: dict[str, str] | None = None,
    edit_error: str = "",
    status: int = 200,
) -> HttpResponse:
    """What counts, the late policy and the viewer's due time (with any extension) and points; for
    staff, after a refused extension, its form as it was sent with the reason beside it."""
    context: dict[str, Any] = {"course": access.course, "access": access, "assignment": assignment}
    if access.enrolled:
        mine = [row for row in selectors.learner_assignments(request.user, courses=[access.course])]
        context["mine"] = next((row for row in mine if row.assignment.pk == assignment.pk), None)
    else:
        context["items"] = list(assignment.items.select_related("exercise", "lesson"))
    if access.is_staff:
        context["regrades"] = selectors.regrade_jobs(assignment)
        context["outdated"] = selectors.outdated_items(assignment)
        context["extensions"] = list(assignment.extensions.select_related("learner"))
        context["learners"] = list(
            get_user_model().objects.filter(enrollments__course=access.course).order_by("username")
        )
        context["extension_form"] = extension_form or {"learner": "", "due_at": "", "reason": ""}
        context["extension_error"] = extension_error
    if access.can_manage:
        context["edit_form"], context["edit_error"] = (
            edit_form or assignment_edit_service.form_values(assignment),
            edit_error,
        )
        context["late_policies"], context["countings"] = LatePolicy.choices, Counting.choices
    return render(request, "courses/assignment_detail.html", context, status=status)


@course_member(staff=True)
@require_POST
def extension_grant(request: HttpRequest, access: selectors.CourseAccess, assignment_id: int) -> HttpResponse:
    assignment = _assignment(access, assignment_id)
    due_at = _aware(request.POST.get("due_at", ""), request.POST.get("tz_offset", ""))
    try:
        learner_id = int(request.POST.get("learner", ""))
    except ValueError:
        learner_id = 0
    try:
        if due_at is None:
            raise services.CourseError("Give the new due time.")
        services.extension_grant(
            assignment, learner_id, due_at=due_at, reason=request.POST.get("reason", ""), by=request.user
        )
    except services.CourseError as error:
        # The assignment page again with the form as it was sent (nothing stored).
        sent = {key: request.POST.get(key, "") for key in ("learner", "due_at", "reason")}
        return _assignment_page(
            request, access, assignment, extension_form=sent, extension_error=error.message, status=error.http_status
        )
    messages.success(request, "Extension granted; the learner's score was recounted.")
    return HttpResponseRedirect(assignment.get_absolute_url())


@course_member(manage=True)
@require_POST
def assignment_edit(request: HttpRequest, access: selectors.CourseAccess, assignment_id: int) -> HttpResponse:
    """The assignment page's change form: title, times and rules (not the items)."""
    assignment = _assignment(access, assignment_id)
    offset = request.POST.get("tz_offset", "")
    opens_at = _aware(request.POST.get("opens_at", ""), offset)
    due_at = _aware(request.POST.get("due_at", ""), offset)
    try:
        if opens_at is None or due_at is None:
            raise services.CourseError("Give an open and a due time.")
        try:
            penalty = float(request.POST.get("late_penalty_percent") or 0)
            hint_penalty = float(request.POST.get("hint_penalty_percent") or 0)
        except ValueError:
            raise services.CourseError("The late penalty and the hint penalty must be numbers.") from None
        changed, recounted = assignment_edit_service.assignment_update(
            assignment,
            by=request.user,
            title=request.POST.get("title", ""),
            opens_at=opens_at,
            due_at=due_at,
            late_policy=request.POST.get("late_policy", ""),
            late_penalty_percent=penalty,
            counting=request.POST.get("counting", ""),
            hint_penalty_percent=hint_penalty,
        )
    except services.CourseError as error:
        keys = (
            "title",
            "opens_at",
            "due_at",
            "late_policy",
            "late_penalty_percent",
            "counting",
            "hint_penalty_percent",
        )
        sent = {key: request.POST.get(key, "") for key in keys}
        return _assignment_page(request, access, assignment, edit_form=sent, edit_error=error.message, status=400)
    if not changed:
        messages.info(request, "Nothing changed: the assignment already had these values.")
    else:
        recount = f" The scores of {recounted} learner(s) were recounted (audit log)." if recounted else ""
        messages.success(request, f"Assignment updated: {', '.join(changed)}.{recount}")
    return HttpResponseRedirect(assignment.get_absolute_url())


# --- Gradebook --------------------------------------------------------------------------------


def _book(request: HttpRequest, access: selectors.CourseAccess) -> selectors.Gradebook:
    try:
        assignment_id = int(request.GET.get("assignment", "")) or None
    except ValueError:
        assignment_id = None
    return selectors.gradebook(
        access.course,
        assignment_id=assignment_id,
        search=request.GET.get("q", "").strip()[:100],
        late_only=request.GET.get("late") == "1",
        sort=request.GET.get("sort", "name"),
    )


@course_member(staff=True)
@require_GET
def gradebook(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    book = _book(request, access)
    context = {
        # Items of several assignments: each column also names its assignment.
        "several_assignments": len({column.assignment.pk for column in book.columns}) > 1,
        "course": access.course,
        "access": access,
        "book": book,
        "assignments": list(access.course.assignments.all()),
        "q": request.GET.get("q", ""),
        "late": request.GET.get("late") == "1",
        "sort": request.GET.get("sort", "name"),
        "assignment_filter": request.GET.get("assignment", ""),
        "query": request.GET.urlencode(),
    }
    return render(request, "courses/gradebook.html", context)


@course_member(staff=True)
@require_GET
def gradebook_csv(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    response = HttpResponse(selectors.gradebook_csv(_book(request, access)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{access.course.slug}-gradebook.csv"'
    return response


@course_member(staff=True)
@require_GET
def gradebook_json(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    """The gradebook as the API gives it (every cell's computed points, counting submission, late days,
    attempts), with the page's filters."""
    response = JsonResponse(selectors.gradebook_json(_book(request, access)), json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="{access.course.slug}-gradebook.json"'
    return response


@course_member(staff=True)
@require_http_methods(["GET", "POST"])
def learner_item(request: HttpRequest, access: selectors.CourseAccess, learner_id: int, item_id: int) -> HttpResponse:
    """A learner's work on one item (each submission's code, verdict and diagnosis), the counted points,
    the override form and the item's audit log for this learner."""
    item = get_object_or_404(
        AssignmentItem.objects.select_related("assignment", "exercise", "lesson"),
        pk=item_id,
        assignment__course=access.course,
    )
    learner = get_object_or_404(get_user_model(), pk=learner_id, enrollments__course=access.course)
    if request.method == "POST":
        clear = request.POST.get("clear") == "1"
        try:
            try:
                points = None if clear else float(request.POST.get("points", ""))
            except ValueError:
                raise services.CourseError("Points must be a number.") from None
            services.item_score_override(
                item, learner.pk, points=points, reason=request.POST.get("reason", ""), by_id=int(request.user.pk or 0)
            )
        except services.CourseError as error:
            # The page again with the points and the reason as they were sent (nothing changed).
            sent = {key: request.POST.get(key, "") for key in ("points", "reason")}
            return _learner_item_page(request, access, item, learner, form=sent, error=error.message, status=400)
        messages.success(request, "Override cleared." if clear else "Score overridden; the change is in the audit log.")
        return HttpResponseRedirect(reverse("learner_item", args=[access.course.slug, learner.pk, item.pk]))
    return _learner_item_page(request, access, item, learner)


def _learner_item_page(
    request: HttpRequest,
    access: selectors.CourseAccess,
    item: AssignmentItem,
    learner: Any,
    *,
    form: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    score = ItemScore.objects.filter(item=item, learner=learner).first()
    if form is None:
        override = score.override_points if score else None
        form = {"points": "" if override is None else f"{override:g}", "reason": ""}
    context: dict[str, Any] = {
        "course": access.course,
        "access": access,
        "item": item,
        "learner": learner,
        "score": score,
        "form": form,
        "form_error": error,
        "due_at": services.learner_due_at(item.assignment, learner.pk),
        "changes": list(
            item.grade_changes.filter(learner=learner).select_related("changed_by").order_by("-created_at", "-id")
        ),
    }
    if item.kind == ItemKind.EXERCISE:
        from grader.models import Submission

        submissions = list(
            Submission.objects.filter(user=learner, exercise__assignment_items=item)
            .prefetch_related("regrades__job")
            .order_by("-created_at")[:50]
        )
        context["submissions"] = submissions
        context["hints"] = list(learner.hint_reveals.filter(exercise_id=item.exercise_id or 0).order_by("level"))
    else:
        from quizzes.models import QuizAttempt

        context["attempts"] = list(
            QuizAttempt.objects.filter(user=learner, question_id__in=services.item_question_ids(item))
            .select_related("question")
            .order_by("-created_at")
        )
    return render(request, "courses/learner_item.html", context, status=status)


# --- Roster, audit, regrades ------------------------------------------------------------------


@course_member(staff=True)
@require_http_methods(["GET", "POST"])
def roster(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    course = access.course
    report = None
    if request.method == "POST":
        upload = request.FILES.get("roster")
        if upload is None:
            messages.error(request, "Choose a CSV file to upload.")
            return HttpResponseRedirect(reverse("course_roster", args=[course.slug]))
        if upload.size and upload.size > rosters.ROSTER_MAX_BYTES:
            messages.error(request, f"The roster is {upload.size / 1024:.0f} KiB; the limit is 1 MiB.")
            return HttpResponseRedirect(reverse("course_roster", args=[course.slug]))
        try:
            report = rosters.roster_upload(course, by=request.user, data=upload.read())
        except services.CourseError as error:
            return _refused(request, error, reverse("course_roster", args=[course.slug]))
        if report.errors:
            messages.error(request, "Nothing was changed: fix these rows and upload again.")
    context = {
        "course": course,
        "access": access,
        "report": report,
        "enrollments": list(course.enrollments.select_related("user").order_by("user__username")),
        "invitations": list(course.invitations.order_by("email")),
        "invite_base": request.build_absolute_uri(reverse("course_invite", args=["TOKEN"])).removesuffix("TOKEN/"),
    }
    return render(request, "courses/roster.html", context)


@course_member(staff=True)
@require_GET
def audit_log(request: HttpRequest, access: selectors.CourseAccess) -> HttpResponse:
    context = {"course": access.course, "access": access, "changes": selectors.grade_changes(access.course)}
    return render(request, "courses/audit_log.html", context)


@course_member(manage=True)
@require_POST
def regrade_start(request: HttpRequest, access: selectors.CourseAccess, assignment_id: int) -> HttpResponse:
    assignment = _assignment(access, assignment_id)
    try:
        job = regrades.regrade_start(assignment, by=request.user, dry_run=request.POST.get("dry_run") != "0")
    except services.CourseError as error:
        return _refused(request, error, assignment.get_absolute_url())
    return HttpResponseRedirect(reverse("regrade_detail", args=[access.course.slug, job.pk]))


@course_member(staff=True)
@require_GET
def regrade_detail(request: HttpRequest, access: selectors.CourseAccess, job_id: int) -> HttpResponse:
    """A regrade's progress (the page reloads itself until done) and what it changes."""
    job = get_object_or_404(
        RegradeJob.objects.select_related("assignment", "requested_by"), pk=job_id, assignment__course=access.course
    )
    context = {"course": access.course, "access": access, "job": job, "summary": job.summary or {}}
    return render(request, "courses/regrade_detail.html", context)
