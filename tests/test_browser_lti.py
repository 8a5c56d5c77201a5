"""LTI pages in Chromium: the configuration page (copy button), the deep-linking picker and a refused
launch, on a desktop in light mode and a phone in dark mode; screenshots in tests/screenshots/."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from courses.models import Assignment, Course, CourseRole, CourseStaff
from lti.models import Deployment, Platform
from lti.views import DEEP_LINK_SESSION_KEY
from tests.conftest import SCREENSHOTS
from tests.submission_helpers import exercise_from_folder

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWS = [
    ("desktop-light", {"width": 1280, "height": 900}, "light"),
    ("phone-dark", {"width": 390, "height": 844}, "dark"),
]


def test_the_lti_pages_read_well_and_the_copy_button_copies(browser, live_server, staff: User) -> None:  # type: ignore[no-untyped-def]
    platform = Platform.objects.create(
        name="University Canvas",
        issuer="https://canvas.instructure.com",
        client_id="10000000000123",
        auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
        auth_token_url="https://sso.canvaslms.com/login/oauth2/token",
        jwks_url="https://sso.canvaslms.com/api/lti/security/jwks",
    )
    Deployment.objects.create(platform=platform, deployment_id="12:8865aa05b4b79b64a91a86042e43af5ea8ae79eb")
    course = Course.objects.create(slug="dl101", title="Deep Learning 101")
    CourseStaff.objects.create(course=course, user=staff, role=CourseRole.INSTRUCTOR)
    now = timezone.now()
    Assignment.objects.create(course=course, title="Backprop homework", opens_at=now, due_at=now + timedelta(days=7))
    exercise_from_folder()
    client = Client()
    client.force_login(staff)
    session = client.session
    session[DEEP_LINK_SESSION_KEY] = {
        "platform": platform.pk,
        "deployment_id": "12:8865aa05b4b79b64a91a86042e43af5ea8ae79eb",
        "settings": {"deep_link_return_url": "https://school.instructure.com/return", "accept_multiple": True},
        "course": course.pk,
    }
    session.save()
    for name, viewport, scheme in VIEWS:
        context = browser.new_context(viewport=viewport, color_scheme=scheme)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)

        page.goto(f"{live_server.url}/lti/config/")
        page.get_by_text("University Canvas").wait_for()
        page.locator(".lti-copy").last.click()
        page.get_by_text("Copied").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == f"{live_server.url}/lti/jwks/"
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
        page.screenshot(path=str(SCREENSHOTS / f"lti-config-{name}.png"), full_page=True)

        page.goto(f"{live_server.url}/lti/deep-link/")
        page.get_by_text("Backprop homework").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
        page.screenshot(path=str(SCREENSHOTS / f"lti-picker-{name}.png"), full_page=True)

        page.goto(f"{live_server.url}/lti/login/?iss=https://unknown.example&login_hint=x")
        page.get_by_text("No LMS with issuer").wait_for()
        page.screenshot(path=str(SCREENSHOTS / f"lti-refused-{name}.png"), full_page=True)
        assert [e for e in errors if "403" not in e] == []  # the refused page itself is a 403
        context.close()
