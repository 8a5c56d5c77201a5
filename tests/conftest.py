"""Fixtures shared by the whole suite: a learner, another learner, an instructor and staff; Chromium."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.contrib.auth.models import Group, User

PASSWORD = "correct-horse-battery-staple"

# Debian's Chromium, driven by Playwright. Without the flags it keeps trying to reach the network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Browser tests save what they saw here (git-ignored); look at them.
SCREENSHOTS = Path(__file__).parent / "screenshots"


def pytest_configure(config: pytest.Config) -> None:
    """Test settings: a fast password hasher (PBKDF2 takes about 2 s per hash on this machine, and
    most tests create users). Production keeps Django's default hashers."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the PostgreSQL pass, keep only the tests that touch the database, heavy ones excepted.

    Heavy tests whose use of the database is incidental (every page driven in Chromium, and
    those marked `once`, such as the schemathesis run) run in the SQLite pass only; what depends
    on the database (claims under concurrency, percentiles, time arithmetic, migrations, the
    gradebook's SQL) is covered by the tests that stay.
    """
    if os.environ.get("GRADLAB_DB_BACKEND") != "postgres":
        return
    database_fixtures = {"db", "transactional_db", "django_db_setup", "live_server", "client", "admin_client"}
    kept, dropped = [], []
    for item in items:
        uses_db = item.get_closest_marker("django_db") is not None or bool(
            database_fixtures & set(getattr(item, "fixturenames", ()))
        )
        once = item.get_closest_marker("browser") is not None or item.get_closest_marker("once") is not None
        (kept if uses_db and not once else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def grading_secret() -> str:
    """A sentinel planted in this process's environment before the engine's sandbox starts."""
    return "gradlab-grading-sentinel-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def engine(grading_secret: str) -> Iterator[Any]:
    """The process's grading engine (one warm sandbox for the whole session, as in a worker).

    The sentinel `grading_secret` is in the environment while the sandbox starts and runs, so a
    leak of the environment into anything a learner sees shows it.
    """
    from grader.engine import Engine

    os.environ["GRADLAB_TEST_GRADING_SECRET"] = grading_secret
    try:
        yield Engine.get()
    finally:
        os.environ.pop("GRADLAB_TEST_GRADING_SECRET", None)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """A warm sandbox for one test module, at the best isolation this machine allows.

    The sentinel secret of tests/hostile.py is in this process's environment while the zygote
    starts, so a leak of the environment into the child shows; output redaction is off, so a leak
    is not hidden either. Tests that need the full sandbox assert `sandbox.isolation` themselves.
    """
    from grader.sandbox import Sandbox
    from tests.hostile import SECRET, SECRET_ENV

    os.environ[SECRET_ENV] = SECRET
    try:
        box = Sandbox.start(redact_secrets=False)
        try:
            yield box
        finally:
            box.close()
    finally:
        os.environ.pop(SECRET_ENV, None)


def _user(username: str, **extra: Any) -> User:
    return User.objects.create_user(username=username, email=f"{username}@example.com", password=PASSWORD, **extra)


@pytest.fixture
def learner(db: None) -> User:
    return _user("ada")


@pytest.fixture
def other_learner(db: None) -> User:
    return _user("grace")


@pytest.fixture
def instructor(db: None) -> User:
    user = _user("ines", is_staff=True)
    group, _ = Group.objects.get_or_create(name="instructor")
    user.groups.add(group)
    return user


@pytest.fixture
def staff(db: None) -> User:
    return _user("sam", is_staff=True, is_superuser=True)


@pytest.fixture
def private_redis(settings: Any, tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own on a free port, answering; settings.REDIS_URL points at it."""
    import socket

    from gradlab.redis_embedded import redis_answers, start_redis_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_redis_server("127.0.0.1", port, tmp_path / "redis")
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if redis_answers(settings.REDIS_URL, 0.2):
                break
        yield settings.REDIS_URL
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def announcements() -> Iterator[list[dict[str, Any]]]:
    """Every assignment_score_changed the test causes, as the keyword arguments it was sent with."""
    from courses.signals import assignment_score_changed

    seen: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    assignment_score_changed.connect(listen, dispatch_uid="test-announcements")
    yield seen
    assignment_score_changed.disconnect(dispatch_uid="test-announcements")


def unavailable(reason: str, *, required_by: str) -> NoReturn:
    """Stop a test whose tool is missing: fail under the test command, skip (with `reason`) elsewhere.

    `make test` installs Chromium, the front-end assets and bubblewrap and sets `required_by`
    (GRADLAB_REQUIRE_BROWSER or GRADLAB_REQUIRE_SANDBOX) to 1, so there a missing tool is a
    failure; a developer running pytest on a bare machine gets a skip that says what to install.
    """
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} ({required_by}=1)")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium (see `unavailable` for what happens when it is missing)."""
    if not Path(CHROMIUM).exists():
        unavailable(
            f"{CHROMIUM} is missing: scripts/install-system-deps.sh installs Debian's chromium",
            required_by="GRADLAB_REQUIRE_BROWSER",
        )
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def logged_in_page(browser: Any, live_server: Any) -> Callable[..., tuple[Any, list[str]]]:
    """Open a Chromium page signed in as a user: `logged_in_page(user, viewport)` -> (page, errors).

    The session comes from Django's test client (no log-in form, so no password hash to check)
    and is handed to the browser as its cookie for the live server. `errors` collects console
    errors and uncaught exceptions. With `refused_posts_expected=True` a POST answered 400 is part
    of the test (the page shows why): Chromium's "Failed to load resource" console lines are dropped
    and every other response of 400 or more is recorded by method and URL instead.
    """
    from django.conf import settings
    from django.test import Client

    def open_page(
        user: User, viewport: dict[str, int], *, refused_posts_expected: bool = False
    ) -> tuple[Any, list[str]]:
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport=viewport)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        page = context.new_page()
        errors: list[str] = []

        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            if refused_posts_expected and message.text.startswith("Failed to load resource"):
                return
            errors.append(message.text)

        def on_response(response: Any) -> None:
            refused_post = response.status == 400 and response.request.method == "POST"
            if response.status >= 400 and not refused_post:
                errors.append(f"{response.status} {response.request.method} {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        if refused_posts_expected:
            page.on("response", on_response)
        return page, errors

    return open_page
