"""In Chromium: the hint ladder opens in place, one rung at a time, with its math; a learner resets a
forgotten password through the emailed link and changes it from the account page."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from grader.models import HintReveal
from lessons.models import Lesson
from tests.conftest import PASSWORD
from tests.submission_helpers import exercise_from_folder

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 15_000
NEW_PASSWORD = "a-brand-new-passphrase-77"


def logged_in_page(browser: Any, live_server: Any, user: User) -> tuple[Any, list[str]]:
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return page, errors


def test_hints_open_one_at_a_time_in_place_with_their_math(browser: Any, live_server: Any, learner: User) -> None:
    Lesson.objects.create(slug="backpropagation", title="Backpropagation", question="?")
    exercise = exercise_from_folder("linear-backward")
    page, errors = logged_in_page(browser, live_server, learner)
    page.goto(f"{live_server.url}/exercises/linear-backward/")
    page.evaluate("window.samePage = true")
    assert page.locator(".hint.is-revealed").count() == 0
    page.click("text=Show hint 1")
    page.wait_for_selector('.hint.is-revealed[data-level="1"] .katex', timeout=WAIT_MS)
    assert page.locator(".hint.is-revealed").count() == 1
    assert page.is_visible("text=Show hint 2") and not page.is_visible("text=Show hint 3")
    page.click("text=Show hint 2")
    page.wait_for_selector('.hint.is-revealed[data-level="2"]', timeout=WAIT_MS)
    assert page.evaluate("window.samePage") is True  # swapped in place, no page load
    assert list(HintReveal.objects.filter(user=learner, exercise=exercise).values_list("level", flat=True)) == [1, 2]
    page.reload()
    assert page.locator(".hint.is-revealed").count() == 2  # remembered
    assert errors == []


def test_a_forgotten_password_is_reset_by_email_and_changed_from_the_account_page(
    browser: Any, live_server: Any, learner: User
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("text=Forgot your password?")
    page.fill("input[name=email]", learner.email)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Check your email")
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/password/reset/\S+/", mail.outbox[0].body)
    assert link is not None
    page.goto(link.group(0))
    page.fill("input[name=new_password1]", NEW_PASSWORD)
    page.fill("input[name=new_password2]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Your password is set")
    page.click("main a.btn-primary")
    page.fill("input[name=username]", learner.username)
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector('button:has-text("Log out")')
    page.goto(f"{live_server.url}/accounts/")
    assert learner.username in page.inner_text("main")
    page.click("text=Change your password")
    page.fill("input[name=old_password]", NEW_PASSWORD)
    page.fill("input[name=new_password1]", PASSWORD + "-again")
    page.fill("input[name=new_password2]", PASSWORD + "-again")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Password changed")
    assert Client().login(username=learner.username, password=PASSWORD + "-again")
    context.close()
