"""Accounts: the account page, password change, and password reset by email (Django's backends)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-longer-passphrase-42"


def logged_in(user: User) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_the_account_page_needs_a_login_and_shows_the_user(client: Client, learner: User) -> None:
    assert client.get("/accounts/").status_code == 302
    page = logged_in(learner).get("/accounts/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Your account" in text and learner.username in text
    assert 'href="/accounts/password/change/"' in text


def test_a_learner_changes_their_email_and_cannot_take_someone_elses(learner: User, other_learner: User) -> None:
    client = logged_in(learner)
    response = client.post("/accounts/", {"email": "ada@lovelace.example"})
    assert response.status_code == 302
    learner.refresh_from_db()
    assert learner.email == "ada@lovelace.example"
    response = client.post("/accounts/", {"email": other_learner.email.upper()})
    assert response.status_code == 200 and "Another account uses this email address." in response.content.decode()
    learner.refresh_from_db()
    assert learner.email == "ada@lovelace.example"


def test_a_learner_changes_their_password_and_stays_logged_in(learner: User) -> None:
    client = logged_in(learner)
    wrong = client.post(
        "/accounts/password/change/",
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200 and "incorrect" in wrong.content.decode()
    response = client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password/change/done/"
    assert client.get("/accounts/").status_code == 200  # the session survived the change
    assert Client().login(username=learner.username, password=NEW_PASSWORD)


def test_a_forgotten_password_is_reset_through_the_emailed_link(client: Client, learner: User) -> None:
    assert "Forgot your password?" in client.get("/accounts/login/").content.decode()
    response = client.post("/accounts/password/reset/", {"email": learner.email})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [learner.email] and "Reset your Gradlab password" in message.subject
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert link is not None
    form = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/password/reset/done/"
    assert Client().login(username=learner.username, password=NEW_PASSWORD)
    # The link works once.
    again = client.get(link.group(1), follow=True)
    assert "This link is invalid" in again.content.decode()


def test_an_unknown_email_gets_the_same_answer_and_no_mail(client: Client, learner: User) -> None:
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox == []


def test_signup_takes_an_optional_email(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "email": "newbie@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.get(username="newbie").email == "newbie@example.com"


def test_a_new_account_is_welcomed_once_on_the_page_it_lands_on(client: Client) -> None:
    form = {"username": "newbie", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "next": "/progress/"}
    landed = client.post("/accounts/signup/", form, follow=True)
    assert landed.redirect_chain == [("/progress/", 302)]
    assertContains(landed, "Welcome, newbie: your account is ready and you are signed in.")
    assertNotContains(client.get("/progress/"), "Welcome, newbie")


def test_email_goes_to_the_console_in_development_and_smtp_from_the_environment_in_production() -> None:
    import subprocess
    import sys

    probe = "from django.conf import settings; print(settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT)"
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "gradlab.settings"}
    development = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        env={**base, "GRADLAB_ENV": "development"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert development.stdout.split()[0] == "django.core.mail.backends.console.EmailBackend"
    production = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        env={
            **base,
            "GRADLAB_ENV": "production",
            "SECRET_KEY": "x" * 60,
            "ALLOWED_HOSTS": "example.org",
            "EMAIL_HOST": "smtp.example.org",
            "EMAIL_PORT": "2525",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert production.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend", "smtp.example.org", "2525"]
