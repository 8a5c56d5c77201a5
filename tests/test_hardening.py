"""Production hardening (issue 14): refused settings, the trusted proxy, request limits in every DEBUG
setting, log-in and sign-up throttling with a staff unlock, JSON logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from grader.auth import api_token_create
from gradlab.logs import JsonFormatter
from gradlab.settings import production_hosts_problem, production_secret_key_problem
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "a-production-secret-key-that-is-long-and-random-0123456789-abcdefghijklmnopqrstuvwxyz"


def _check(extra_env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GRADLAB_"))}
    environment.pop("DATABASE_URL", None)
    environment.update({"GRADLAB_ENV": "production", "GRADLAB_VAR_DIR": str(tmp_path), **extra_env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def _env_example_value(name: str) -> str:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not in .env.example")


@pytest.mark.parametrize(
    ("key", "hosts", "reason"),
    [
        (_env_example_value("SECRET_KEY"), "gradlab.example.org", "SECRET_KEY is the placeholder from .env.example"),
        (GOOD_KEY, "gradlab.example.org,*", "ALLOWED_HOSTS must name the site's host names in production, not '*'"),
    ],
    ids=["placeholder-key", "wildcard-host"],
)
def test_production_refuses_to_start_with_a_one_line_reason(tmp_path: Path, key: str, hosts: str, reason: str) -> None:
    result = _check({"SECRET_KEY": key, "ALLOWED_HOSTS": hosts}, tmp_path)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ") and reason in last_line


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "SECRET_KEY must be set"),
        ("change-me-to-a-long-random-string-of-at-least-fifty-characters", "placeholder"),
        ("django-insecure-" + "k" * 50, "placeholder"),
        ("s3cr3t-" + "a" * 42, "at least 50 characters in production (it has 49)"),
        (GOOD_KEY, None),
        ("Z" * 50, None),
    ],
)
def test_which_secret_keys_production_refuses(key: str, reason: str | None) -> None:
    problem = production_secret_key_problem(key)
    assert (problem is None) if reason is None else (problem is not None and reason in problem and "\n" not in problem)


@pytest.mark.parametrize(
    ("hosts", "refused"), [(["*"], True), (["gradlab.example.org", "*"], True), ([".example.org"], False), ([], False)]
)
def test_which_allowed_hosts_production_refuses(hosts: list[str], refused: bool) -> None:
    assert (production_hosts_problem(hosts) is not None) is refused


def test_production_accepts_a_real_key_and_named_hosts(tmp_path: Path) -> None:
    result = _check({"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "gradlab.example.org"}, tmp_path)
    assert result.returncode == 0, result.stderr


# --- The proxy header is believed only from the proxy -------------------------------------------


@pytest.fixture
def behind_proxy(settings):  # type: ignore[no-untyped-def]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.TRUSTED_PROXIES = ["10.200.0.2/32"]
    return settings


@pytest.mark.django_db
def test_x_forwarded_proto_from_anyone_but_the_proxy_is_ignored(behind_proxy) -> None:  # type: ignore[no-untyped-def]
    direct = Client(REMOTE_ADDR="10.200.0.9").get("/", HTTP_X_FORWARDED_PROTO="https")
    assert direct.status_code == 301 and direct["Location"].startswith("https://")
    proxied = Client(REMOTE_ADDR="10.200.0.2").get("/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.django_db
def test_the_client_address_comes_from_the_proxy_only(behind_proxy, learner: User) -> None:  # type: ignore[no-untyped-def]
    behind_proxy.AXES_FAILURE_LIMIT = 3
    behind_proxy.SECURE_SSL_REDIRECT = False
    # A client that talks to gunicorn directly cannot pick the address the throttle counts.
    for forged in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        Client(REMOTE_ADDR="10.200.0.9").post(
            "/accounts/login/",
            {"username": "nobody-here", "password": "x"},
            HTTP_X_FORWARDED_FOR=forged,
            HTTP_X_FORWARDED_PROTO="https",
        )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"10.200.0.9"}
    # Through the proxy, the address it appended is the client's.
    Client(REMOTE_ADDR="10.200.0.2").post(
        "/accounts/login/",
        {"username": "nobody-else", "password": "x"},
        HTTP_X_FORWARDED_FOR="203.0.113.50, 192.0.2.7",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert AccessAttempt.objects.filter(ip_address="192.0.2.7").exists()


# --- Request limits: 400 JSON with a code, DEBUG on or off ----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["debug-on", "debug-off"])
def test_oversized_bodies_and_too_many_parameters_get_400_json_with_a_code(
    settings, learner: User, debug: bool
) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = debug
    _, token = api_token_create(learner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", raise_request_exception=False)
    body = json.dumps({"exercise": "linear-backward", "code": "x" * (9 * 1024 * 1024)})
    response = client.post("/api/submissions", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "request_too_large"
    assert "larger than 8 MiB" in response.json()["detail"]
    query = "&".join(f"p{i}=1" for i in range(1001))
    response = client.get(f"/api/submissions?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_parameters"
    page = client.get(f"/exercises/?{query}")
    assert page.status_code == 400 and b"more than 1000 parameters" in page.content


# --- Log-in and sign-up throttling ----------------------------------------------------------------


@pytest.fixture
def throttled(settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 5
    cache.clear()
    yield settings
    cache.clear()


def _login(client: Client, path: str, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(path, {"username": username, "password": password})


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_even_for_the_right_one_until_staff_unlock(
    throttled, learner: User, path: str
) -> None:  # type: ignore[no-untyped-def]
    learner.is_staff = True  # so that /admin/login/ would let the right password in
    learner.save()
    for attempt in range(10):
        # Each try from its own address: the per-account limit is what must hold.
        response = _login(Client(REMOTE_ADDR=f"127.0.1.{attempt + 1}"), path, learner.username, "wrong")
    assert response.status_code == 429
    right = _login(Client(REMOTE_ADDR="127.0.2.1"), path, learner.username, PASSWORD)
    assert right.status_code == 429
    assert "Too many failed log-ins for this account or from your network" in right.content.decode()
    assert "_auth_user_id" not in right.client.session
    # Staff unlock the account (the admin lists AccessAttempt rows; this is its command form).
    call_command("axes_reset_username", learner.username)
    again = _login(Client(REMOTE_ADDR="127.0.2.1"), path, learner.username, PASSWORD)
    assert again.status_code == 302
    assert again.client.session["_auth_user_id"] == str(learner.pk)


@pytest.mark.django_db
def test_one_address_guessing_many_accounts_is_locked_out(throttled, learner: User) -> None:  # type: ignore[no-untyped-def]
    client = Client(REMOTE_ADDR="127.0.3.1")
    for number in range(6):
        response = _login(client, "/accounts/login/", f"someone{number}", "guess")
    assert response.status_code == 429
    # ...including for an account it did not guess: the address is what is locked.
    assert _login(client, "/accounts/login/", learner.username, PASSWORD).status_code == 429
    assert _login(Client(REMOTE_ADDR="127.0.3.2"), "/accounts/login/", learner.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_staff_see_and_delete_lockouts_in_the_admin(throttled, staff: User, learner: User) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        _login(Client(REMOTE_ADDR="127.0.4.1"), "/accounts/login/", learner.username, "wrong")
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and learner.username in listing.content.decode()
    attempt = AccessAttempt.objects.get(username=learner.username)
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert _login(Client(REMOTE_ADDR="127.0.4.1"), "/accounts/login/", learner.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_sign_up_is_throttled_per_address(throttled) -> None:  # type: ignore[no-untyped-def]
    throttled.SIGNUPS_PER_IP_PER_HOUR = 3
    client = Client(REMOTE_ADDR="127.0.5.1")
    statuses = []
    for number in range(5):
        client.logout()
        response = client.post(
            "/accounts/signup/",
            {"username": f"bulk{number}", "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"},
        )
        statuses.append(response.status_code)
    assert statuses == [302, 302, 302, 429, 429]
    assert "Too many accounts were created from your network" in response.content.decode()
    assert User.objects.filter(username__startswith="bulk").count() == 3
    other = Client(REMOTE_ADDR="127.0.5.2").post(
        "/accounts/signup/",
        {"username": "elsewhere", "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"},
    )
    assert other.status_code == 302


# --- Logs ------------------------------------------------------------------------------------------


def test_json_log_lines_carry_the_message_extras_and_the_traceback() -> None:
    record = logging.LogRecord("grader", logging.ERROR, __file__, 1, "submission %s failed", (42,), None)
    record.submission = 42
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "submission 42 failed" and entry["level"] == "ERROR" and entry["logger"] == "grader"
    assert entry["submission"] == 42 and "RuntimeError: boom" in entry["exception"]


def test_production_logs_are_json_lines(tmp_path: Path) -> None:
    code = "import logging; logging.getLogger('gradlab.probe').warning('hello %s', 'ops')"
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GRADLAB_"))}
    environment.pop("DATABASE_URL", None)
    environment.update(GRADLAB_ENV="production", GRADLAB_VAR_DIR=str(tmp_path), SECRET_KEY=GOOD_KEY)
    environment["ALLOWED_HOSTS"] = "gradlab.example.org"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello ops" and line["logger"] == "gradlab.probe" and line["level"] == "WARNING"
