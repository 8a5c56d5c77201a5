"""The lesson change page's preview in Chromium draws Mermaid diagrams as on the lesson page."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from lessons.content import lesson_render
from lessons.models import Lesson

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_lesson_preview_draws_a_mermaid_diagram(logged_in_page, live_server, instructor: User) -> None:  # type: ignore[no-untyped-def]
    lesson = Lesson.objects.create(
        slug="graphs", title="Graphs", body_md="A graph:\n\n```mermaid\ngraph LR\n  x --> y\n```\n"
    )
    lesson_render(lesson)
    lesson.save()
    page, errors = logged_in_page(instructor, {"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("admin:lessons_lesson_change", args=[lesson.pk]))
    page.locator(".authoring-preview pre.mermaid").first.scroll_into_view_if_needed()  # Mermaid loads when near
    page.locator(".authoring-preview pre.mermaid svg").first.wait_for(timeout=30_000)
    assert "x --> y" not in page.locator(".authoring-preview").inner_text()
    assert [error for error in errors if "favicon" not in error and not error.startswith("Failed to load")] == []
