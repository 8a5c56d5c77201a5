"""Fixtures shared by the whole suite: a learner, another learner, an instructor and staff; Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the PostgreSQL pass, keep only the tests that touch the database."""
    if os.environ.get("GRADLAB_DB_BACKEND") != "postgres":
        return
    database_fixtures = {"db", "transactional_db", "django_db_setup", "live_server", "client", "admin_client"}
    kept, dropped = [], []
    for item in items:
        uses_db = item.get_closest_marker("django_db") is not None or bool(
            database_fixtures & set(getattr(item, "fixturenames", ()))
        )
        (kept if uses_db else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
