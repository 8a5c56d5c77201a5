"""The exercise change page in Chromium shows the validation outcome once the worker stores it, without a reload."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from grader.models import Exercise
from tests.submission_helpers import exercise_from_folder

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_pending_validation_outcome_appears_without_a_reload(logged_in_page, live_server, instructor: User) -> None:  # type: ignore[no-untyped-def]
    exercise = exercise_from_folder("linear-backward")
    Exercise.objects.filter(pk=exercise.pk).update(validation_status="pending", validation_report={})
    page, errors = logged_in_page(instructor, {"width": 1280, "height": 900})
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.goto(live_server.url + reverse("admin:grader_exercise_change", args=[exercise.pk]))
    block = page.locator(".validation-outcome")
    assert "Validating" in block.inner_text()
    page.evaluate("window.__sameDocument = true")
    # What the worker stores at the end of grader.validation.exercise_validate.
    Exercise.objects.filter(pk=exercise.pk).update(
        validation_status="invalid",
        validation_report={"ok": False, "outcomes": [{"name": "dw_transposed", "ok": False, "message": "accepted"}]},
    )
    page.wait_for_selector(".validation-outcome[data-validation-status='invalid']", timeout=10_000)
    assert "dw_transposed" in block.inner_text()
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    # Nothing fails, the icon neither: the admin names the site's (without it the browser asks for /favicon.ico).
    assert failed == [] and errors == []
    assert page.locator("link[rel=icon]").get_attribute("href").endswith("/img/favicon.svg")
    assert page.locator("#site-name").inner_text() == "Gradlab administration"
