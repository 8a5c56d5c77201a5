"""Every link to a lesson, from a statement, a hint, a quiz or another lesson, lands on a section of the rendered page.

The links are collected from the files a learner reads them in (statements, exercise hints,
quiz prompts and explanations, lesson bodies) and from the grader's diagnoses (each kind's
lesson URL and hints). Each lesson page is rendered through the real view, so the anchor
must be an `id` the Markdown renderer actually gave a heading.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import Client

from contentsync.files import ContentReport
from grader.diagnosis import GENERIC_HINTS
from grader.kinds import KINDS
from gradlab.markdown import headings_of
from lessons.content import load_lessons

pytestmark = pytest.mark.django_db

CONTENT = Path(__file__).resolve().parent.parent / "content"
LESSON_LINK = re.compile(r"/lessons/(?P<slug>[a-z0-9-]+)/(?:#(?P<anchor>[A-Za-z0-9_-]+))?")
HARD_EXERCISES = ("conv2d-backward", "maxpool2d-backward", "attention-backward", "multihead-attention-backward")


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


def link_sources() -> dict[str, str]:
    """{where: text} of everything that may link to a lesson."""
    sources: dict[str, str] = {}
    for path in sorted(CONTENT.glob("exercises/*/statement.md")):
        sources[str(path.relative_to(CONTENT))] = path.read_text(encoding="utf-8")
    for path in sorted(CONTENT.glob("exercises/*/exercise.yaml")):
        hints = yaml.safe_load(path.read_text(encoding="utf-8")).get("hints") or []
        sources[f"{path.relative_to(CONTENT)} hints"] = "\n".join(hints)
    for path in sorted(CONTENT.glob("quizzes/*.yaml")):
        sources[str(path.relative_to(CONTENT))] = "\n".join(
            strings_in(yaml.safe_load(path.read_text(encoding="utf-8")))
        )
    for path in sorted(CONTENT.glob("lessons/*.md")):
        sources[str(path.relative_to(CONTENT))] = path.read_text(encoding="utf-8")
    for slug, kind in sorted(KINDS.items()):
        sources[f"grader kind {slug}"] = "\n".join([kind.lesson_url(), *kind.hints.values()])
    sources["grader generic hints"] = "\n".join(GENERIC_HINTS.values())
    return sources


def links() -> list[tuple[str, str, str]]:
    found = []
    for where, text in link_sources().items():
        for match in LESSON_LINK.finditer(text):
            found.append((where, match.group("slug"), match.group("anchor") or ""))
    return found


@pytest.fixture
def lesson_pages(client: Client) -> dict[str, str]:
    report = ContentReport(root=settings.CONTENT_DIR)
    load_lessons(settings.CONTENT_DIR, report, write=True)
    assert report.errors == []
    pages = {}
    for path in sorted(CONTENT.glob("lessons/*.md")):
        response = client.get(f"/lessons/{path.stem}/")
        assert response.status_code == 200, path.stem
        pages[path.stem] = response.content.decode()
    return pages


def test_links_are_found_in_statements_hints_quizzes_and_the_grader() -> None:
    wheres = {where for where, _, _ in links()}
    assert any(where.endswith("statement.md") for where in wheres)
    assert any(where.startswith("grader kind") for where in wheres)
    assert len(links()) >= 16


def test_every_link_to_a_lesson_resolves_to_an_anchor_on_the_rendered_page(lesson_pages: dict[str, str]) -> None:
    broken = []
    for where, slug, anchor in links():
        page = lesson_pages.get(slug)
        if page is None:
            broken.append(f"{where}: no lesson {slug!r}")
        elif anchor and f'id="{anchor}"' not in page:
            broken.append(f"{where}: /lessons/{slug}/ has no section #{anchor}")
    assert not broken, "\n".join(broken)


def test_a_made_up_anchor_is_not_on_the_page(lesson_pages: dict[str, str]) -> None:
    page = lesson_pages["cnn-architecture"]
    assert 'id="convolution-backward"' in page
    assert 'id="convolution-backwards"' not in page


@pytest.mark.parametrize("slug", HARD_EXERCISES)
def test_each_hard_exercise_links_a_section_that_teaches_its_backward_pass(
    lesson_pages: dict[str, str], slug: str
) -> None:
    kind = KINDS[slug]
    statement = (CONTENT / "exercises" / slug / "statement.md").read_text(encoding="utf-8")
    assert kind.lesson_url() in statement, "the statement and the diagnoses point at the same section"
    page = lesson_pages[kind.lesson_slug]
    headings = headings_of(page, levels=(3,))
    section = next(heading for heading in headings if heading.id == kind.lesson_section)
    assert "backward" in section.text.lower()
    start = page.index(f'id="{section.id}"')
    following = [page.index(f'id="{h.id}"') for h in headings if page.index(f'id="{h.id}"') > start]
    body = page[start : min(following, default=len(page))]
    assert body.count('class="math" data-display="true"') >= 2, "the section derives the gradients"
    assert "Worked example" in body
