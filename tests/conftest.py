"""Fixtures shared by the whole suite: a learner, another learner, an instructor and staff."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

PASSWORD = "correct-horse-battery-staple"


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
