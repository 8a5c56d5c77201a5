"""Exercise pages (statement, editor, submit) and submission pages (live progress, verdict, history).

Views check access, call one service or selector, render. A submission is visible to
its author and to staff only; anyone else gets 404.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from grader import selectors, services
from grader.models import Exercise, Submission

CODE_FIELD = "code"
FILE_FIELD = "file"


def exercise_list(request: HttpRequest) -> HttpResponse:
    """Every exercise, grouped by lesson in the lessons' order."""
    groups: dict[str, list[Exercise]] = {}
    lessons = {}
    for exercise in selectors.exercise_list():
        key = exercise.lesson.slug if exercise.lesson else ""
        lessons[key] = exercise.lesson
        groups.setdefault(key, []).append(exercise)
    context = {"groups": [(lessons[key], exercises) for key, exercises in groups.items()]}
    return render(request, "grader/exercise_list.html", context)


def _posted_code(request: HttpRequest) -> str | bytes:
    """The submitted code: an uploaded file's bytes, else the text field.

    For a url-encoded form the field is decoded strictly from the raw body: Django
    would silently turn bytes that are not UTF-8 into U+FFFD.
    """
    upload = request.FILES.get(FILE_FIELD)
    if upload is not None and upload.size:
        return b"".join(upload.chunks())
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qsl(request.body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            return b"\xff"  # rejected as not UTF-8 by the service
        return next((value for key, value in fields if key == CODE_FIELD), "")
    return request.POST.get(CODE_FIELD, "")


@require_http_methods(["GET", "POST"])
def exercise_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The statement and the editor; POST submits (a plain form, so it works without JavaScript)."""
    exercise = selectors.exercise_get(slug)
    if exercise is None:
        raise Http404("No such exercise")
    error: services.SubmissionRejected | None = None
    code: str | None = None
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        posted = _posted_code(request)
        try:
            submission = services.submission_create(user=request.user, exercise_slug=slug, code=posted)
        except services.SubmissionRejected as rejected:
            error = rejected
            code = posted if isinstance(posted, str) else None
        else:
            return redirect(submission)
    if code is None:
        code = selectors.latest_code(request.user, exercise) or exercise.starter_code
    context = {
        "exercise": exercise,
        "code": code,
        "error": error,
        "history": selectors.submission_history(request.user, exercise, limit=10),
        "max_source_kib": services.settings.GRADER_MAX_SOURCE_BYTES // 1024,
    }
    response = render(request, "grader/exercise_detail.html", context, status=error.http_status if error else 200)
    if isinstance(error, services.RateLimited):
        response["Retry-After"] = str(error.retry_after_s)
    return response


def _visible_submission(request: HttpRequest, submission_id: int) -> Submission:
    submission = selectors.submission_for_viewer(submission_id, request.user)
    if submission is None:
        raise Http404("No such submission")
    return submission


def _live_context(submission: Submission) -> dict[str, object]:
    view = selectors.verdict_view(submission)
    return {
        "submission": submission,
        "steps": selectors.progress_steps(submission),
        "percent": selectors.progress_percent(submission),
        "queue_position": selectors.queue_position(submission),
        "verdict": view,
        "chart": selectors.chart_data(view),
    }


@login_required
@require_GET
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    """Live progress, then the verdict; the learner's history for the exercise and the diff to the previous try."""
    submission = _visible_submission(request, submission_id)
    previous = selectors.previous_submission(submission)
    context = {
        **_live_context(submission),
        "exercise": submission.exercise,
        "history": selectors.submission_history(submission.user, submission.exercise),
        "previous": previous,
        "diff": selectors.code_diff(previous.code, submission.code) if previous else [],
        "is_owner": submission.user_id == request.user.pk,
    }
    return render(request, "grader/submission_detail.html", context)


@login_required
@require_GET
def submission_progress(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The live part of the submission page, polled by HTMX until the verdict is in."""
    submission = _visible_submission(request, submission_id)
    response = render(request, "grader/_live.html", {**_live_context(submission), "oob": True})
    response["Cache-Control"] = "no-store"
    return response
