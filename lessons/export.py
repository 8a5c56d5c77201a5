"""Lessons written back as `content/lessons/<slug>.md` files (`manage.py export_content`).

The writer side of lessons/content.py: `export_lessons` is listed in
settings.CONTENT_EXPORTERS and run by contentsync/export.py, which writes the recorded
text back when it still parses to what the row holds, and `lesson_canonical` otherwise.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from contentsync.files import dump_yaml
from lessons.content import parse_lesson_file
from lessons.models import Lesson

if TYPE_CHECKING:
    from pathlib import Path

    from contentsync.export import Export

LESSON_SOURCE_KEYS = ("title", "difficulty", "order", "summary", "question", "body_md", "references", "extra")


def export_lessons(export: Export) -> None:
    """Write every lesson as `lessons/<slug>.md`."""
    for lesson in Lesson.objects.prefetch_related("related"):
        relative = f"lessons/{lesson.slug}.md"
        export.parsed_file(
            relative,
            lesson_state(lesson),
            partial(lesson_canonical, lesson),
            partial(lesson_state_of_text, export.root / relative),
        )


def lesson_state(lesson: Any) -> dict[str, Any]:
    """What a lesson file determines, read from the row."""
    state = {key: getattr(lesson, key) for key in LESSON_SOURCE_KEYS}
    state["related"] = sorted(other.slug for other in lesson.related.all())
    return state


def lesson_state_of_text(path: Path, text: str) -> dict[str, Any]:
    parsed = parse_lesson_file(path, text)
    state = {key: parsed.fields[key] for key in LESSON_SOURCE_KEYS}
    state["related"] = sorted(parsed.related)
    return state


def lesson_canonical(lesson: Any) -> str:
    front: dict[str, Any] = {
        "slug": lesson.slug,
        "title": lesson.title,
        "difficulty": lesson.difficulty,
        "order": lesson.order,
        "summary": lesson.summary,
        "question": lesson.question,
        "related": [other.slug for other in lesson.related.order_by("order", "slug")],
        "references": [{"title": item["title"], "url": item["url"]} for item in lesson.references or []],
        **(lesson.extra or {}),
    }
    body = lesson.body_md if lesson.body_md.startswith("\n") else "\n" + lesson.body_md
    return f"---\n{dump_yaml(front)}---{body}"
