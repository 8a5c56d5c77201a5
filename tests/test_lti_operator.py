"""LTI registration as an operator meets it: the admin form and `lti_platform add` refuse an issuer
that is not a URL and a frame origin that is not an origin (either would break every launch or frame
without a word), and `lti_roster_sync` says what it did when there is nothing to do or no such course."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from lti.models import Platform

pytestmark = pytest.mark.django_db

CANVAS = {
    "name": "University Canvas",
    "issuer": "https://canvas.instructure.com",
    "client_id": "10000000000001",
    "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
    "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
    "auth_audience": "",
    "jwks_url": "https://sso.canvaslms.com/api/lti/security/jwks",
    "frame_origins": "https://school.instructure.com",
    "is_active": "on",
}


def _admin_add(client: Client, **changes: str) -> Any:
    form = {
        **CANVAS,
        **changes,
        "deployments-TOTAL_FORMS": "1",
        "deployments-INITIAL_FORMS": "0",
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
        "deployments-0-deployment_id": "1:abc",
    }
    return client.post("/admin/lti/platform/add/", form)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("issuer", "canvas.instructure.com", "is not an issuer"),
        ("issuer", "https://canvas.instructure.com/?x=1", "is not an issuer"),
        ("frame_origins", "https://school.instructure.com\nschool.instructure.com", "is not an origin"),
        ("frame_origins", "https://school.instructure.com/courses/12", "is not an origin"),
    ],
)
def test_the_admin_refuses_an_issuer_or_frame_origin_it_could_not_use(
    staff: User, field: str, value: str, message: str
) -> None:
    client = Client()
    client.force_login(staff)
    response = _admin_add(client, **{field: value})
    assert response.status_code == 200  # the form again, with the reason beside the field
    page = response.content.decode()
    assert message in page
    assert "https://sso.canvaslms.com/login/oauth2/token" in page  # what was typed stays
    assert not Platform.objects.exists()


def test_the_admin_stores_a_pasted_issuer_without_the_stray_spaces(staff: User) -> None:
    client = Client()
    client.force_login(staff)
    response = _admin_add(
        client, issuer="  https://canvas.instructure.com \n", frame_origins="\n https://a.example \n\n"
    )
    assert response.status_code == 302
    platform = Platform.objects.get()
    assert platform.issuer == "https://canvas.instructure.com"  # what a launch's `iss` is compared with
    assert platform.frame_origins == "https://a.example"
    assert "https://a.example" in platform.allowed_frame_origins()


def _cli_add(*extra: str) -> None:
    call_command(
        "lti_platform",
        "add",
        "--client-id=abc",
        "--deployment-id=1",
        "--auth-url=https://moodle.example.edu/mod/lti/auth.php",
        "--token-url=https://moodle.example.edu/mod/lti/token.php",
        "--jwks-url=https://moodle.example.edu/mod/lti/certs.php",
        *extra,
        stdout=StringIO(),
    )


def test_the_platform_command_names_the_option_to_fix_and_changes_nothing() -> None:
    with pytest.raises(CommandError, match=r"nothing changed: --issuer: 'moodle\.example\.edu' is not an issuer"):
        _cli_add("--issuer=moodle.example.edu")
    with pytest.raises(CommandError, match=r"--frame-origin: 'moodle\.example\.edu' is not an origin"):
        _cli_add("--issuer=https://moodle.example.edu", "--frame-origin=moodle.example.edu")
    assert not Platform.objects.exists()
    _cli_add("--issuer= https://moodle.example.edu ", "--frame-origin=https://moodle.example.edu")
    assert Platform.objects.get().issuer == "https://moodle.example.edu"  # pasted with spaces, stored without


def test_roster_sync_says_when_there_is_nothing_to_sync_or_no_such_course() -> None:
    out = StringIO()
    call_command("lti_roster_sync", stdout=out)
    assert out.getvalue().startswith("nothing to sync: no LMS course is linked")
    with pytest.raises(CommandError, match="no LMS course with id 998, 999: nothing synced"):
        call_command("lti_roster_sync", "--context=999", "--context=998", stdout=StringIO())
