"""The lesson loader: valid files are imported, bad ones are reported with file and line, nothing is lost."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from contentsync.files import ContentReport
from lessons.content import load_lessons
from lessons.models import Lesson

ROOT = Path(__file__).resolve().parent.parent
LESSONS_ONLY = override_settings(CONTENT_LOADERS=["lessons.content.load_lessons"])

CHAIN_RULE = """\
---
slug: chain-rule
title: The Chain Rule
difficulty: EASY
order: 1
summary: Derivatives of composed functions multiply.
question: Why do derivatives of composed functions multiply?
related: [gradient-descent]
references:
  - title: "Calculus [notes] for *everyone*"
    url: https://example.com/calculus
---
## Answer

Because $\\frac{dy}{dx} = \\frac{dy}{du}\\frac{du}{dx}$.

## Explanation

### Mathematical foundations

$$
\\frac{\\partial L}{\\partial w} = \\frac{\\partial L}{\\partial y} x
$$
<!-- check: chain-rule -->

```python
def grad(x):
    return 2 * x
```

## Related questions

Gradient descent uses these derivatives.

## References

The notes below derive it.
"""

GRADIENT_DESCENT = """\
---
slug: gradient-descent
title: Gradient Descent
difficulty: MEDIUM
order: 2
summary: Step against the gradient.
question: How does gradient descent lower a loss?
related: []
references: []
---
## Answer

It moves each weight a small step against its gradient.

## Explanation

```mermaid
graph LR
  A --> B
```
"""


def write_lessons(root: Path, files: dict[str, str]) -> Path:
    folder = root / "lessons"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return root


def load(root: Path, *, write: bool = True) -> ContentReport:
    report = ContentReport(root=root)
    load_lessons(root, report, write=write)
    return report


def errors_of(report: ContentReport) -> list[str]:
    return [str(error) for error in report.errors]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    return write_lessons(tmp_path / "content", {"chain-rule.md": CHAIN_RULE, "gradient-descent.md": GRADIENT_DESCENT})


@pytest.mark.django_db
def test_it_imports_valid_lessons_with_their_html_rendered_at_import(content: Path) -> None:
    report = load(content)

    assert errors_of(report) == []
    assert sorted(report.created) == ["lesson chain-rule", "lesson gradient-descent"]
    lesson = Lesson.objects.get(slug="chain-rule")
    assert lesson.title == "The Chain Rule"
    assert lesson.difficulty == "EASY"
    assert lesson.order == 1
    assert lesson.question == "Why do derivatives of composed functions multiply?"
    assert lesson.short_answer_md.startswith("Because $\\frac{dy}{dx}")
    assert '<span class="math" data-display="false">\\frac{dy}{dx}' in lesson.short_answer_html
    assert '<div class="math" data-display="true">' in lesson.body_html
    assert '<span class="k">def</span>' in lesson.body_html
    assert "check: chain-rule" not in lesson.body_html
    assert "Because" not in lesson.body_html, "the short answer is shown once, above the explanation"
    assert lesson.body_md == CHAIN_RULE.split("---\n", 2)[2]
    assert lesson.source_path == "content/lessons/chain-rule.md"
    assert [other.slug for other in lesson.related.all()] == ["gradient-descent"]
    assert lesson.references == [{"title": "Calculus [notes] for *everyone*", "url": "https://example.com/calculus"}]
    assert '<pre class="mermaid">' in Lesson.objects.get(slug="gradient-descent").body_html


@pytest.mark.django_db
def test_reference_links_join_the_references_section_and_related_questions_come_last(content: Path) -> None:
    load(content)
    html = Lesson.objects.get(slug="chain-rule").body_html

    link = '<a href="https://example.com/calculus" rel="noopener noreferrer">Calculus [notes] for *everyone*</a>'
    assert link in html, "the title is shown literally, not as Markdown"
    assert html.index('id="references"') < html.index("The notes below") < html.index(link)
    assert html.index(link) < html.index('id="related-questions"')
    assert html.rstrip().endswith("<p>Gradient descent uses these derivatives.</p>")


@pytest.mark.django_db
def test_reimporting_unchanged_files_changes_nothing_and_reports_them_unchanged(content: Path) -> None:
    load(content)
    before = {lesson.slug: lesson.updated_at for lesson in Lesson.objects.all()}

    again = load(content)

    assert again.created == [] and again.updated == [] and errors_of(again) == []
    assert sorted(again.unchanged) == ["lesson chain-rule", "lesson gradient-descent"]
    assert {lesson.slug: lesson.updated_at for lesson in Lesson.objects.all()} == before


@pytest.mark.django_db
def test_an_edited_file_is_updated_in_place(content: Path) -> None:
    load(content)
    first_id = Lesson.objects.get(slug="gradient-descent").id
    path = content / "lessons" / "gradient-descent.md"
    path.write_text(path.read_text().replace("difficulty: MEDIUM", "difficulty: HARD"))

    report = load(content)

    assert report.updated == ["lesson gradient-descent"]
    assert report.unchanged == ["lesson chain-rule"]
    lesson = Lesson.objects.get(slug="gradient-descent")
    assert (lesson.id, lesson.difficulty) == (first_id, "HARD")


BAD_FILES = {
    "bad-yaml.md": (
        "---\nslug: bad-yaml\ntitle: [unclosed\ndifficulty: EASY\n---\n## Answer\n\nx\n",
        "content/lessons/bad-yaml.md:4: invalid YAML",
    ),
    "missing-key.md": (
        GRADIENT_DESCENT.replace("gradient-descent", "missing-key").replace(
            "summary: Step against the gradient.\n", ""
        ),
        "content/lessons/missing-key.md:1: missing front-matter key(s): summary",
    ),
    "bad-difficulty.md": (
        GRADIENT_DESCENT.replace("gradient-descent", "bad-difficulty").replace("MEDIUM", "medium"),
        "content/lessons/bad-difficulty.md:4: 'difficulty' must be one of EASY, MEDIUM, HARD (got str 'medium')",
    ),
    "unknown-related.md": (
        GRADIENT_DESCENT.replace("gradient-descent", "unknown-related").replace(
            "related: []", "related:\n  - chain-rule\n  - no-such-lesson"
        ),
        "content/lessons/unknown-related.md:8: related names no lesson: 'no-such-lesson'",
    ),
    "no-answer.md": (
        GRADIENT_DESCENT.replace("gradient-descent", "no-answer").replace("## Answer", "## Summary"),
        "content/lessons/no-answer.md:11: the body has no '## Answer' section (the short answer)",
    ),
    "wrong-name.md": (
        GRADIENT_DESCENT,
        "content/lessons/wrong-name.md:2: slug 'gradient-descent' does not match the file name (wrong-name.md)",
    ),
    "bad-order.md": (
        GRADIENT_DESCENT.replace("gradient-descent", "bad-order").replace("order: 2", "order: second"),
        "content/lessons/bad-order.md:5: 'order' must be a whole number >= 0 (got str 'second')",
    ),
    "bad-reference.md": (
        GRADIENT_DESCENT.replace("gradient-descent", "bad-reference").replace(
            "references: []", "references:\n  - title: Evil\n    url: javascript:alert(1)"
        ),
        "content/lessons/bad-reference.md:10: 'references' item 1: url must be an http(s) address",
    ),
    "notes.txt": ("not a lesson", "content/lessons/notes.txt: not a lesson file"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_reported_with_its_file_and_line_and_the_good_ones_still_import(content: Path, name: str) -> None:
    text, expected = BAD_FILES[name]
    write_lessons(content, {name: text})

    report = load(content)

    assert len(report.errors) == 1, errors_of(report)
    assert errors_of(report)[0].startswith(expected), errors_of(report)
    assert sorted(Lesson.objects.values_list("slug", flat=True)) == ["chain-rule", "gradient-descent"]


@pytest.mark.django_db
def test_a_lesson_whose_file_is_removed_is_kept_and_reported_once(content: Path, learner) -> None:
    load(content)
    gone = Lesson.objects.get(slug="gradient-descent")
    gone.reads.create(user=learner)
    (content / "lessons" / "gradient-descent.md").unlink()
    (content / "lessons" / "chain-rule.md").write_text(CHAIN_RULE.replace("related: [gradient-descent]", "related: []"))

    first = load(content)
    second = load(content)

    assert "lesson gradient-descent (kept: content/lessons/gradient-descent.md is gone;" in " ".join(first.updated)
    assert not any("gradient-descent" in line for line in second.updated)
    kept = Lesson.objects.get(slug="gradient-descent")
    assert kept.source_path == "" and kept.reads.count() == 1


@pytest.mark.django_db
def test_import_content_check_writes_nothing_and_names_each_error(content: Path) -> None:
    write_lessons(content, {"bad-difficulty.md": BAD_FILES["bad-difficulty.md"][0]})
    out, err = StringIO(), StringIO()

    with LESSONS_ONLY, pytest.raises(CommandError, match="1 content error"):
        call_command("import_content", "--check", "--path", str(content), stdout=out, stderr=err)

    assert Lesson.objects.count() == 0
    assert "would create lesson chain-rule" in out.getvalue() and "created" not in out.getvalue()
    assert "error     content/lessons/bad-difficulty.md:4: 'difficulty' must be one of" in err.getvalue()


@pytest.mark.django_db
def test_import_content_imports_then_reports_everything_unchanged(content: Path) -> None:
    with LESSONS_ONLY:
        call_command("import_content", "--path", str(content), stdout=StringIO())
        out = StringIO()
        call_command("import_content", "--path", str(content), stdout=out)

    assert Lesson.objects.count() == 2
    assert "unchanged 2 item(s)" in out.getvalue()
    assert "content imported" in out.getvalue()


@pytest.mark.django_db
def test_the_real_lessons_import_without_errors() -> None:
    report = load(ROOT / "content")

    assert errors_of(report) == []
    assert len(report.created) >= 5
    lesson = Lesson.objects.get(slug="backpropagation")
    assert lesson.related.count() >= 1
    assert "<!--" not in lesson.body_html and "check:" not in lesson.body_html
    assert '<pre class="mermaid">' in lesson.body_html
    assert '<div class="math" data-display="true">' in lesson.body_html
