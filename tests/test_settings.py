"""Settings: typed environment helpers, production hardening, health check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from gradlab import env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("Off", False), ("0", False)])
def test_env_bool_reads_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG", not expected) is expected


def test_env_bool_fails_loudly_on_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG='ture' is not a boolean"):
        env.env_bool("SOME_FLAG", False)


def test_env_int_fails_loudly_on_text_and_below_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("SOME_INT", 1)
    monkeypatch.setenv("SOME_INT", "-3")
    with pytest.raises(ImproperlyConfigured, match="below the minimum 0"):
        env.env_int("SOME_INT", 1, minimum=0)


def test_env_helpers_fall_back_to_the_default_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_INT", raising=False)
    monkeypatch.setenv("SOME_LIST", "")
    assert env.env_int("SOME_INT", 7) == 7
    assert env.env_list("SOME_LIST", ["a"]) == ["a"]
    monkeypatch.setenv("SOME_LIST", "a.example, b.example ,")
    assert env.env_list("SOME_LIST", []) == ["a.example", "b.example"]


def test_env_choice_rejects_an_unknown_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_MIN_ISOLATION", "chroot")
    with pytest.raises(ImproperlyConfigured, match="not one of"):
        env.env_choice("GRADER_MIN_ISOLATION", "none", ("none", "process"))


def test_database_url_parses_postgres_with_credentials() -> None:
    config = env.database_from_url("postgres://gradlab:s%40cret@db.internal:6543/gradlab", base_dir=ROOT)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("gradlab", "gradlab", "s@cret")
    assert (config["HOST"], config["PORT"]) == ("db.internal", "6543")


def test_database_url_parses_absolute_and_relative_sqlite_paths() -> None:
    assert env.database_from_url("sqlite:////tmp/x.sqlite3", base_dir=ROOT)["NAME"] == "/tmp/x.sqlite3"
    assert env.database_from_url("sqlite:///var/x.sqlite3", base_dir=ROOT)["NAME"] == str(ROOT / "var/x.sqlite3")


def test_database_url_rejects_an_unsupported_scheme() -> None:
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        env.database_from_url("mysql://root@localhost/db", base_dir=ROOT)


def _manage(*args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GRADLAB_"))}
    environment.pop("DATABASE_URL", None)
    environment.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


PRODUCTION_ENV = {
    "GRADLAB_ENV": "production",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "gradlab.example.org",
}


def test_check_deploy_reports_nothing_with_production_settings(tmp_path: Path) -> None:
    result = _manage(
        "check", "--deploy", "--fail-level", "DEBUG", extra_env={**PRODUCTION_ENV, "GRADLAB_VAR_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = _manage("check", extra_env={"GRADLAB_ENV": "production", "GRADLAB_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_turn_on_secure_cookies_hsts_and_strict_grading(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.DEBUG, s.GRADER_MIN_ISOLATION)"
    )
    result = _manage("shell", "-v", "0", "-c", code, extra_env={**PRODUCTION_ENV, "GRADLAB_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "31536000", "False", "namespaces+seccomp"]


def test_every_response_carries_a_content_security_policy(client, db) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'self'" in policy
    assert "http" not in policy  # no CDN is allowed anywhere


def test_health_check_answers_ok_when_the_database_answers(client, db) -> None:
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")
    assert response.status_code == 200
    assert response.content == b"ok\n"
