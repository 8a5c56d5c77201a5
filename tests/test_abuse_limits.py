"""Abuse limits that hold under concurrency and in exports: the atomic submission rate limit and
CSV cells escaped against formula injection (issue 14)."""

from __future__ import annotations

import csv
import io
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client

from grader import services
from grader.models import Submission, SubmissionStatus
from gradlab.csvsafe import csv_cell
from tests.submission_helpers import exercise_from_folder, no_enqueue  # noqa: F401 (a fixture used below)

CONCURRENT = 30
LIMIT = 20


@pytest.mark.django_db(transaction=True)
def test_thirty_concurrent_submissions_store_exactly_the_limit(
    settings: Any,
    learner: User,
    no_enqueue: list[int],
) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = LIMIT
    exercise_from_folder("linear-backward")
    barrier = threading.Barrier(CONCURRENT)
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit() -> None:
        try:
            barrier.wait(timeout=30)
            try:
                services.submission_create(user=learner, exercise_slug="linear-backward", code="def f():\n    pass\n")
                outcome = "stored"
            except services.RateLimited as error:
                assert error.http_status == 429 and error.retry_after_s >= 1
                outcome = "429"
            with lock:
                outcomes.append(outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["429"] * (CONCURRENT - LIMIT) + ["stored"] * LIMIT, connection.vendor
    assert Submission.objects.filter(user=learner).count() == LIMIT
    attempts = sorted(Submission.objects.filter(user=learner).values_list("attempt", flat=True))
    assert attempts == list(range(1, LIMIT + 1))


def test_cells_a_spreadsheet_would_run_are_escaped_and_numbers_are_kept() -> None:
    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert [csv_cell(v) for v in ("+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx")] == [
        "'+1+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [csv_cell(v) for v in ("-0.5", "-3", "ada", "", 7, -1.5, None)] == ["-0.5", "-3", "ada", "", 7, -1.5, None]


@pytest.mark.django_db
def test_a_username_like_a_formula_is_text_in_the_incidents_csv(staff: User) -> None:
    exercise = exercise_from_folder("linear-backward")
    names = ["=cmd|' /C calc'!A0", "+SUM(1)", "@HYPERLINK(1)", "-1+1"]
    for name in names:
        user = User.objects.create_user(username=name.replace(" ", "").replace("|", "").replace("!", "")[:30])
        Submission.objects.create(
            user=user, exercise=exercise, code="pass", status=SubmissionStatus.GRADED, verdict="forbidden"
        )
    client = Client()
    client.force_login(staff)
    response = client.get("/dashboard/incidents.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    cells = [cell for row in rows[1:] for cell in row]
    stored = set(User.objects.exclude(pk=staff.pk).values_list("username", flat=True))
    assert stored and all(f"'{name}" in cells for name in stored)
    assert not [cell for cell in cells if cell[:1] in {"=", "+", "@"}]
