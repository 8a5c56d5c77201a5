"""Error pages that say what went wrong: HTML for people, JSON under /api/.

Django's own 400 page is a bare "Bad Request"; the usual cause here is a request body
over DATA_UPLOAD_MAX_MEMORY_SIZE (a huge paste), which deserves a sentence.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


class Refused(Exception):
    """A refused request: nothing was changed.

    `code` is stable (API clients read it), `http_status` is what the API answers and `message`
    is one line for people. The apps' own refusals (a submission, a course action, a hint)
    subclass it, and the API answers all of them with one handler.
    """

    code = "invalid"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def bad_request_message(exception: Exception | None) -> str:
    """A sentence for the learner about why the request was refused."""
    if isinstance(exception, RequestDataTooBig):
        limit_mib = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        source_kib = settings.GRADER_MAX_SOURCE_BYTES // 1024
        return (
            f"The request was larger than {limit_mib:g} MiB, so it was not read. "
            f"A submission may hold at most {source_kib} KiB of code; your draft is still in the editor."
        )
    if isinstance(exception, TooManyFieldsSent):
        return (
            f"The request had more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} parameters, so it was not read. "
            "Reload the page and try again."
        )
    return "The request could not be understood. Reload the page and try again."


def bad_request_code(exception: Exception | None) -> str:
    """The stable `code` of the API's JSON errors for this refusal."""
    if isinstance(exception, RequestDataTooBig):
        return "request_too_large"
    if isinstance(exception, TooManyFieldsSent):
        return "too_many_parameters"
    return "bad_request"


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = bad_request_message(exception)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": bad_request_code(exception)}, status=400)
    return render(request, "400.html", {"message": message}, status=400)
