"""The staff's course pages on a 390px phone in Chromium, light and dark, with the real catalogue's long
item titles: the course page fits the screen (its new-assignment form grew to the longest title of an
item <select>), the invite links copy with one click, and the roster's rows stay a few lines tall (a time
squeezed into its column broke after every word). Screenshots: tests/screenshots/course-staff-*.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from courses.models import RosterInvitation
from tests.conftest import SCREENSHOTS
from tests.course_helpers import enroll, make_course, make_exercise

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LONG_TITLE = "Backward pass of multi-head self-attention with a causal mask and dropout"


@pytest.fixture
def phone(browser: Any, live_server: Any, instructor: User) -> Iterator[Any]:
    client = Client()
    client.force_login(instructor)
    context = browser.new_context(viewport=PHONE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    yield page
    context.close()


def _fits(page: Any) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_the_course_page_and_roster_fit_a_phone_and_copy_their_links(
    phone: Any, live_server: Any, instructor: User, learner: User
) -> None:
    exercise = make_exercise("multihead-attention-backward")
    exercise.title = LONG_TITLE
    exercise.save(update_fields=["title"])
    course = make_course(instructor)
    enroll(course, learner, *(User.objects.create_user(f"learner{n}", f"l{n}@example.org") for n in range(3)))
    invitation = RosterInvitation.objects.create(course=course, email="new@example.org", invited_by=instructor)
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.goto(live_server.url + course.get_absolute_url())
    assert LONG_TITLE in phone.inner_text("#item-1")
    for scheme in ("light", "dark"):
        phone.emulate_media(color_scheme=scheme)
        phone.screenshot(path=str(SCREENSHOTS / f"course-staff-course-{scheme}.png"), full_page=True)
        assert _fits(phone), scheme
    phone.click("button.link-copy[data-copy=invite-url]")
    phone.wait_for_function("() => document.querySelector('button.link-copy').textContent === 'Copied'")
    copied = phone.evaluate("() => navigator.clipboard.readText()")
    assert copied == f"{live_server.url}/courses/invite/{course.invite_token}/"

    phone.goto(f"{live_server.url}/courses/{course.slug}/roster/")
    for scheme in ("light", "dark"):
        phone.emulate_media(color_scheme=scheme)
        phone.screenshot(path=str(SCREENSHOTS / f"course-staff-roster-{scheme}.png"), full_page=True)
        assert _fits(phone), scheme
    heights = phone.evaluate(
        "() => [...document.querySelectorAll('[aria-labelledby=learners-title] tbody tr')]"
        ".map(row => row.getBoundingClientRect().height)"
    )
    assert len(heights) == 4 and max(heights) < 90, heights  # a row of at most three lines
    phone.click(f"button.link-copy[data-copy=invitation-{invitation.pk}]", force=True)
    phone.wait_for_function(
        f"() => document.querySelector('[data-copy=invitation-{invitation.pk}]').textContent === 'Copied'"
    )
    assert phone.evaluate("() => navigator.clipboard.readText()").endswith(f"/courses/invite/{invitation.token}/")
    assert phone.errors == []
