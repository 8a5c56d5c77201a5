"""A huge paste gets a sentence, not a bare "Bad Request", and stores nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from grader.models import Submission
from tests.submission_helpers import exercise_from_folder, no_enqueue  # noqa: F401 (an autouse fixture)

pytestmark = pytest.mark.django_db

FIVE_MB = "x = 1\n" * 900_000
TWELVE_MB = "x = 1\n" * 2_100_000


@pytest.fixture
def client(learner: User) -> Client:
    exercise_from_folder("linear-backward")
    client = Client()
    client.force_login(learner)
    return client


def test_a_five_megabyte_paste_in_the_form_is_refused_with_its_size(client: Client) -> None:
    response = client.post("/exercises/linear-backward/", {"code": FIVE_MB})
    assert response.status_code in {400, 413}
    assert "the limit is 64 KiB" in response.content.decode()
    assert Submission.objects.count() == 0


def test_a_five_megabyte_paste_through_the_api_is_a_json_error(client: Client) -> None:
    response = client.post(
        "/api/submissions", {"exercise": "linear-backward", "code": FIVE_MB}, content_type="application/json"
    )
    assert 400 <= response.status_code < 500
    assert "the limit is 64 KiB" in response.json()["detail"]
    assert Submission.objects.count() == 0


def test_a_body_over_the_upload_limit_gets_a_page_that_says_so(client: Client) -> None:
    response = client.post("/exercises/linear-backward/", {"code": TWELVE_MB})
    assert response.status_code == 400
    html = response.content.decode()
    assert "larger than 8 MiB" in html
    assert "your draft is still in the editor" in html
    assert Submission.objects.count() == 0


def test_a_body_over_the_upload_limit_through_the_api_is_json(client: Client) -> None:
    response = client.post(
        "/api/submissions", {"exercise": "linear-backward", "code": TWELVE_MB}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "larger than 8 MiB" in response.json()["detail"]
