"""LTI 1.3 against a simulated LMS (tests/lti_platform.py): registration, launches good and bad,
framing and cookies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from courses.models import Assignment, AssignmentScore, CourseRole, CourseStaff, Enrollment
from grader.models import Submission
from lti.keys import key_current, key_rotate
from lti.models import LinkTarget, LtiContext, LtiIdentity, Platform, ResourceLink, ScoreOutbox, UsedNonce
from tests.lti_helpers import (  # noqa: F401  (fixtures are found by name)
    assignment,
    enqueued,
    fresh_cache,
    launch,
    linked,
    lms,
    registered,
    signed_in,
    start_login,
)
from tests.lti_platform import LTI, ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_MENTOR, ROLE_TA, SimulatedPlatform, new_rsa_key

pytestmark = pytest.mark.django_db


# --- Registration -----------------------------------------------------------------


def test_the_jwks_serves_the_current_and_the_previous_key_after_a_rotation(client: Client) -> None:
    first = key_current().kid
    assert [key["kid"] for key in client.get("/lti/jwks/").json()["keys"]] == [first]
    second = key_rotate().kid
    third = key_rotate().kid
    keys = client.get("/lti/jwks/").json()["keys"]
    assert [key["kid"] for key in keys] == [third, second]  # the first is retired
    assert all(key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key for key in keys)
    assert first not in {key["kid"] for key in keys}


def test_the_key_command_rotates(capsys: pytest.CaptureFixture[str]) -> None:
    old = key_current().kid
    call_command("lti_key", "rotate")
    out = capsys.readouterr().out
    assert f"{old}\tprevious" in out and key_current().kid in out and key_current().kid != old


def test_the_platform_command_adds_lists_and_removes(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = [
        "--issuer=https://canvas.instructure.com",
        "--client-id=10000000000001",
        "--deployment-id=1:abc",
        "--auth-url=https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--token-url=https://sso.canvaslms.com/login/oauth2/token",
        "--jwks-url=https://sso.canvaslms.com/api/lti/security/jwks",
    ]
    call_command("lti_platform", "add", *arguments)
    call_command("lti_platform", "add", *arguments[:2], "--deployment-id=2:def", *arguments[3:])
    platform = Platform.objects.get(client_id="10000000000001")
    assert sorted(platform.deployments.values_list("deployment_id", flat=True)) == ["1:abc", "2:def"]
    call_command("lti_platform", "list")
    assert "client_id=10000000000001\tdeployments=1:abc, 2:def" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--auth-url: Enter a valid URL"):
        call_command("lti_platform", "add", *arguments[:3], "--auth-url=not a url", *arguments[4:])
    call_command("lti_platform", "remove", "--issuer=https://canvas.instructure.com", "--client-id=10000000000001")
    assert not Platform.objects.exists()


def test_the_config_page_shows_what_to_paste_to_staff_only(client: Client, staff: User, learner: User) -> None:
    client.force_login(learner)
    assert client.get("/lti/config/").status_code == 302  # to the admin login
    client.force_login(staff)
    response = client.get("/lti/config/", secure=True)
    for url in ("/lti/login/", "/lti/launch/", "/lti/jwks/", "/lti/deep-link/"):
        assert f"https://testserver{url}".encode() in response.content
    assert b"lti-copy" in response.content and b"js/lti.js" in response.content


# --- Launches -----------------------------------------------------------------------


def test_the_login_works_by_get_and_post_and_asks_the_lms_for_an_id_token(
    client: Client, lms: SimulatedPlatform, registered: Platform
) -> None:
    for method in ("get", "post"):
        auth = start_login(client, lms, method=method)
        assert auth["redirect_uri"] == "https://testserver/lti/launch/"
        assert auth["client_id"] == lms.client_id and auth["login_hint"] == "opaque-hint"
        assert auth["response_type"] == "id_token" and auth["scope"] == "openid" and auth["prompt"] == "none"
        assert auth["lti_message_hint"] == "message-hint" and auth["nonce"] and auth["state"]
    state_cookie = client.cookies[f"lti1p3-{auth['state']}"]
    assert state_cookie["samesite"] == "None" and state_cookie["secure"]


def test_a_learner_launch_signs_in_enrolls_and_lands_on_the_assignment(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget, assignment: Assignment
) -> None:
    response = launch(client, lms, custom={"gradlab_link": linked.token})
    assert response.status_code == 302
    assert response["Location"] == assignment.get_absolute_url()
    identity = LtiIdentity.objects.get(issuer=lms.issuer, subject="lms-user-1")
    user = identity.user
    assert int(client.session["_auth_user_id"]) == user.pk
    assert (user.first_name, user.last_name, user.has_usable_password()) == ("Ada", "Lovelace", False)
    assert Enrollment.objects.filter(course=assignment.course, user=user).exists()
    assert not CourseStaff.objects.filter(user=user).exists()
    link = ResourceLink.objects.get(resource_link_id="link-1")
    assert link.target == linked and link.lineitem_url == lms.lineitem_url(1)
    assert LtiContext.objects.get(context_id=lms.context_id).course == assignment.course
    # The session cookie set by the launch works inside the LMS iframe.
    for name in ("sessionid", "csrftoken"):
        assert response.cookies[name]["samesite"] == "None" and response.cookies[name]["secure"], name
    # A second launch (a new login) finds the same account.
    launch(client, lms, custom={"gradlab_link": linked.token})
    assert LtiIdentity.objects.count() == 1 and User.objects.filter(username__startswith="lti-").count() == 1


def test_a_learner_enrolled_by_a_launch_has_earlier_work_counted_and_sent_to_the_lms(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    assignment: Assignment,
    enqueued: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Work the account did inside the assignment's window before this course enrolled it counts at once."""
    launch(client, lms, custom={"gradlab_link": linked.token})
    user = LtiIdentity.objects.get(issuer=lms.issuer, subject="lms-user-1").user
    # Nothing done yet: no score of 0 is counted or sent to the LMS on enrolment.
    assert not AssignmentScore.objects.filter(learner=user).exists() and not ScoreOutbox.objects.exists()
    # As if the account were only in another course so far.
    Enrollment.objects.filter(course=assignment.course, user=user).delete()
    item = assignment.items.get()
    Submission.objects.create(
        user=user,
        exercise=item.exercise,
        code="def linear_backward(dout, x, w, b): ...",
        status="graded",
        verdict="accepted",
        score=1.0,
        finished_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        launch(client, lms, custom={"gradlab_link": linked.token})

    total = AssignmentScore.objects.get(assignment=assignment, learner=user)
    assert (total.score, total.max_score) == (10.0, 10.0)
    row = ScoreOutbox.objects.get(user=user)
    assert row.score_given == 10.0 and row.pk in enqueued


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([ROLE_INSTRUCTOR], CourseRole.INSTRUCTOR),
        ([ROLE_TA], CourseRole.TEACHING_ASSISTANT),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"], CourseRole.INSTRUCTOR),
    ],
)
def test_lms_staff_roles_map_to_course_staff_roles(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget, assignment: Assignment, roles: list[str], expected: str
) -> None:
    assert launch(client, lms, roles=roles, custom={"gradlab_link": linked.token}).status_code == 302
    user = LtiIdentity.objects.get().user
    assert CourseStaff.objects.get(course=assignment.course, user=user).role == expected
    # The LMS demotes them to learner: the staff role goes, the learner is enrolled.
    assert launch(client, lms, roles=[ROLE_LEARNER], custom={"gradlab_link": linked.token}).status_code == 302
    assert not CourseStaff.objects.filter(user=user).exists()
    assert Enrollment.objects.filter(course=assignment.course, user=user).exists()


def test_an_instructor_launch_from_a_new_lms_course_creates_its_gradlab_course(
    client: Client, lms: SimulatedPlatform, registered: Platform
) -> None:
    response = launch(client, lms, roles=[ROLE_INSTRUCTOR])
    context = LtiContext.objects.get(context_id=lms.context_id)
    assert context.course is not None and context.course.title == "Deep Learning 101"
    assert response["Location"] == context.course.get_absolute_url()
    assert CourseStaff.objects.get(course=context.course).role == CourseRole.OWNER


def test_an_observer_gets_no_access(client: Client, lms: SimulatedPlatform, linked: LinkTarget) -> None:
    response = launch(client, lms, roles=[ROLE_MENTOR], custom={"gradlab_link": linked.token})
    assert response.status_code == 403 and b"no_role" in response.content
    assert not signed_in(client)


BAD_LAUNCHES: list[tuple[str, dict[str, Any], str, str]] = [
    ("bad signature", {"forge": True}, "bad_signature", "signature does not verify"),
    ("unknown signing key", {"sign": {"kid": "not-published"}}, "bad_signature", "does not publish"),
    ("wrong audience", {"tamper": lambda c: c.update(aud="someone-else")}, "wrong_audience", "someone-else"),
    (
        "expired token",
        {"tamper": lambda c: c.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)},
        "expired_token",
        "has expired",
    ),
    (
        "unknown deployment",
        {"tamper": lambda c: c.update({LTI + "deployment_id": "dep-x"})},
        "unknown_deployment",
        "dep-x",
    ),
    (
        "unknown platform",
        {"tamper": lambda c: c.update(iss="https://evil.example")},
        "unknown_platform",
        "evil.example",
    ),
    ("missing subject", {"tamper": lambda c: c.pop("sub")}, "missing_claims", "sub"),
    ("missing roles", {"tamper": lambda c: c.pop(LTI + "roles")}, "missing_claims", "roles"),
    ("missing resource link", {"tamper": lambda c: c.pop(LTI + "resource_link")}, "missing_claims", "resource_link.id"),
    (
        "missing deployment and version",
        {"tamper": lambda c: [c.pop(LTI + "deployment_id"), c.pop(LTI + "version")]},
        "missing_claims",
        "version, deployment_id",
    ),
    ("missing nonce", {"tamper": lambda c: c.pop("nonce")}, "missing_claims", "nonce"),
]


@pytest.mark.parametrize(("case", "how", "code", "words"), BAD_LAUNCHES, ids=[case[0] for case in BAD_LAUNCHES])
def test_a_bad_launch_gets_a_page_that_says_what_is_wrong_and_signs_in_nobody(
    client: Client,
    lms: SimulatedPlatform,
    linked: LinkTarget,
    case: str,
    how: dict[str, Any],
    code: str,
    words: str,
) -> None:
    sign = dict(how.get("sign", {}))
    if how.get("forge"):
        _, other_private, _ = new_rsa_key()
        sign["private_pem"] = other_private  # same kid as the LMS's real key
    response = launch(client, lms, tamper=how.get("tamper"), sign=sign or None, custom={"gradlab_link": linked.token})
    assert 400 <= response.status_code < 500
    assert code.encode() in response.content and words.encode() in response.content
    assert b"Nobody was signed in" in response.content
    assert not signed_in(client)
    assert not LtiIdentity.objects.exists() and not Enrollment.objects.exists()


def test_a_replayed_launch_is_refused(client: Client, lms: SimulatedPlatform, linked: LinkTarget) -> None:
    first = launch(client, lms, custom={"gradlab_link": linked.token})
    assert first.status_code == 302
    launch_cookies = {name: morsel.value for name, morsel in client.cookies.items() if name.startswith("lti1p3")}
    client.logout()  # forgets every cookie: the replay brings the launch's cookies back
    for name, value in launch_cookies.items():
        client.cookies[name] = value
    again = client.post("/lti/launch/", first.lti_post, secure=True)
    assert again.status_code == 401, again.content.decode()[-1500:]
    assert b"replayed_nonce" in again.content and b"already used" in again.content
    assert not signed_in(client)
    assert UsedNonce.objects.count() == 1


def test_a_launch_whose_state_is_not_this_browsers_is_refused(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget
) -> None:
    auth = start_login(client, lms)
    token = lms.sign(lms.claims(nonce=auth["nonce"], custom={"gradlab_link": linked.token}))
    response = Client().post("/lti/launch/", {"id_token": token, "state": auth["state"]}, secure=True)
    assert response.status_code == 401 and b"no_login_cookie" in response.content
    response = client.post("/lti/launch/", {"id_token": token, "state": "state-forged"}, secure=True)
    assert response.status_code == 401 and b"state_mismatch" in response.content
    assert not signed_in(client) and not LtiIdentity.objects.exists()


def test_a_nonce_gradlab_never_issued_is_refused(client: Client, lms: SimulatedPlatform, linked: LinkTarget) -> None:
    response = launch(
        client, lms, tamper=lambda c: c.update(nonce="made-up-nonce"), custom={"gradlab_link": linked.token}
    )
    assert response.status_code == 401 and b"unknown_nonce" in response.content
    assert not signed_in(client)


def test_a_login_from_an_unregistered_lms_is_refused(client: Client, lms: SimulatedPlatform) -> None:
    response = client.get("/lti/login/", {"iss": lms.issuer, "login_hint": "x"}, secure=True)
    assert response.status_code == 403 and b"unknown_platform" in response.content
    response = client.get("/lti/login/", {"login_hint": "x"}, secure=True)
    assert response.status_code == 400 and b"issuer" in response.content


def test_a_link_token_of_another_platform_opens_nothing(
    client: Client, lms: SimulatedPlatform, registered: Platform, assignment: Assignment
) -> None:
    other = Platform.objects.create(
        name="Other LMS",
        issuer="https://other.example",
        client_id="x",
        auth_login_url="https://other.example/auth",
        auth_token_url="https://other.example/token",
        jwks_url="https://other.example/jwks",
    )
    LinkTarget.objects.create(token="theirs", platform=other, kind="assignment", assignment=assignment)
    response = launch(client, lms, custom={"gradlab_link": "theirs"})
    assert response.status_code == 404 and b"not_linked" in response.content
    assert not signed_in(client)
    assert not Enrollment.objects.filter(course=assignment.course).exists()


# --- Framing and cookies ---------------------------------------------------------------


def test_lti_pages_may_be_framed_by_registered_platforms_only(
    client: Client, lms: SimulatedPlatform, linked: LinkTarget, assignment: Assignment
) -> None:
    outside = client.get("/exercises/")
    assert "frame-ancestors 'none'" in outside["Content-Security-Policy"]
    assert outside["X-Frame-Options"] == "DENY"
    refused = client.post("/lti/launch/", {}, secure=True)
    ancestors = f"frame-ancestors 'self' {lms.url} https://school.instructure.example"
    assert ancestors in refused["Content-Security-Policy"]
    assert "X-Frame-Options" not in refused
    launch(client, lms, custom={"gradlab_link": linked.token})
    inside = client.get("/exercises/", secure=True)  # a page of the launched session
    policy = inside["Content-Security-Policy"]
    assert ancestors in policy
    assert "frame-ancestors 'none'" not in policy and "X-Frame-Options" not in inside
    assert "script-src 'self'" in policy  # the rest of the policy is unchanged
