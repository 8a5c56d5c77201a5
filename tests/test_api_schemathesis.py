"""Property-based tests of the JSON API from its own OpenAPI schema (schemathesis): no input makes it fail with 5xx.

Every operation of /api/openapi.json is called with generated parameters and bodies
(valid and invalid), as a token holder, through Django's WSGI application; each
response must be below 500. Wake-up messages are recorded, not sent.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from grader.auth import api_token_create
from grader.models import Exercise
from tests.submission_helpers import exercise_from_folder, no_enqueue  # noqa: F401 (an autouse fixture)

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (PyPI) generates the requests")

EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def exercise(db: None) -> Exercise:
    return exercise_from_folder("linear-backward")


@pytest.fixture
def wsgi_app():  # type: ignore[no-untyped-def]
    """Django's WSGI application, keeping the test's database connection open between requests
    (as django.test.Client does: the connection holds the test's transaction)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.once
def test_no_generated_request_makes_the_api_answer_5xx(learner: User, exercise: Exercise, settings, wsgi_app) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = 10_000
    _, token = api_token_create(learner)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /api/exercises",
        "POST /api/submissions",
        "GET /api/submissions/{submission_id}",
    }
    failures: list[str] = []
    statuses: set[int] = set()
    for operation in operations:

        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), use_token=st.booleans(), known_exercise=st.booleans())
        def call(case, use_token: bool, known_exercise: bool) -> None:  # type: ignore[no-untyped-def]
            if known_exercise and isinstance(case.body, dict) and "exercise" in case.body:
                # Random slugs never name an exercise; this reaches the code checks and the insert.
                case.body["exercise"] = "linear-backward"
            headers = {"Authorization": f"Bearer {token}"} if use_token else {}
            response = case.call(headers=headers)
            statuses.add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")

        call()
    assert failures == []
    assert {200, 201, 401} <= statuses  # the generated requests reached the real code paths
    assert any(400 <= status < 500 and status != 401 for status in statuses)
