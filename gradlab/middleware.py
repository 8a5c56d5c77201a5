"""Middleware of the site: response headers Django 5.2 does not set by itself, the health check,
which proxy to believe, and request limits answered the same way whatever DEBUG says."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    """Add the configured Content-Security-Policy header to every response that lacks one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class HealthCheckMiddleware:
    """Answer `GET /healthz` before host validation and the HTTPS redirect.

    Container health checks call it on 127.0.0.1 over plain HTTP. It returns 200
    "ok" when the database answers and 503 otherwise; it reveals nothing else.
    """

    path = "/healthz"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != self.path:
            return self.get_response(request)
        from django.db import DatabaseError, connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
        return HttpResponse("ok\n", content_type="text/plain")


FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")


def _networks(entries: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def address_in(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class TrustedProxyMiddleware:
    """Believe X-Forwarded-* only from settings.TRUSTED_PROXIES (the reverse proxy).

    From anyone else the headers are removed, so a client that reaches gunicorn directly cannot
    claim HTTPS (and skip the redirect) or another address (and dodge the log-in throttle). From
    the proxy, REMOTE_ADDR becomes the client's address: the last X-Forwarded-For entry, the one
    the proxy itself wrote.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.trusted = _networks(settings.TRUSTED_PROXIES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if address_in(meta.get("REMOTE_ADDR", ""), self.trusted):
            forwarded_for = meta.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
            if forwarded_for:
                try:
                    meta["REMOTE_ADDR"] = str(ipaddress.ip_address(forwarded_for))
                except ValueError:
                    pass
        else:
            for header in FORWARDED_HEADERS:
                meta.pop(header, None)
        return self.get_response(request)


class RequestLimitsMiddleware:
    """Refuse a body over DATA_UPLOAD_MAX_MEMORY_SIZE or a query over DATA_UPLOAD_MAX_NUMBER_FIELDS up front.

    The answer is the same whatever DEBUG says: 400 with `{"detail", "code"}` under /api/, the
    400 page elsewhere (gradlab/errors.py), instead of an exception raised deep inside a view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from gradlab.errors import bad_request

        problem: Exception | None = None
        length = request.META.get("CONTENT_LENGTH") or "0"
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.META.get("CONTENT_TYPE", "")
        if limit is not None and not content_type.startswith("multipart/"):
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = False
            if too_big:
                problem = RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        if problem is None:
            try:
                request.GET  # noqa: B018 - parsing the query string is the check
            except TooManyFieldsSent as error:
                problem = error
        if problem is not None:
            return bad_request(request, problem)
        return self.get_response(request)
