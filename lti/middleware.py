"""Gradlab inside an LMS iframe: framing by registered platforms only, and cookies that the iframe keeps.

For LTI pages (under /lti/) and for every page of a session that began with an LTI
launch, the response's Content-Security-Policy gets `frame-ancestors 'self'` plus the
origins of the registered platforms (of the launch's platform once known), instead
of the site-wide 'none', and no X-Frame-Options. Over HTTPS, the session and CSRF
cookies of those responses are SameSite=None; Secure, since the iframe is a
third-party context where SameSite=Lax cookies are not sent. Every other page keeps
the site's policy unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

SESSION_KEY = "lti"
LTI_PATH_PREFIX = "/lti/"


def with_directive(policy: str, name: str, value: str) -> str:
    """`policy` with directive `name` set to `value` (replaced if present, appended if not)."""
    directives = [part.strip() for part in policy.split(";") if part.strip()]
    kept = [part for part in directives if not re.match(rf"{re.escape(name)}(\s|$)", part)]
    kept.append(f"{name} {value}")
    return "; ".join(kept)


def _directive(policy: str, name: str) -> str:
    for raw in policy.split(";"):
        part = raw.strip()
        if re.match(rf"{re.escape(name)}(\s|$)", part):
            return part[len(name) :].strip()
    return ""


def frame_origins(platform_id: int | None) -> list[str]:
    """Origins allowed to frame Gradlab: the launch's platform, or every active platform when unknown."""
    from lti.models import Platform

    platforms = Platform.objects.filter(is_active=True)
    if platform_id is not None:
        platforms = platforms.filter(pk=platform_id)
    origins: set[str] = set()
    for platform in platforms:
        origins.update(platform.allowed_frame_origins())
    return sorted(origins)


class LtiEmbedMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        launch = session.get(SESSION_KEY) if session is not None else None
        if not request.path.startswith(LTI_PATH_PREFIX) and not launch:
            return response
        platform_id = launch.get("platform") if isinstance(launch, dict) else None
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            ancestors = " ".join(["'self'", *frame_origins(platform_id)])
            policy = with_directive(policy, "frame-ancestors", ancestors)
            form_target = getattr(response, "lti_form_action", "")
            if form_target:
                current = _directive(policy, "form-action") or "'self'"
                policy = with_directive(policy, "form-action", f"{current} {form_target}")
            response["Content-Security-Policy"] = policy
        if "X-Frame-Options" in response:
            del response["X-Frame-Options"]
        if request.is_secure():
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                if name in response.cookies:
                    response.cookies[name]["samesite"] = "None"
                    response.cookies[name]["secure"] = True
        return response
