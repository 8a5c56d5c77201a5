"""The JSON API (grader/api.py): exercises, submissions, bearer tokens, session + CSRF, clear 4xx errors."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from grader import services
from grader.auth import api_token_create
from grader.models import ApiToken, Exercise, Submission
from tests.submission_helpers import exercise_from_folder, no_enqueue, solution  # noqa: F401 (an autouse fixture)


@pytest.fixture
def exercise(db: None) -> Exercise:
    return exercise_from_folder("linear-backward")


def bearer(user: User) -> Client:
    _, token = api_token_create(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def post_json(client: Client, path: str, data: object, **headers: str):
    return client.post(path, data=json.dumps(data), content_type="application/json", **headers)


def submit_payload(code: str | None = None, exercise: str = "linear-backward") -> dict[str, str]:
    return {"exercise": exercise, "code": solution() if code is None else code}


# --- Exercises ---------------------------------------------------------------------------


def test_anyone_can_list_the_active_exercises(client: Client, exercise: Exercise) -> None:
    Exercise.objects.create(
        slug="retired", title="Old", function_name="f", signature="f()", statement_md="", starter_code="",
        reference_solution="", is_active=False,
    )  # fmt: skip
    response = client.get("/api/exercises")
    assert response.status_code == 200
    assert [item["slug"] for item in response.json()] == ["linear-backward"]
    item = response.json()[0]
    assert item["function"] == "linear_backward"
    assert item["signature"].startswith("linear_backward(dout, x, w, b)")
    assert item["url"] == "/exercises/linear-backward/"


def test_one_exercise_comes_with_its_statement_and_starter_code_and_an_unknown_one_is_404(
    client: Client, exercise: Exercise
) -> None:
    response = client.get("/api/exercises/linear-backward")
    assert response.status_code == 200
    assert "def linear_backward" in response.json()["starter_code"]
    assert exercise.reference_solution.strip() not in json.dumps(response.json())  # the answer stays on the server
    missing = client.get("/api/exercises/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "There is no exercise 'nope'.", "code": "not_found"}


# --- Submitting ---------------------------------------------------------------------------


def test_a_token_holder_submits_and_gets_201_with_the_id_and_status(
    learner: User, exercise: Exercise, no_enqueue: list[int], django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(bearer(learner), "/api/submissions", submit_payload())
    assert response.status_code == 201
    body = response.json()
    submission = Submission.objects.get()
    assert body == {"id": submission.pk, "status": "queued", "url": f"/submissions/{submission.pk}/"}
    assert submission.user == learner
    assert no_enqueue == [submission.pk]


def test_a_request_without_credentials_gets_401_json(client: Client, exercise: Exercise) -> None:
    response = post_json(client, "/api/submissions", submit_payload())
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Submission.objects.count() == 0


@pytest.mark.parametrize("header", ["Bearer glb_not-a-real-token", "Bearer ", "Token abc", "Basic Zm9vOmJhcg=="])
def test_a_wrong_or_malformed_token_gets_401_even_with_a_session(
    learner: User, exercise: Exercise, header: str
) -> None:
    client = Client()
    client.force_login(learner)
    response = post_json(client, "/api/submissions", submit_payload(), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert Submission.objects.count() == 0


def test_a_session_request_needs_the_csrf_token(learner: User, exercise: Exercise) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    refused = post_json(client, "/api/submissions", submit_payload())
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert "CSRF" in refused.json()["detail"]
    assert Submission.objects.count() == 0

    client.get("/exercises/linear-backward/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = post_json(client, "/api/submissions", submit_payload(), HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (submit_payload("x" * (64 * 1024 + 1)), 413, "code_too_large"),
        (submit_payload("  \n"), 400, "code_empty"),
        (submit_payload("x = '\ud800'"), 400, "code_not_utf8"),
        (submit_payload(exercise="no-such-thing"), 404, "unknown_exercise"),
        (submit_payload(exercise="linear-backward\u0000"), 404, "unknown_exercise"),
        ({"exercise": "linear-backward"}, 422, "invalid_request"),
        ({"exercise": 5, "code": ["not", "text"]}, 422, "invalid_request"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    learner: User, exercise: Exercise, payload: dict, status: int, code: str
) -> None:
    response = post_json(bearer(learner), "/api/submissions", payload)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert Submission.objects.count() == 0


def test_a_body_that_is_not_json_gets_a_4xx(learner: User, exercise: Exercise) -> None:
    response = bearer(learner).post("/api/submissions", data=b"\xff{not json", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert Submission.objects.count() == 0


def test_too_many_submissions_get_429_with_retry_after(learner: User, exercise: Exercise, settings) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = 2
    client = bearer(learner)
    for _ in range(2):
        assert post_json(client, "/api/submissions", submit_payload()).status_code == 201
    response = post_json(client, "/api/submissions", submit_payload())
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Submission.objects.count() == 2


# --- Reading submissions ---------------------------------------------------------------------


def test_the_author_reads_status_stage_and_queue_position(learner: User, exercise: Exercise) -> None:
    client = bearer(learner)
    first = post_json(client, "/api/submissions", submit_payload()).json()["id"]
    second = post_json(client, "/api/submissions", submit_payload()).json()["id"]
    body = client.get(f"/api/submissions/{second}").json()
    assert body["status"] == "queued"
    assert body["stage"] == "queued"
    assert body["queue_position"] == 2
    assert body["verdict"] is None
    assert body["result"] == {}
    assert body["attempt"] == 2
    assert client.get(f"/api/submissions/{first}").json()["queue_position"] == 1
    listed = client.get("/api/submissions?exercise=linear-backward").json()
    assert [item["id"] for item in listed] == [second, first]


@pytest.mark.sandbox
def test_a_graded_submission_reads_with_its_verdict_score_and_result(learner: User, exercise: Exercise) -> None:
    client = bearer(learner)
    submission_id = post_json(client, "/api/submissions", submit_payload()).json()["id"]
    services.submission_grade(submission_id)
    body = client.get(f"/api/submissions/{submission_id}").json()
    assert (body["status"], body["verdict"], body["score"]) == ("graded", "accepted", 1.0)
    assert body["result"]["verdict"] == "accepted"
    assert body["result"]["training"]["reference_loss"]
    assert body["queue_position"] is None
    assert body["isolation"]


def test_others_get_404_for_a_submission_and_staff_can_read_it(
    learner: User, other_learner: User, staff: User, exercise: Exercise
) -> None:
    submission_id = post_json(bearer(learner), "/api/submissions", submit_payload()).json()["id"]
    other = bearer(other_learner)
    assert other.get(f"/api/submissions/{submission_id}").status_code == 404
    assert other.get("/api/submissions").json() == []
    assert bearer(staff).get(f"/api/submissions/{submission_id}").status_code == 200
    assert Client().get(f"/api/submissions/{submission_id}").status_code == 401


@pytest.mark.parametrize("path_id", ["0", "-1", str(2**70), "abc"])
def test_an_impossible_submission_id_is_a_4xx_not_a_crash(learner: User, path_id: str) -> None:
    response = bearer(learner).get(f"/api/submissions/{path_id}")
    assert 400 <= response.status_code < 500


# --- Tokens -----------------------------------------------------------------------------------


def test_api_token_prints_only_the_token_and_stores_only_its_hash(learner: User) -> None:
    out = io.StringIO()
    call_command("api_token", "ada", stdout=out)
    token = out.getvalue().strip()
    assert token.startswith("glb_") and "\n" not in token and len(token) > 40
    row = ApiToken.objects.get()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.prefix, row.token_hash, row.name}
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/submissions")
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_api_token_refuses_an_unknown_user(db: None) -> None:
    with pytest.raises(CommandError, match="no user"):
        call_command("api_token", "nobody")


def test_a_token_of_a_deactivated_user_no_longer_works(learner: User, exercise: Exercise) -> None:
    client = bearer(learner)
    User.objects.filter(pk=learner.pk).update(is_active=False)
    assert client.get("/api/submissions").status_code == 401


# --- Schema and docs ----------------------------------------------------------------------------


def test_the_openapi_schema_describes_the_endpoints_and_both_authentications(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    assert {"/api/exercises", "/api/submissions", "/api/submissions/{submission_id}"} <= set(schema["paths"])
    assert set(schema["components"]["securitySchemes"]) == {"BearerTokenAuth", "SessionCookieAuth"}
    post = schema["paths"]["/api/submissions"]["post"]
    assert {"201", "401", "413", "429"} <= set(post["responses"])


def test_the_docs_page_loads_swagger_ui_from_this_site_only(client: Client, db: None) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "script-src 'self'" in response["Content-Security-Policy"]
