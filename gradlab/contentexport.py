"""Writing the database back to `content/` files (`manage.py export_content`).

The files are the ones the loaders read (quizzes/content.py, quizzes/quiz_content.py,
grader/content.py), in the same layout:

    lessons/<slug>.md                  front matter + the lesson's Markdown (body_md, kept verbatim)
    quizzes/<lesson-slug>.yaml         the lesson's active questions
    exercises/<slug>/exercise.yaml     the spec, with the row's title, order, lesson... applied
    exercises/<slug>/statement.md, starter.py, solution.py, wrong/<name>.py   verbatim

Round trip: `import_content` records the text of every file it read
(`record_sources`, the last of settings.CONTENT_LOADERS, into dashboard.ContentSource).
For each file, the exporter parses that recorded text with the loader's own parser and
compares the result with what the database holds now. Equal: nothing was edited since,
and the recorded text is written back byte for byte (comments, quoting and line
wrapping included). Different, or never imported: a canonical file is written from the
database, which the loader reads back to the same rows (and which a second
export reproduces exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from gradlab.contentio import ContentInvalid, ContentReport

LESSON_SOURCE_KEYS = ("title", "difficulty", "order", "summary", "question", "body_md", "references", "extra")
QUIZ_HEADER = "# Quiz for content/lessons/{slug}.md. Format: see quizzes/quiz_content.py.\n"


# --- Recording what was imported --------------------------------------------------------


def source_paths(root: Path) -> list[Path]:
    """The files of `root` whose text is kept for export (those with parsed, not verbatim, fields)."""
    paths = sorted((root / "lessons").glob("*.md")) + sorted((root / "quizzes").glob("*.yaml"))
    return paths + sorted((root / "exercises").glob("*/exercise.yaml"))


def record_sources(root: Path, report: ContentReport, *, write: bool) -> None:
    """Content loader (last in settings.CONTENT_LOADERS): remember the text of each file just imported."""
    if not write:
        return
    from dashboard.models import ContentSource

    for path in source_paths(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the loader has reported it
        ContentSource.objects.update_or_create(path=path.relative_to(root).as_posix(), defaults={"text": text})


def _recorded(relative: str) -> str | None:
    from dashboard.models import ContentSource

    return ContentSource.objects.filter(path=relative).values_list("text", flat=True).first()


# --- YAML in the authors' style --------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line text as `|` blocks, keys in the given order, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if "\n" in text.rstrip("\n") or text.endswith("\n"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_Dumper.add_representer(str, _represent_text)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


# --- Lessons -------------------------------------------------------------------------


def lesson_state(lesson: Any) -> dict[str, Any]:
    """What a lesson file determines, read from the row."""
    state = {key: getattr(lesson, key) for key in LESSON_SOURCE_KEYS}
    state["related"] = sorted(other.slug for other in lesson.related.all())
    return state


def lesson_state_of_text(path: Path, text: str) -> dict[str, Any]:
    from quizzes.content import parse_lesson_file

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


# --- Quizzes ---------------------------------------------------------------------------


def _question_state(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": fields["kind"],
        "prompt_md": fields["prompt_md"],
        "explanation_md": fields["explanation_md"],
        "choices": [(choice["text_md"], bool(choice["correct"])) for choice in fields["choices"] or []],
        "answer": fields["answer"],
        "tolerance": fields["tolerance"] or {},
        "generator": fields["generator"] or "",
    }


def quiz_state(questions: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(question.key, _question_state(vars(question))) for question in questions]


def quiz_state_of_text(text: str) -> list[tuple[str, dict[str, Any]]]:
    from quizzes.quiz_content import parse_quiz_file

    return [(key, _question_state(fields)) for key, fields in parse_quiz_file(text)]


def quiz_canonical(lesson_slug: str, questions: Iterable[Any]) -> str:
    items = []
    for question in questions:
        item: dict[str, Any] = {"key": question.key, "type": question.kind, "prompt": question.prompt_md}
        if question.choices:
            item["choices"] = [
                {"text": choice["text_md"], **({"correct": True} if choice["correct"] else {})}
                for choice in question.choices
            ]
        if question.answer is not None:
            item["answer"] = question.answer
        if question.tolerance:
            tolerance = {name: value for name, value in question.tolerance.items() if value}
            item["tolerance"] = tolerance or {"absolute": 0.0}
        if question.generator:
            item["generator"] = question.generator
        item["explanation"] = question.explanation_md
        items.append(item)
    blocks = [dump_yaml([item]) for item in items]
    indented = "\n".join(
        "".join(f"  {line}" if line.strip() else line for line in block.splitlines(True)) for block in blocks
    )
    return QUIZ_HEADER.format(slug=lesson_slug) + "questions:\n" + indented


# --- Exercises ---------------------------------------------------------------------------


def exercise_spec_json(exercise: Any) -> dict[str, Any]:
    """The exercise's spec with the row's own fields applied (they win: the admin edits those)."""
    from grader.spec import ExerciseSpec

    data = dict(exercise.spec or {})
    data.update(
        slug=exercise.slug,
        title=exercise.title,
        lesson=exercise.lesson.slug if exercise.lesson else data.get("lesson", ""),
        order=exercise.order,
        difficulty=exercise.difficulty,
        function=exercise.function_name,
        signature=exercise.signature,
    )
    data.setdefault("kind", exercise.slug)
    return ExerciseSpec.from_json(data).to_json()


def exercise_spec_of_text(text: str) -> dict[str, Any]:
    from grader.spec import ExerciseSpec

    return ExerciseSpec.from_yaml(text).to_json()


def exercise_canonical(spec: dict[str, Any]) -> str:
    return dump_yaml(spec)


# --- Export ----------------------------------------------------------------------------


@dataclass
class ExportReport:
    verbatim: list[str] = field(default_factory=list)  # recorded text written back
    canonical: list[str] = field(default_factory=list)  # written from the database
    copied: list[str] = field(default_factory=list)  # fields kept verbatim in the database

    @property
    def written(self) -> int:
        return len(self.verbatim) + len(self.canonical) + len(self.copied)


def _choose(relative: str, state: Any, canonical: Callable[[], str], parse: Callable[[str], Any]) -> tuple[str, bool]:
    """(text to write, whether it is the recorded text) for one parsed file."""
    recorded = _recorded(relative)
    if recorded is not None:
        try:
            if parse(recorded) == state:
                return recorded, True
        except ContentInvalid:
            pass
    return canonical(), False


def export_content(root: Path) -> ExportReport:
    """Write every lesson, active quiz question and active exercise under `root`; return what was written."""
    from grader.models import Exercise
    from quizzes.models import Lesson, QuizQuestion

    report = ExportReport()

    def write(relative: str, text: str, kind: list[str]) -> None:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
        kind.append(relative)

    for lesson in Lesson.objects.prefetch_related("related"):
        relative = f"lessons/{lesson.slug}.md"
        text, same = _choose(
            relative,
            lesson_state(lesson),
            partial(lesson_canonical, lesson),
            partial(lesson_state_of_text, root / relative),
        )
        write(relative, text, report.verbatim if same else report.canonical)

    questions: dict[str, list[Any]] = {}
    for question in QuizQuestion.objects.filter(is_active=True).select_related("lesson").order_by("order", "key"):
        questions.setdefault(question.lesson.slug, []).append(question)
    for slug, items in sorted(questions.items()):
        relative = f"quizzes/{slug}.yaml"
        text, same = _choose(relative, quiz_state(items), partial(quiz_canonical, slug, items), quiz_state_of_text)
        write(relative, text, report.verbatim if same else report.canonical)

    for exercise in Exercise.objects.filter(is_active=True).select_related("lesson").prefetch_related("wrong_variants"):
        folder = f"exercises/{exercise.slug}"
        spec = exercise_spec_json(exercise)
        text, same = _choose(f"{folder}/exercise.yaml", spec, partial(exercise_canonical, spec), exercise_spec_of_text)
        write(f"{folder}/exercise.yaml", text, report.verbatim if same else report.canonical)
        write(f"{folder}/statement.md", exercise.statement_md, report.copied)
        write(f"{folder}/starter.py", exercise.starter_code, report.copied)
        write(f"{folder}/solution.py", exercise.reference_solution, report.copied)
        for variant in exercise.wrong_variants.all():
            write(f"{folder}/wrong/{variant.name}.py", _variant_text(variant), report.copied)
    return report


def _variant_text(variant: Any) -> str:
    """The variant's file: its code, with the mistake and description header lines the loader requires."""
    code: str = variant.code
    lines = code.splitlines(keepends=True)
    if lines and lines[0].startswith("# mistake:"):
        header_mistake = lines[0].split(":", 1)[1].strip()
        if header_mistake == variant.mistake:
            return code
        lines = lines[2:] if len(lines) > 1 and lines[1].startswith("# description:") else lines[1:]
    description = " ".join(variant.description.split()) or variant.name.replace("_", " ")
    return f"# mistake: {variant.mistake}\n# description: {description}\n" + "".join(lines)
