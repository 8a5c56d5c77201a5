"""API tokens: expiry, revocation (command, admin, API, password change) and the per-user list (issue 14)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from grader.auth import api_token_create
from grader.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _status(token: str) -> int:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/submissions").status_code


def test_a_token_expires(settings, learner: User) -> None:  # type: ignore[no-untyped-def]
    settings.API_TOKEN_DAYS = 30
    row, token = api_token_create(learner)
    assert row.expires_at is not None
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    assert _status(token) == 200
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _status(token) == 401


def test_the_command_lists_and_revokes_tokens(learner: User) -> None:
    out = io.StringIO()
    call_command("api_token", learner.username, "--name", "ci", "--days", "7", stdout=out)
    first = out.getvalue().strip()
    _, second = api_token_create(learner, name="laptop")
    listing = io.StringIO()
    call_command("api_token", learner.username, "--list", stdout=listing)
    lines = listing.getvalue().splitlines()
    assert len(lines) == 2 and all("active" in line for line in lines)
    assert any(line.startswith(first[:12]) and line.endswith("ci") for line in lines)
    call_command("api_token", learner.username, "--revoke", first[:12], stdout=io.StringIO())
    assert _status(first) == 401 and _status(second) == 200
    listing = io.StringIO()
    call_command("api_token", learner.username, "--list", stdout=listing)
    assert "revoked" in listing.getvalue()
    call_command("api_token", learner.username, "--revoke-all", stdout=io.StringIO())
    assert _status(second) == 401


def test_staff_revoke_tokens_in_the_admin(staff: User, learner: User) -> None:
    row, token = api_token_create(learner, name="script")
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/grader/apitoken/")
    assert listing.status_code == 200 and row.prefix in listing.content.decode()
    assert admin.get("/admin/grader/apitoken/add/").status_code == 403
    response = admin.post("/admin/grader/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert _status(token) == 401


def test_a_user_lists_and_revokes_their_own_tokens_through_the_api(learner: User, other_learner: User) -> None:
    mine, token = api_token_create(learner, name="mine")
    theirs, _ = api_token_create(other_learner, name="theirs")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    listed = client.get("/api/tokens").json()
    assert [(item["prefix"], item["name"], item["state"]) for item in listed] == [(mine.prefix, "mine", "active")]
    assert client.delete(f"/api/tokens/{theirs.prefix}").status_code == 404
    assert client.delete(f"/api/tokens/{mine.prefix}").status_code == 204
    assert _status(token) == 401


def test_a_password_change_revokes_every_token_of_the_user(learner: User, other_learner: User) -> None:
    _, token = api_token_create(learner)
    _, other = api_token_create(other_learner)
    learner.last_login = timezone.now()
    learner.save(update_fields=["last_login"])
    assert _status(token) == 200
    client = Client()
    client.force_login(learner)
    response = client.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "an-entirely-new-phrase-77",
            "new_password2": "an-entirely-new-phrase-77",
        },
    )
    assert response.status_code == 302
    assert _status(token) == 401
    assert _status(other) == 200


def test_the_command_says_why_it_revoked_nothing_or_listed_nothing(learner: User) -> None:
    from django.core.management.base import CommandError

    listing, errors = io.StringIO(), io.StringIO()
    call_command("api_token", learner.username, "--list", stdout=listing, stderr=errors)
    assert listing.getvalue() == ""  # nothing for a script to parse
    assert errors.getvalue().startswith(f"{learner.username} has no API tokens (make one: manage.py api_token")
    first, _ = api_token_create(learner, name="ci")
    with pytest.raises(CommandError, match="give at least the first 6 characters of the token, not 'glb'"):
        call_command("api_token", learner.username, "--revoke", "glb")
    with pytest.raises(CommandError, match="has no token starting with 'glb_zzzzzzzz'"):
        call_command("api_token", learner.username, "--revoke", "glb_zzzzzzzz")
    second, _ = api_token_create(learner, name="laptop")
    shared = first.prefix[:8]
    ApiToken.objects.filter(pk=second.pk).update(prefix=shared + "zzzz")  # two tokens that start alike
    with pytest.raises(CommandError, match=f"2 tokens of ada start with '{shared}': give more of it"):
        call_command("api_token", learner.username, "--revoke", shared)
    first.refresh_from_db()
    assert first.revoked_at is None
