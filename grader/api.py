"""The JSON API at /api/ (django-ninja): exercises and submissions.

Authentication: `Authorization: Bearer <token>` (tokens from `manage.py api_token`)
or the site's session cookie, in which case unsafe methods need the CSRF token in
an `X-CSRFToken` header. Errors are JSON `{"detail": <message>, "code": <stable code>}`
with a 4xx status; 429 carries `Retry-After`. The schema is at /api/openapi.json and
browsable docs (Swagger UI served from this site's static files) at /api/docs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja import Field, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import SessionAuth

from grader import selectors, services
from grader.auth import BearerTokenAuth, api_tokens_revoke
from grader.models import ApiToken, Exercise, Submission
from gradlab.errors import Refused

MAX_ID = 2**63 - 1


class SessionCookieAuth(SessionAuth):
    """The site's session; a request that carries the session cookie must pass Django's CSRF check.

    A request without the cookie is simply not authenticated by it (401, not a CSRF
    error): there is nothing to forge without a session.
    """

    def __call__(self, request: HttpRequest) -> Any | None:
        if self.param_name not in request.COOKIES:
            return None
        return super().__call__(request)

    def _get_key(self, request: HttpRequest) -> str | None:
        middleware = CsrfViewMiddleware(lambda _request: HttpResponse())
        request.csrf_processing_done = False  # type: ignore[attr-defined]
        middleware.process_request(request)
        if middleware.process_view(request, lambda _request: HttpResponse(), (), {}) is not None:
            raise HttpError(
                403, "CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header, or use a token."
            )
        return request.COOKIES.get(self.param_name)


api = NinjaAPI(
    title="Gradlab API",
    version="1",
    description=(
        "Submit NumPy backward passes and read their verdicts. Authenticate with "
        "`Authorization: Bearer <token>` (`python manage.py api_token <username>`) or the site's "
        "session (with an `X-CSRFToken` header on POST)."
    ),
    urls_namespace="api",
    auth=[BearerTokenAuth(), SessionCookieAuth()],
)


# --- Schemas ------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str
    code: str


class ExerciseOut(Schema):
    slug: str
    title: str
    lesson: str | None
    difficulty: str
    function: str
    signature: str
    url: str


class ExerciseDetailOut(ExerciseOut):
    statement_md: str
    starter_code: str


class SubmissionIn(Schema):
    exercise: str = Field(..., description="The exercise's slug, e.g. linear-backward.", examples=["linear-backward"])
    code: str = Field(
        ...,
        description=f"Python source defining the exercise's function (UTF-8, at most "
        f"{settings.GRADER_MAX_SOURCE_BYTES} bytes).",
    )


class SubmissionCreatedOut(Schema):
    id: int
    status: str
    url: str


class SubmissionOut(Schema):
    id: int
    exercise: str
    attempt: int
    status: str = Field(..., description="queued, running, graded or failed")
    stage: str = Field(..., description="queued, sandbox, checks, training or done")
    queue_position: int | None = Field(None, description="1 = next to be graded; null unless queued")
    verdict: str | None
    score: float | None
    isolation: str | None
    result: dict[str, Any] = Field(..., description="The grader's result JSON (empty until graded)")
    created_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    url: str


def _exercise_out(exercise: Exercise) -> dict[str, Any]:
    return {
        "slug": exercise.slug,
        "title": exercise.title,
        "lesson": exercise.lesson.slug if exercise.lesson else None,
        "difficulty": exercise.difficulty,
        "function": exercise.function_name,
        "signature": exercise.signature,
        "url": exercise_url(exercise.slug),
    }


def exercise_url(slug: str) -> str:
    from django.urls import reverse

    return reverse("exercise_detail", args=[slug])


def _submission_out(submission: Submission, queue_position: int | None = None) -> dict[str, Any]:
    return {
        "id": submission.pk,
        "exercise": submission.exercise.slug,
        "attempt": submission.attempt,
        "status": submission.status,
        "stage": submission.stage,
        "queue_position": queue_position,
        "verdict": submission.verdict or None,
        "score": submission.score,
        "isolation": submission.isolation or None,
        "result": submission.result or {},
        "created_at": submission.created_at,
        "enqueued_at": submission.enqueued_at,
        "started_at": submission.started_at,
        "finished_at": submission.finished_at,
        "url": submission.get_absolute_url(),
    }


# --- Errors -------------------------------------------------------------------------


@api.exception_handler(Refused)
def refused(request: HttpRequest, error: Refused) -> HttpResponse:
    """Every app's refusal (a submission, a course action, a hint): its status, code and reason."""
    response = api.create_response(request, {"detail": error.message, "code": error.code}, status=error.http_status)
    if isinstance(error, services.RateLimited):
        response["Retry-After"] = str(error.retry_after_s)
    return response


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    message = (
        error.message if error.message != "Unauthorized" else "Authentication required: a Bearer token or a session."
    )
    response = api.create_response(request, {"detail": message, "code": "not_authenticated"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="gradlab"'
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    code = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "error")
    return api.create_response(request, {"detail": error.message, "code": code}, status=error.status_code)


@api.exception_handler(ValidationError)
def invalid_request(request: HttpRequest, error: ValidationError) -> HttpResponse:
    problems = []
    for item in error.errors:
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in {"body", "payload"})
        problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid")))
    return api.create_response(
        request,
        {"detail": "Invalid request: " + "; ".join(problems), "code": "invalid_request", "errors": error.errors},
        status=422,
    )


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


# --- Exercises ----------------------------------------------------------------------


@api.get("/exercises", response=list[ExerciseOut], auth=None, tags=["exercises"], summary="List the exercises")
def list_exercises(request: HttpRequest) -> list[dict[str, Any]]:
    """Every exercise that accepts submissions, in lesson order."""
    return [_exercise_out(exercise) for exercise in selectors.exercise_list()]


@api.get(
    "/exercises/{slug}",
    response={200: ExerciseDetailOut, 404: ErrorOut, 422: ErrorOut},
    auth=None,
    tags=["exercises"],
    summary="One exercise with its statement and starter code",
)
def get_exercise(request: HttpRequest, slug: str = Path(..., max_length=100)) -> dict[str, Any]:
    exercise = selectors.exercise_get(slug)
    if exercise is None:
        raise HttpError(404, f"There is no exercise {slug!r}.")
    return {**_exercise_out(exercise), "statement_md": exercise.statement_md, "starter_code": exercise.starter_code}


# --- Submissions --------------------------------------------------------------------


@api.post(
    "/submissions",
    response={201: SubmissionCreatedOut, 400: ErrorOut, 413: ErrorOut, 429: ErrorOut, **ERRORS},
    tags=["submissions"],
    summary="Submit code for grading",
)
def create_submission(request: HttpRequest, payload: SubmissionIn) -> Status[dict[str, Any]]:
    """Store the submission and queue it for grading; poll `GET /api/submissions/{id}` for the verdict.

    Refused with 400 (code not UTF-8, or empty), 404 (unknown exercise), 413 (code too
    large) or 429 (too many submissions this minute; see Retry-After).
    """
    submission = services.submission_create(user=request.user, exercise_slug=payload.exercise, code=payload.code)
    return Status(201, {"id": submission.pk, "status": submission.status, "url": submission.get_absolute_url()})


@api.get(
    "/submissions",
    response={200: list[SubmissionOut], **ERRORS},
    tags=["submissions"],
    summary="Your latest submissions",
)
def list_submissions(
    request: HttpRequest,
    exercise: str | None = Query(None, max_length=100, description="Only this exercise's slug"),
    limit: int = Query(20, ge=1, le=100),
) -> list[dict[str, Any]]:
    submissions = selectors.submission_list_for_user(request.user, exercise_slug=exercise, limit=limit)
    return [_submission_out(submission) for submission in submissions]


@api.get(
    "/submissions/{submission_id}",
    response={200: SubmissionOut, **ERRORS},
    tags=["submissions"],
    summary="A submission's status and verdict",
)
def get_submission(request: HttpRequest, submission_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    """Status, stage, verdict, score and the result JSON. Only its author (or staff) sees it: 404 otherwise."""
    submission = selectors.submission_for_viewer(submission_id, request.user)
    if submission is None:
        raise HttpError(404, "No such submission.")
    return _submission_out(submission, selectors.queue_position(submission))


# --- Tokens ---------------------------------------------------------------------------


class ApiTokenOut(Schema):
    prefix: str = Field(..., description="The token's first characters (the secret itself is never shown again)")
    name: str
    state: str = Field(..., description="active, expired or revoked")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@api.get("/tokens", response={200: list[ApiTokenOut], **ERRORS}, tags=["tokens"], summary="Your API tokens")
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    """Every token of the signed-in user, newest first (make one with `manage.py api_token`)."""
    return list(ApiToken.objects.filter(user_id=int(request.user.pk or 0)).order_by("-created_at"))


@api.delete("/tokens/{prefix}", response={204: None, **ERRORS}, tags=["tokens"], summary="Revoke one of your tokens")
def revoke_token(request: HttpRequest, prefix: str = Path(..., min_length=6, max_length=12)) -> Status[None]:
    """Revoke the signed-in user's token with this prefix; 404 when there is none."""
    tokens = ApiToken.objects.filter(user_id=int(request.user.pk or 0), prefix=prefix)
    if not tokens.exists():
        raise HttpError(404, "No such token.")
    api_tokens_revoke(tokens)
    return Status(204, None)
