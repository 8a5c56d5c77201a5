"""LTI 1.3 against a simulated LMS (tests/lti_platform.py): deep linking and roster sync (NRPS)."""

from __future__ import annotations

import json

import jwt
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from jwcrypto.jwk import JWK

from courses.models import Assignment, Course, CourseRole, CourseStaff, Enrollment
from grader.models import Exercise
from lti.models import LinkTarget, LtiContext, LtiIdentity, Platform
from tests.lti_helpers import (  # noqa: F401  (fixtures are found by name)
    assignment,
    fresh_cache,
    launch,
    linked,
    lms,
    registered,
    signed_in,
)
from tests.lti_platform import LTI, NRPS_SCOPE, ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_MENTOR, ROLE_TA, SimulatedPlatform

pytestmark = pytest.mark.django_db


# --- Deep linking -----------------------------------------------------------------------


def test_deep_linking_returns_a_signed_response_with_the_picked_items(
    client: Client, lms: SimulatedPlatform, registered: Platform, assignment: Assignment
) -> None:
    response = launch(client, lms, roles=[ROLE_INSTRUCTOR], message_type="LtiDeepLinkingRequest")
    assert response.status_code == 302 and response["Location"] == "/lti/deep-link/"
    user = LtiIdentity.objects.get().user
    CourseStaff.objects.create(course=assignment.course, user=user, role=CourseRole.INSTRUCTOR)
    picker = client.get("/lti/deep-link/", secure=True)
    assert picker.status_code == 200
    assert f'value="assignment:{assignment.pk}"'.encode() in picker.content
    assert b'value="exercise:linear-backward"' in picker.content
    other_course = Course.objects.create(slug="other", title="Not theirs")
    foreign = Assignment.objects.create(
        course=other_course, title="Foreign", opens_at=timezone.now(), due_at=timezone.now()
    )
    refused = client.post("/lti/deep-link/", {"item": f"assignment:{foreign.pk}"}, secure=True)
    assert refused.status_code == 400 and b"Unknown item" in refused.content
    answer = client.post(
        "/lti/deep-link/", {"item": [f"assignment:{assignment.pk}", "exercise:linear-backward"]}, secure=True
    )
    assert answer.status_code == 200
    assert f'action="{lms.url}/deep-link-return"'.encode() in answer.content
    assert f"form-action 'self' {lms.url}" in answer["Content-Security-Policy"]
    token = answer.content.decode().split('name="JWT" value="')[1].split('"')[0]
    gradlab_keys = {key["kid"]: key for key in client.get("/lti/jwks/").json()["keys"]}
    public = JWK.from_json(json.dumps(gradlab_keys[jwt.get_unverified_header(token)["kid"]])).export_to_pem()
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=lms.issuer)
    assert claims["iss"] == lms.client_id
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "deployment_id"] == lms.deployment_id
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-platform-data"
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [item["title"] for item in items] == [
        "Backprop homework",
        Exercise.objects.get(slug="linear-backward").title,
    ]
    assert items[0]["lineItem"] == {
        "scoreMaximum": 10.0,
        "label": "Backprop homework",
        "resourceId": f"gradlab-assignment-{assignment.pk}",
        "tag": "gradlab",
    }
    assert "lineItem" not in items[1]
    assert all(item["url"] == "https://testserver/lti/launch/" for item in items)
    target = LinkTarget.objects.get(token=items[0]["custom"]["gradlab_link"])
    assert target.assignment == assignment and target.platform == registered
    # The answer is given once per deep-linking launch.
    assert client.post("/lti/deep-link/", {"item": "exercise:linear-backward"}, secure=True).status_code == 400


def test_a_learner_cannot_deep_link(client: Client, lms: SimulatedPlatform, registered: Platform) -> None:
    response = launch(client, lms, roles=[ROLE_LEARNER], message_type="LtiDeepLinkingRequest")
    assert response.status_code == 403 and b"not_instructor" in response.content
    assert not signed_in(client)
    assert client.get("/lti/deep-link/", secure=True).status_code == 400


def test_the_picker_needs_its_csrf_token(lms: SimulatedPlatform, registered: Platform, assignment: Assignment) -> None:
    client = Client(enforce_csrf_checks=True)
    launch(client, lms, roles=[ROLE_INSTRUCTOR], message_type="LtiDeepLinkingRequest")
    response = client.post("/lti/deep-link/", {"item": "exercise:linear-backward"}, secure=True)
    assert response.status_code == 403


# --- Roster (NRPS) ------------------------------------------------------------------------


def test_roster_sync_enrolls_the_lms_members(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    assignment: Assignment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    launch(client, lms, roles=[ROLE_INSTRUCTOR], custom={"gradlab_link": linked.token})
    lms.members = [
        {"user_id": "lms-user-1", "roles": [ROLE_INSTRUCTOR], "status": "Active"},
        {"user_id": "s-1", "roles": [ROLE_LEARNER], "given_name": "Grace", "family_name": "Hopper"},
        {"user_id": "s-2", "roles": [ROLE_LEARNER], "status": "Active"},
        {"user_id": "t-1", "roles": [ROLE_TA], "status": "Active"},
        {"user_id": "s-3", "roles": [ROLE_LEARNER], "status": "Inactive"},
        {"user_id": "m-1", "roles": [ROLE_MENTOR], "status": "Active"},
    ]
    call_command("lti_roster_sync")
    out = capsys.readouterr().out
    assert "members=6 learners=2 staff=2 new_accounts=3 skipped=2" in out
    course = assignment.course
    learners = set(Enrollment.objects.filter(course=course).values_list("user__lti_identities__subject", flat=True))
    assert learners == {"s-1", "s-2"}
    assert CourseStaff.objects.get(user__lti_identities__subject="t-1").role == CourseRole.TEACHING_ASSISTANT
    assert User.objects.get(lti_identities__subject="s-1").first_name == "Grace"
    assert any(NRPS_SCOPE in request["scopes"] for request in lms.token_requests)
    # Syncing again changes nothing.
    call_command("lti_roster_sync")
    assert "new_accounts=0" in capsys.readouterr().out
    assert Enrollment.objects.filter(course=course).count() == 2


def test_the_roster_admin_action_reports_a_platform_that_is_down(
    client: Client, staff: User, lms: SimulatedPlatform, linked: LinkTarget
) -> None:
    launch(client, lms, roles=[ROLE_INSTRUCTOR], custom={"gradlab_link": linked.token})
    context = LtiContext.objects.get()
    context.memberships_url = f"{lms.url}/no-such-service"
    context.save()
    admin = Client()
    admin.force_login(staff)
    response = admin.post(
        "/admin/lti/lticontext/",
        {"action": "sync_roster", "_selected_action": [context.pk]},
        follow=True,
    )
    assert b"roster could not be read" in response.content
    context.refresh_from_db()
    assert "404" in context.last_roster_sync_report["error"]
