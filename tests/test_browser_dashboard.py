"""The dashboard in headless Chromium: chart drawn, live panel loaded, no script or CSP error; screenshots.

Data: 800 generated submissions over 30 days (bench/dashboard_data.py). Screenshots
go to tests/screenshots/ (git-ignored), desktop and phone.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.conftest import SCREENSHOTS

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history(db: None, settings: Any) -> int:
    from bench.dashboard_data import generate

    settings.DASHBOARD_CACHE_S = 0
    return generate(total=800, days=30, seed=1)


def test_staff_see_the_dashboard_with_its_chart_in_chromium(
    logged_in_page: Any, live_server: Any, staff: User, history: int
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors = logged_in_page(staff, DESKTOP)
    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_function(
        "() => window.Chart && window.Chart.getChart(document.getElementById('daily-chart'))", timeout=WAIT_MS
    )
    bars = page.evaluate(
        "() => window.Chart.getChart(document.getElementById('daily-chart')).data.datasets[0].data.reduce((a, b) => a + b, 0)"
    )
    assert bars > 0
    page.wait_for_selector("#live[data-loaded='true']", timeout=WAIT_MS)
    live_text = page.inner_text("#live")
    assert any(text in live_text for text in ("message", "Unavailable")), live_text
    assert any(text in live_text for text in ("celery@", "No worker answered", "Unavailable")), live_text
    assert page.inner_text("h1") == "Dashboard"
    assert page.locator(".dash-table tbody tr").count() > 12
    page.screenshot(path=str(SCREENSHOTS / "dashboard-desktop.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-desktop-top.png"))
    page.locator("section[aria-labelledby='exercises-title']").screenshot(
        path=str(SCREENSHOTS / "dashboard-exercises.png")
    )
    page.locator(".dash-columns").screenshot(path=str(SCREENSHOTS / "dashboard-diagnoses-latency.png"))
    assert errors == []


def test_the_dashboard_fits_a_phone_screen(logged_in_page: Any, live_server: Any, staff: User, history: int) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page, errors = logged_in_page(staff, PHONE)
    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_selector("#live[data-loaded='true']", timeout=WAIT_MS)
    # Wide tables scroll inside their card; the page itself never scrolls sideways.
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone-top.png"))
    assert errors == []


def test_a_learner_sees_their_progress_page_in_chromium(
    logged_in_page: Any, live_server: Any, learner: User, history: int
) -> None:
    from grader.models import Exercise, Submission

    exercise = Exercise.objects.first()
    assert exercise is not None
    for verdict in ("wrong_answer", "accepted"):
        Submission.objects.create(user=learner, exercise=exercise, code="x", verdict=verdict, status="graded")
    page, errors = logged_in_page(learner, PHONE)
    page.goto(f"{live_server.url}/progress/")
    assert page.locator(".submission-links a").count() == 2
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(SCREENSHOTS / "progress-phone.png"), full_page=True)
    assert errors == []
