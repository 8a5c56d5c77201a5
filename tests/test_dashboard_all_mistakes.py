""" "What learners get wrong" lists every named mistake of an exercise, and the page and its CSV agree."""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.views import DIAGNOSES_SHOWN
from grader.models import Exercise, SubmissionDiagnosis
from tests.conftest import SCREENSHOTS
from tests.course_helpers import graded_submission, make_exercise

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# (output, mistake) -> how many wrong answers got it: 7 named pairs and "unknown", the most frequent of all.
DIAGNOSES = {
    ("dw", "transposed"): 6,
    ("dx", "transposed"): 5,
    ("db", "bias_not_summed"): 4,
    ("dw", "sign_flipped"): 3,
    ("dx", "scaled_by_n"): 3,
    ("dw", "scaled_by_n"): 2,
    ("dx", "sign_flipped"): 1,
    ("dw", "unknown"): 9,
}
# Named first, most frequent first (ties by mistake, then output), "unknown" last.
EXPECTED_ORDER = [
    ("dw", "transposed", 6),
    ("dx", "transposed", 5),
    ("db", "bias_not_summed", 4),
    ("dx", "scaled_by_n", 3),
    ("dw", "sign_flipped", 3),
    ("dw", "scaled_by_n", 2),
    ("dx", "sign_flipped", 1),
    ("dw", "unknown", 9),
]


@pytest.fixture(autouse=True)
def _no_figure_cache(settings: Any) -> None:
    settings.DASHBOARD_CACHE_S = 0


def _wrong_answers(learner: User, exercise: Exercise) -> None:
    """Nine wrong answers; answer n gets every pair whose count is above n."""
    now = timezone.now()
    for n in range(max(DIAGNOSES.values())):
        submission = graded_submission(learner, exercise, at=now - timedelta(minutes=n + 1), score=0.5)
        diagnosis = [{"output": o, "mistake": m} for (o, m), count in DIAGNOSES.items() if count > n]
        SubmissionDiagnosis.store_for(submission.pk, "wrong_answer", {"diagnosis": diagnosis})


@pytest.fixture
def many_mistakes(db: None, learner: User) -> Exercise:
    exercise = make_exercise()
    _wrong_answers(learner, exercise)
    # A second exercise with two diagnoses: no "show all" for it.
    other = make_exercise("relu-backward")
    submission = graded_submission(learner, other, at=timezone.now() - timedelta(minutes=1), score=0.5)
    SubmissionDiagnosis.store_for(
        submission.pk, "wrong_answer", {"diagnosis": [{"output": "dx", "mistake": "sign_flipped"}]}
    )
    return exercise


class _Chips(HTMLParser):
    """(exercise, output, mistake, count, behind "show all") of every diagnosis chip of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.exercise = ""
        self.in_more = False
        self.chips: list[tuple[str, str, str, int, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "li" and values.get("data-exercise"):
            self.exercise = values["data-exercise"] or ""
        if tag == "details" and "diag-more" in (values.get("class") or ""):
            self.in_more = True
        if tag == "span" and "diag-chip" in (values.get("class") or "").split():
            chip = (self.exercise, values["data-output"] or "", values["data-mistake"] or "")
            self.chips.append((*chip, int(values["data-count"] or 0), self.in_more))

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.in_more = False


def _page_chips(client: Client) -> list[tuple[str, str, str, int, bool]]:
    page = client.get(reverse("dashboard"), {"days": "7"})
    assert page.status_code == 200
    parser = _Chips()
    parser.feed(page.content.decode())
    return parser.chips


def _csv_rows(client: Client) -> list[tuple[str, str, str, int]]:
    response = client.get(reverse("dashboard_csv", args=["diagnoses"]), {"days": "7"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["exercise", "output", "mistake", "wrong_answers"]
    return [(row[0], row[1], row[2], int(row[3])) for row in rows[1:]]


@pytest.mark.django_db
def test_every_named_mistake_is_listed_before_unknown_and_the_page_agrees_with_the_csv(
    instructor: User, many_mistakes: Exercise
) -> None:
    client = Client()
    client.force_login(instructor)
    chips = _page_chips(client)
    linear = [(o, m, n) for exercise, o, m, n, _ in chips if exercise == "linear-backward"]
    assert linear == EXPECTED_ORDER
    # The first DIAGNOSES_SHOWN show at once, the others behind "show all".
    hidden = [more for exercise, *_, more in chips if exercise == "linear-backward"]
    assert hidden == [False] * DIAGNOSES_SHOWN + [True] * (len(EXPECTED_ORDER) - DIAGNOSES_SHOWN)
    assert [more for exercise, *_, more in chips if exercise == "relu-backward"] == [False]
    text = client.get(reverse("dashboard"), {"days": "7"}).content.decode()
    assert text.count("Show all") == 1 and f"Show all {len(EXPECTED_ORDER)}" in text
    assert _csv_rows(client) == [(exercise, o, m, n) for exercise, o, m, n, _ in chips]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_show_all_opens_the_rest_of_the_mistakes_in_chromium(
    logged_in_page: Any, live_server: Any, instructor: User, many_mistakes: Exercise
) -> None:
    page, errors = logged_in_page(instructor, {"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/dashboard/?days=7")
    item = page.locator(".diag-list li[data-exercise='linear-backward']")
    hidden_chip = item.locator(".diag-more .diag-chip").first
    assert item.locator(".diag-chip:visible").count() == DIAGNOSES_SHOWN
    assert not hidden_chip.is_visible()
    item.get_by_text(f"Show all {len(EXPECTED_ORDER)}").click()
    hidden_chip.wait_for(state="visible")
    assert item.locator(".diag-chip:visible").count() == len(EXPECTED_ORDER)
    assert "unknown" in item.locator(".diag-chip").last.inner_text()
    page.locator("section[aria-labelledby='diagnoses-title']").screenshot(
        path=str(SCREENSHOTS / "dashboard-all-mistakes.png")
    )
    assert [error for error in errors if "favicon" not in error] == []
