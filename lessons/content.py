"""Lesson loader for `manage.py import_content`: `content/lessons/<slug>.md` -> Lesson rows.

File format (the contract with lesson authors): `---` YAML front matter `---`, then
Markdown. Front-matter keys: slug (equal to the file's name, which keeps slugs unique),
title, difficulty (EASY, MEDIUM or HARD), order (an integer), summary, question,
related (slugs of other lessons), references (a list of {title, url}); any other key
is kept in `Lesson.extra`. The body must have a `## Answer` section (the short
answer); the rest (`## Explanation` with its `###` subsections, `## References`,
`## Related questions`) is the explanation.

What the loader guarantees:
- every file is validated; each problem is recorded with the file and the line it is
  on, and the other files carry on;
- HTML is rendered here, once (gradlab.markdown), never per request: `short_answer_html`
  from the Answer section, `body_html` from everything after it, with the front
  matter's references added as links at the end of the References section and the
  Related questions section moved last (the lesson page puts the related lessons'
  cards right after it);
- `body_md` keeps the body exactly as authored;
- re-importing an unchanged file changes nothing and reports it `unchanged` (the hash
  covers the file's text and the renderer's version);
- a lesson whose file was removed is kept, never deleted: learners' reads, quiz
  attempts and exercises point at it. The import reports it once and then clears its
  `source_path`, so from then on it is a lesson owned by the admin; delete it there if
  it should go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from contentsync.files import ContentInvalid, ContentReport, content_hash, split_front_matter
from gradlab.markdown import RENDERER_VERSION, render_markdown
from gradlab.slugs import is_slug
from lessons.models import Difficulty, Lesson

LESSON_FOLDER = "lessons"
LESSON_SUFFIX = ".md"
REQUIRED_KEYS: dict[str, str] = {
    "slug": "text",
    "title": "text",
    "difficulty": "text",
    "order": "an integer",
    "summary": "text",
    "question": "text",
    "related": "a list of lesson slugs",
    "references": "a list of {title, url}",
}
ANSWER_HEADING = "Answer"
REFERENCES_HEADING = "References"
RELATED_HEADING = "Related questions"
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
SECTION_HEADING = re.compile(r"^## +(.+?)\s*#*\s*$")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!#|$~&])")
URL_SCHEMES = {"http", "https"}
MAX_TITLE_LENGTH = Lesson._meta.get_field("title").max_length or 200


@dataclass
class Section:
    """A `## ` section of a lesson body: its heading text (None before the first heading)."""

    heading: str | None
    line: int
    lines: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = f"## {self.heading}\n" if self.heading is not None else ""
        return head + "".join(self.lines)


@dataclass
class ParsedLesson:
    """A lesson file that passed validation, ready to be written."""

    path: Path
    slug: str
    fields: dict[str, Any]
    related: list[str]
    related_line: int
    digest: str


def load_lessons(root: Path, report: ContentReport, *, write: bool) -> None:
    """Validate every `root/lessons/*.md`; with `write`, upsert the valid ones by slug.

    Problems go to `report.error(path, line, message)`; created, updated and unchanged
    lessons to the report's lists (see the module docstring for the guarantees).
    """
    folder = root / LESSON_FOLDER
    if not folder.is_dir():
        return
    existing = {lesson.slug: lesson for lesson in Lesson.objects.prefetch_related("related")}
    on_disk = {path.stem for path in folder.glob(f"*{LESSON_SUFFIX}")}
    parsed: list[ParsedLesson] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix != LESSON_SUFFIX:
            report.error(path, None, f"not a lesson file: lesson files are named <slug>{LESSON_SUFFIX}")
            continue
        try:
            lesson = parse_lesson_file(path, path.read_text(encoding="utf-8"))
        except ContentInvalid as problem:
            report.error(path, problem.line, problem.message)
            continue
        except UnicodeDecodeError:
            report.error(path, None, "the file is not UTF-8 text")
            continue
        parsed.append(lesson)

    # A related slug may name a lesson on disk (even one with errors of its own: that
    # file's errors are reported) or one already in the database (made in the admin).
    known = on_disk | set(existing)
    valid = []
    for lesson in parsed:
        unknown = [slug for slug in lesson.related if slug not in known]
        if unknown:
            names = ", ".join(f"'{slug}'" for slug in unknown)
            report.error(lesson.path, lesson.related_line, f"related names no lesson: {names}")
            continue
        valid.append(lesson)

    for lesson in valid:
        _upsert(lesson, existing, report, write=write)
    if write:
        _link_related(valid, existing)
    _report_removed(existing, on_disk, folder, report, write=write)


def parse_lesson_file(path: Path, text: str) -> ParsedLesson:
    """Validate one lesson file and render its HTML; raise ContentInvalid with the line of the first problem."""
    meta, body, body_line = split_front_matter(text)
    key_lines = _front_matter_key_lines(text, body_line)

    def line_of(key: str) -> int:
        return key_lines.get(key, (1, []))[0]

    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ContentInvalid(f"missing front-matter key(s): {', '.join(missing)}", 1)
    for key in ("slug", "title", "summary", "question"):
        value = meta[key]
        if not isinstance(value, str) or not value.strip():
            raise ContentInvalid(f"'{key}' must be {REQUIRED_KEYS[key]} (got {_describe(value)})", line_of(key))
    slug = meta["slug"].strip()
    if not is_slug(slug):
        raise ContentInvalid(f"slug '{slug}' must be lower-case words joined by hyphens", line_of("slug"))
    if slug != path.stem:
        raise ContentInvalid(
            f"slug '{slug}' does not match the file name ({path.stem}{LESSON_SUFFIX})", line_of("slug")
        )
    if len(meta["title"]) > MAX_TITLE_LENGTH:
        raise ContentInvalid(f"'title' is longer than {MAX_TITLE_LENGTH} characters", line_of("title"))
    difficulty = meta["difficulty"]
    if difficulty not in Difficulty.values:
        allowed = ", ".join(Difficulty.values)
        raise ContentInvalid(
            f"'difficulty' must be one of {allowed} (got {_describe(difficulty)})", line_of("difficulty")
        )
    order = meta["order"]
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ContentInvalid(f"'order' must be a whole number >= 0 (got {_describe(order)})", line_of("order"))
    related = _related(meta["related"], slug, key_lines)
    references = _references(meta["references"], key_lines)

    sections = _sections(body, body_line)
    answers = [section for section in sections if section.heading == ANSWER_HEADING]
    if not answers:
        raise ContentInvalid(f"the body has no '## {ANSWER_HEADING}' section (the short answer)", body_line)
    answer = answers[0]
    if len(answers) > 1:
        raise ContentInvalid(f"a second '## {ANSWER_HEADING}' section", answers[1].line)
    short_answer_md = "".join(answer.lines).strip() + "\n"
    if not short_answer_md.strip():
        raise ContentInvalid(f"the '## {ANSWER_HEADING}' section is empty", answer.line)

    explanation_md = _explanation_markdown(sections, answer, references, related)
    extra = {key: value for key, value in meta.items() if key not in REQUIRED_KEYS}
    fields: dict[str, Any] = {
        "title": meta["title"].strip(),
        "difficulty": difficulty,
        "order": order,
        "summary": meta["summary"].strip(),
        "question": meta["question"].strip(),
        "short_answer_md": short_answer_md,
        "short_answer_html": render_markdown(short_answer_md),
        "body_md": body,
        "body_html": render_markdown(explanation_md),
        "references": references,
        "extra": extra,
    }
    return ParsedLesson(
        path=path,
        slug=slug,
        fields=fields,
        related=related,
        related_line=line_of("related"),
        digest=content_hash(RENDERER_VERSION, text),
    )


def lesson_render(lesson: Lesson) -> None:
    """Re-render a lesson's HTML from its Markdown (for edits made in the admin).

    `body_md` is the whole lesson as in its file: its `## Answer` section becomes the short
    answer (so an edit there survives `export_content`), the rest the explanation, with the
    references and related questions placed as at import. A body without an Answer section
    keeps the current `short_answer_md`.
    """
    sections = _sections(lesson.body_md, 1)
    answer = next((section for section in sections if section.heading == ANSWER_HEADING), None)
    if answer is not None and "".join(answer.lines).strip():
        lesson.short_answer_md = "".join(answer.lines).strip() + "\n"
    lesson.short_answer_html = render_markdown(lesson.short_answer_md)
    related = [other.slug for other in lesson.related.all()] if lesson.pk else []
    lesson.body_html = render_markdown(_explanation_markdown(sections, answer, lesson.references or [], related))


# --- Front matter ------------------------------------------------------------------


def _front_matter_key_lines(text: str, body_line: int) -> dict[str, tuple[int, list[int]]]:
    """For each top-level key: (its line in the file, the lines of its list items, if a list)."""
    front = "".join(text.splitlines(keepends=True)[1 : body_line - 2])
    first_line = 2
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, tuple[int, list[int]]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            items = (
                [first_line + item.start_mark.line for item in value_node.value]
                if isinstance(value_node, yaml.SequenceNode)
                else []
            )
            lines[str(key_node.value)] = (first_line + key_node.start_mark.line, items)
    return lines


def _related(value: Any, own_slug: str, key_lines: dict[str, tuple[int, list[int]]]) -> list[str]:
    line, item_lines = key_lines.get("related", (1, []))
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContentInvalid(f"'related' must be {REQUIRED_KEYS['related']} (got {_describe(value)})", line)
    slugs: list[str] = []
    for index, item in enumerate(value):
        item_line = item_lines[index] if index < len(item_lines) else line
        if not isinstance(item, str) or not is_slug(item):
            raise ContentInvalid(f"'related' item {index + 1} must be a lesson slug (got {_describe(item)})", item_line)
        if item == own_slug:
            raise ContentInvalid("a lesson cannot be related to itself", item_line)
        if item not in slugs:
            slugs.append(item)
    return slugs


def _references(value: Any, key_lines: dict[str, tuple[int, list[int]]]) -> list[dict[str, str]]:
    line, item_lines = key_lines.get("references", (1, []))
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContentInvalid(f"'references' must be {REQUIRED_KEYS['references']} (got {_describe(value)})", line)
    references = []
    for index, item in enumerate(value):
        item_line = item_lines[index] if index < len(item_lines) else line
        where = f"'references' item {index + 1}"
        if not isinstance(item, dict) or set(item) != {"title", "url"}:
            raise ContentInvalid(f"{where} must have exactly the keys title and url", item_line)
        title, url = item["title"], item["url"]
        if not isinstance(title, str) or not title.strip():
            raise ContentInvalid(f"{where}: title must be text", item_line)
        if not isinstance(url, str) or urlsplit(url).scheme not in URL_SCHEMES or not urlsplit(url).netloc:
            raise ContentInvalid(f"{where}: url must be an http(s) address (got {_describe(url)})", item_line)
        if any(character.isspace() or character in "<>" for character in url):
            raise ContentInvalid(f"{where}: url must not contain spaces or angle brackets", item_line)
        references.append({"title": title.strip(), "url": url})
    return references


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    shown = repr(value)
    return f"{type(value).__name__} {shown[:60]}"


# --- Body --------------------------------------------------------------------------


def _sections(body: str, body_line: int) -> list[Section]:
    """Split a body at its `## ` headings, ignoring lines inside code fences."""
    sections = [Section(heading=None, line=body_line)]
    fence: str | None = None
    for offset, line in enumerate(body.splitlines(keepends=True)):
        opener = FENCE.match(line)
        if fence is None and opener:
            fence = opener.group(1)
        elif fence is not None and opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
            fence = None
        elif fence is None and (heading := SECTION_HEADING.match(line)):
            sections.append(Section(heading=heading.group(1).strip(), line=body_line + offset))
            continue
        sections[-1].lines.append(line)
    return sections


def _explanation_markdown(
    sections: list[Section], answer: Section | None, references: list[dict[str, str]], related: list[str]
) -> str:
    """Everything but the Answer, with the reference links added and Related questions last."""
    kept = [section for section in sections if section is not answer]
    if kept and kept[0].heading is None and not "".join(kept[0].lines).strip():
        kept.pop(0)
    reference_sections = [section for section in kept if section.heading == REFERENCES_HEADING]
    if references:
        if reference_sections:
            target = reference_sections[0]
        else:
            target = Section(heading=REFERENCES_HEADING, line=0)
            kept.append(target)
        target.lines.append("\n" + _reference_list(references))
    related_sections = [section for section in kept if section.heading == RELATED_HEADING]
    if related and not related_sections:
        related_sections = [Section(heading=RELATED_HEADING, line=0, lines=["\n"])]
    kept = [section for section in kept if section.heading != RELATED_HEADING] + related_sections
    return "\n".join(section.markdown().rstrip("\n") + "\n" for section in kept)


def _reference_list(references: list[dict[str, str]]) -> str:
    items = [f"- [{_escape_markdown(item['title'])}](<{item['url']}>)" for item in references]
    return "\n".join(items) + "\n"


def _escape_markdown(text: str) -> str:
    """Backslash-escape what Markdown (and dollarmath) would read as syntax in link text."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


# --- Writing -----------------------------------------------------------------------


def _upsert(lesson: ParsedLesson, existing: dict[str, Lesson], report: ContentReport, *, write: bool) -> None:
    name = f"lesson {lesson.slug}"
    source = report.relative(lesson.path)
    row = existing.get(lesson.slug)
    if row is not None and row.content_hash == lesson.digest and row.source_path == source:
        report.unchanged.append(name)
        return
    (report.created if row is None else report.updated).append(name)
    if not write:
        return
    if row is None:
        row = Lesson(slug=lesson.slug)
        existing[lesson.slug] = row
    for key, value in lesson.fields.items():
        setattr(row, key, value)
    row.source_path = source
    row.content_hash = lesson.digest
    row.save()


def _link_related(lessons: list[ParsedLesson], existing: dict[str, Lesson]) -> None:
    """Point each lesson at its related lessons that exist; skip rows already right."""
    for lesson in lessons:
        row = existing[lesson.slug]
        wanted = [existing[slug] for slug in lesson.related if slug in existing]
        current = {other.pk for other in row.related.all()} if row.pk and _has_prefetched_related(row) else None
        if current != {other.pk for other in wanted}:
            row.related.set(wanted)


def _has_prefetched_related(row: Lesson) -> bool:
    return "related" in getattr(row, "_prefetched_objects_cache", {})


def _report_removed(
    existing: dict[str, Lesson], on_disk: set[str], folder: Path, report: ContentReport, *, write: bool
) -> None:
    prefix = report.relative(folder) + "/"
    for slug, row in sorted(existing.items()):
        if slug in on_disk or not row.source_path.startswith(prefix):
            continue
        report.updated.append(f"lesson {slug} (kept: {row.source_path} is gone; it is now edited in the admin only)")
        if write:
            row.source_path = ""
            row.content_hash = ""
            row.save(update_fields=["source_path", "content_hash", "updated_at"])
