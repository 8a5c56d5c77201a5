"""The simulated LMS of the LTI tests (tests/lti_platform.py) registered with Gradlab, an assignment it
links to, and a launch through it: the fixtures and steps the tests of test_lti_*.py share.

A test module imports the fixtures it uses, and `fresh_cache`, which is autouse: JWKS and access
tokens are cached by URL, so a later test's LMS could get an earlier one's port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from courses.models import Assignment, AssignmentItem, Course
from lti import services
from lti.keys import jwks
from lti.models import Deployment, LinkTarget, Platform
from tests.lti_platform import SimulatedPlatform
from tests.submission_helpers import exercise_from_folder


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """JWKS and access tokens are cached by URL; a later test's LMS may get an earlier one's port."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def lms(db: None) -> Iterator[SimulatedPlatform]:
    platform = SimulatedPlatform(tool_jwks=jwks()).start()
    yield platform
    platform.stop()


@pytest.fixture
def registered(lms: SimulatedPlatform) -> Platform:
    platform = Platform.objects.create(
        name="Simulated Moodle",
        issuer=lms.issuer,
        client_id=lms.client_id,
        auth_login_url=f"{lms.url}/auth",
        auth_token_url=f"{lms.url}/token",
        jwks_url=f"{lms.url}/jwks",
        frame_origins="https://school.instructure.example",
    )
    Deployment.objects.create(platform=platform, deployment_id=lms.deployment_id)
    return platform


@pytest.fixture
def assignment(db: None) -> Assignment:
    course = Course.objects.create(slug="dl101", title="Deep Learning 101")
    now = timezone.now()
    homework = Assignment.objects.create(
        course=course, title="Backprop homework", opens_at=now - timedelta(days=1), due_at=now + timedelta(days=7)
    )
    AssignmentItem.objects.create(assignment=homework, kind="exercise", exercise=exercise_from_folder(), points=10)
    return homework


@pytest.fixture
def linked(registered: Platform, assignment: Assignment) -> LinkTarget:
    """The assignment as a deep link made earlier: what the LMS keeps is the link's token."""
    return LinkTarget.objects.create(
        token="tok-homework", platform=registered, kind="assignment", assignment=assignment
    )


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Outbox rows whose send task would be enqueued (tests call lti.services.score_send themselves)."""
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue_send", sent.append)
    return sent


def start_login(client: Client, lms: SimulatedPlatform, *, method: str = "get") -> dict[str, str]:
    """Third-party initiated login; returns the parameters Gradlab sent to the LMS's auth URL."""
    params = {
        "iss": lms.issuer,
        "login_hint": "opaque-hint",
        "target_link_uri": "https://testserver/lti/launch/",
        "client_id": lms.client_id,
        "lti_deployment_id": lms.deployment_id,
        "lti_message_hint": "message-hint",
    }
    response = getattr(client, method)("/lti/login/", params, secure=True)
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{lms.url}/auth"
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def launch(
    client: Client,
    lms: SimulatedPlatform,
    *,
    tamper: Callable[[dict[str, Any]], None] | None = None,
    sign: dict[str, str] | None = None,
    **claims: Any,
) -> Any:
    auth = start_login(client, lms)
    body = lms.claims(nonce=auth["nonce"], **claims)
    if tamper is not None:
        tamper(body)
    token = lms.sign(body, **(sign or {}))
    response = client.post("/lti/launch/", {"id_token": token, "state": auth["state"]}, secure=True)
    response.lti_post = {"id_token": token, "state": auth["state"]}
    return response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session
