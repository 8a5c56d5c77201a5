"""Exercise pages (statement, editor, submit) and submission pages (live progress, verdict, history).

Views check access, call one service or selector, render. A submission is visible to
its author, site staff and its course's staff only (grader.selectors.submission_for_viewer);
anyone else gets 404.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from grader import example_services, hints, selectors, services
from grader.models import ExampleRun, Exercise, Submission
from gradlab.markdown import render_markdown

CODE_FIELD = "code"
FILE_FIELD = "file"


def exercise_list(request: HttpRequest) -> HttpResponse:
    """Every exercise, grouped by lesson in the lessons' order."""
    groups: dict[str, list[selectors.ExerciseCard]] = {}
    lessons = {}
    for card in selectors.exercise_cards(selectors.exercise_list(), request.user):
        exercise = card.exercise
        key = exercise.lesson.slug if exercise.lesson else ""
        lessons[key] = exercise.lesson
        groups.setdefault(key, []).append(card)
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
            if _wants_panel(request):
                return JsonResponse({"ok": False, "error": "Log in to submit."}, status=403)
            return redirect_to_login(request.get_full_path())
        posted = _posted_code(request)
        try:
            submission = services.submission_create(user=request.user, exercise_slug=slug, code=posted)
        except services.SubmissionRejected as rejected:
            if _wants_panel(request):
                return _panel_refusal(rejected)
            error = rejected
            code = posted if isinstance(posted, str) else None
        else:
            if _wants_panel(request):
                return _panel_response(request, submission)
            return redirect(submission)
    if code is None:
        code = selectors.latest_code(request.user, exercise) or exercise.starter_code
    context = {
        "exercise": exercise,
        "code": code,
        "error": error,
        "history": selectors.submission_history(request.user, exercise, limit=10),
        "max_source_kib": services.settings.GRADER_MAX_SOURCE_BYTES // 1024,
        "hints": hints.hint_ladder(request.user, exercise),
    }
    response = render(request, "grader/exercise_detail.html", context, status=error.http_status if error else 200)
    if isinstance(error, services.RateLimited):
        response["Retry-After"] = str(error.retry_after_s)
    return response


PANEL_HEADER_VALUE = "fetch"


def _wants_panel(request: HttpRequest) -> bool:
    """static/js/exercise.js submits with this header: the answer goes to the panel beside the editor."""
    return request.headers.get("X-Requested-With") == PANEL_HEADER_VALUE


def _panel_response(request: HttpRequest, submission: Submission) -> JsonResponse:
    """The new submission's live block (polled in the panel) and the refreshed history list."""
    context = {**_live_context(submission), "in_workspace": True}
    history = selectors.submission_history(request.user, submission.exercise, limit=10)
    return JsonResponse(
        {
            "ok": True,
            "submission": submission.pk,
            "url": submission.get_absolute_url(),
            "panel_html": render_to_string("grader/_live.html", context, request=request),
            "history_html": render_to_string(
                "grader/_history.html", {"history": history, "submission": submission}, request=request
            ),
        },
        status=201,
    )


def _panel_refusal(rejected: services.SubmissionRejected) -> JsonResponse:
    """A refused submission (too large, not UTF-8, rate limited...): the message, the code stays in the editor."""
    response = JsonResponse(
        {"ok": False, "error": rejected.message, "code": rejected.code}, status=rejected.http_status
    )
    if isinstance(rejected, services.RateLimited):
        response["Retry-After"] = str(rejected.retry_after_s)
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
        "next_exercise": selectors.next_exercise(submission.exercise) if view and view.accepted else None,
    }


@login_required
@require_GET
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    """Live progress, then the verdict; the learner's history for the exercise and the diff to the previous try."""
    submission = _visible_submission(request, submission_id)
    previous = selectors.previous_submission(submission)
    exercise = submission.exercise
    context = {
        **_live_context(submission),
        # The reference solution, only beside an accepted submission (never before Accepted).
        "reference": (
            {
                "code": exercise.reference_solution,
                "explanation_html": render_markdown(exercise.solution_explanation_md)
                if exercise.solution_explanation_md
                else "",
            }
            if submission.is_accepted()
            else None
        ),
        "exercise": submission.exercise,
        "history": selectors.submission_history(submission.user, submission.exercise),
        "previous": previous,
        "diff": selectors.code_diff(previous.code, submission.code) if previous else [],
        "is_owner": submission.user_id == request.user.pk,
        # None: this viewer may not see which hints the author revealed (selectors.can_see_hint_reveals).
        "hints_seen": hints.hints_around(submission)
        if selectors.can_see_hint_reveals(request.user, submission)
        else None,
    }
    return render(request, "grader/submission_detail.html", context)


@login_required
@require_GET
def submission_progress(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The live part of the submission page, polled by HTMX until the verdict is in."""
    submission = _visible_submission(request, submission_id)
    in_workspace = request.GET.get("in") == "workspace"
    context = {**_live_context(submission), "oob": True, "in_workspace": in_workspace}
    response = render(request, "grader/_live.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["POST"])
def exercise_hint(request: HttpRequest, slug: str) -> HttpResponse:
    """Reveal the next hint (POST `level`); recorded. HTMX gets the hint list, a plain form the page."""
    exercise = selectors.exercise_get(slug)
    if exercise is None:
        raise Http404("No such exercise")
    if not request.user.is_authenticated:
        return redirect_to_login(exercise_url(exercise))
    error = ""
    try:
        level = int(request.POST.get("level", ""))
    except ValueError:
        error = "Choose which hint to open."
    else:
        try:
            hints.hint_reveal(user=request.user, exercise=exercise, level=level)
        except hints.HintRefused as refused:
            error = refused.message
    if request.headers.get("HX-Request") != "true":
        return redirect(exercise_url(exercise) + "#hints")
    context = {"exercise": exercise, "hints": hints.hint_ladder(request.user, exercise), "hint_error": error}
    return render(request, "grader/_hints.html", context, status=400 if error else 200)


def exercise_url(exercise: Exercise) -> str:
    return reverse("exercise_detail", args=[exercise.slug])


@require_http_methods(["POST"])
def exercise_run(request: HttpRequest, slug: str) -> HttpResponse:
    """Queue a "Run on an example" of the posted code (JSON; not a submission, its own rate limit)."""
    exercise = selectors.exercise_get(slug)
    if exercise is None:
        raise Http404("No such exercise")
    if not request.user.is_authenticated:
        return JsonResponse({"ok": False, "error": "Log in to run your code."}, status=403)
    try:
        run = example_services.example_run_create(user=request.user, exercise=exercise, code=_posted_code(request))
    except services.SubmissionRejected as rejected:
        return _panel_refusal(rejected)
    html = render_to_string("grader/_example.html", {"run": run}, request=request)
    return JsonResponse({"ok": True, "run": run.pk, "html": html}, status=201)


@login_required
@require_GET
def example_run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The example run's block, polled by HTMX until it has run. Only its author sees it."""
    run = ExampleRun.objects.filter(pk=run_id, user_id=int(request.user.pk or 0)).select_related("exercise").first()
    if run is None:
        raise Http404("No such run")
    response = render(request, "grader/_example.html", {"run": run})
    response["Cache-Control"] = "no-store"
    return response
