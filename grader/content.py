"""Exercise loader for `manage.py import_content`: `content/exercises/<slug>/` -> Exercise rows.

A folder holds (the contract with exercise authors; see grader/spec.py for the YAML):

    exercise.yaml      the grading specification
    statement.md       Markdown with $math$, shown to the learner (HTML rendered here, at import)
    starter.py         the signature and a docstring, the editor's initial text
    solution.py        the reference solution (must be accepted; shown only after the learner's Accepted)
    explanation.md     optional: a short explanation shown with the reference solution after Accepted
    wrong/<name>.py    known-wrong variants, at least three, each starting with
                       `# mistake: <Mistake code>` and `# description: <one line>`

What the loader guarantees:
- every folder is validated; each problem is reported with its file and line, and the
  other folders carry on (one bad folder doesn't stop the others);
- nothing is graded here: `manage.py check_content` grades the reference and the variants;
- writing upserts by slug, links the exercise to its lesson by slug, and replaces the
  known-wrong variants with the folder's; re-importing an unchanged folder changes nothing
  (the hash covers every file and the renderer's version); a changed folder resets the
  exercise's validation status to "unknown";
- an exercise its failed validation unpublished (`withdrawn_by_validation`) stays unpublished:
  re-importing the same folder leaves it as it is, and a changed folder is written but kept
  offline while its validation is queued; the worker publishes it again only if it passes;
- an exercise whose folder was removed is retired (`is_active = False`), never deleted:
  submissions point at it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contentsync.files import ContentInvalid, ContentReport, content_hash
from grader.diagnosis import Mistake
from grader.spec import SPEC_FILE, ExerciseSpec, SpecInvalid
from gradlab.markdown import RENDERER_VERSION, render_markdown

EXERCISE_FOLDER = "exercises"
STATEMENT_FILE = "statement.md"
STARTER_FILE = "starter.py"
SOLUTION_FILE = "solution.py"
EXPLANATION_FILE = "explanation.md"
WRONG_FOLDER = "wrong"
MIN_WRONG_VARIANTS = 3
MISTAKE_HEADER = re.compile(r"^#\s*mistake:\s*(\S*)\s*$")
DESCRIPTION_HEADER = re.compile(r"^#\s*description:\s*(.*?)\s*$")
VARIANT_NAME = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")


@dataclass(frozen=True)
class WrongVariant:
    name: str
    mistake: Mistake
    description: str
    code: str


@dataclass
class ExerciseFolder:
    """A folder that passed validation."""

    path: Path
    spec: ExerciseSpec
    statement_md: str
    starter: str
    solution: str
    wrong: list[WrongVariant] = field(default_factory=list)
    digest: str = ""
    explanation_md: str = ""


class FileInvalid(ContentInvalid):
    """A problem in one file of an exercise folder."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.path = path


def load_exercises(root: Path, report: ContentReport, *, write: bool) -> None:
    """Validate every `root/exercises/<slug>/`; with `write`, upsert the valid ones (see the module docstring)."""
    folder = root / EXERCISE_FOLDER
    if not folder.is_dir():
        return
    from grader.models import Exercise

    existing = {exercise.slug: exercise for exercise in Exercise.objects.all()}
    on_disk: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_dir():
            report.error(path, None, "not an exercise folder: each exercise is a folder content/exercises/<slug>/")
            continue
        on_disk.add(path.name)
        try:
            parsed = parse_exercise_folder(path)
            _check_lesson(parsed, root, write=write)
        except FileInvalid as problem:
            report.error(problem.path, problem.line, problem.message)
            continue
        if write:
            _upsert(parsed, existing, report)
        else:
            row = existing.get(parsed.spec.slug)
            unchanged = row is not None and row.content_hash == parsed.digest
            (report.unchanged if unchanged else report.created if row is None else report.updated).append(
                f"exercise {parsed.spec.slug}"
            )
    _retire_removed(existing, on_disk, folder, report, write=write)


def parse_exercise_folder(path: Path) -> ExerciseFolder:
    """Validate one exercise folder; raise FileInvalid naming the file and line of the first problem."""
    spec_path = path / SPEC_FILE
    try:
        spec = ExerciseSpec.from_folder(path)
    except SpecInvalid as problem:
        raise FileInvalid(spec_path, problem.message, problem.line) from None
    except UnicodeDecodeError:
        raise FileInvalid(spec_path, "the file is not UTF-8 text") from None
    statement = _read(path / STATEMENT_FILE)
    if not statement.strip():
        raise FileInvalid(path / STATEMENT_FILE, "the statement is empty", 1)
    starter = _read(path / STARTER_FILE)
    solution = _read(path / SOLUTION_FILE)
    _check_python(path / STARTER_FILE, starter, spec)
    _check_python(path / SOLUTION_FILE, solution, spec)
    explanation = _read(path / EXPLANATION_FILE) if (path / EXPLANATION_FILE).exists() else ""
    wrong_folder = path / WRONG_FOLDER
    variants: list[WrongVariant] = []
    files = sorted(wrong_folder.glob("*.py")) if wrong_folder.is_dir() else []
    for file in files:
        variants.append(_parse_variant(file, spec))
    if len(variants) < MIN_WRONG_VARIANTS:
        raise FileInvalid(
            wrong_folder,
            f"{len(variants)} known-wrong variant(s); at least {MIN_WRONG_VARIANTS} are required (wrong/<name>.py)",
        )
    texts = [(SPEC_FILE, _read(spec_path)), (STATEMENT_FILE, statement), (STARTER_FILE, starter)]
    texts += [(SOLUTION_FILE, solution)] + [(f"{WRONG_FOLDER}/{v.name}.py", v.code) for v in variants]
    if explanation:
        texts.append((EXPLANATION_FILE, explanation))
    digest = content_hash(RENDERER_VERSION, *(part for pair in texts for part in pair))
    return ExerciseFolder(
        path=path,
        spec=spec,
        statement_md=statement,
        starter=starter,
        solution=solution,
        wrong=variants,
        digest=digest,
        explanation_md=explanation,
    )


def _read(path: Path) -> str:
    if not path.is_file():
        raise FileInvalid(path, f"missing {path.name}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileInvalid(path, "the file is not UTF-8 text") from None


def _check_python(path: Path, code: str, spec: ExerciseSpec) -> None:
    try:
        tree = ast.parse(code, filename=path.name)
    except SyntaxError as error:
        raise FileInvalid(path, f"SyntaxError: {error.msg}", error.lineno) from None
    if not any(isinstance(node, ast.FunctionDef) and node.name == spec.function for node in tree.body):
        raise FileInvalid(path, f"does not define {spec.function}(...)", 1)


def _parse_variant(path: Path, spec: ExerciseSpec) -> WrongVariant:
    code = _read(path)
    name = path.stem
    if not VARIANT_NAME.match(name):
        raise FileInvalid(path, f"variant name '{name}' must be lower-case words joined by _ or -")
    lines = code.splitlines()
    mistake_line = MISTAKE_HEADER.match(lines[0]) if lines else None
    if mistake_line is None:
        raise FileInvalid(path, "the first line must be '# mistake: <code>'", 1)
    try:
        mistake = Mistake(mistake_line.group(1))
    except ValueError:
        known = ", ".join(m.value for m in Mistake)
        raise FileInvalid(path, f"unknown mistake '{mistake_line.group(1)}' (known: {known})", 1) from None
    description_line = DESCRIPTION_HEADER.match(lines[1]) if len(lines) > 1 else None
    if description_line is None or not description_line.group(1):
        raise FileInvalid(path, "the second line must be '# description: <one line>'", 2)
    _check_python(path, code, spec)
    return WrongVariant(name=name, mistake=mistake, description=description_line.group(1), code=code)


def _lessons_on_disk(root: Path) -> set[str]:
    return {path.stem for path in (root / "lessons").glob("*.md")}


def _check_lesson(parsed: ExerciseFolder, root: Path, *, write: bool) -> None:
    from lessons.models import Lesson

    slug = parsed.spec.lesson
    if Lesson.objects.filter(slug=slug).exists():
        return
    if not write and slug in _lessons_on_disk(root):
        return
    raise FileInvalid(
        parsed.path / SPEC_FILE,
        f"no lesson '{slug}' (content/lessons/{slug}.md)",
        _line_of(parsed.path / SPEC_FILE, "lesson"),
    )


def _line_of(path: Path, key: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return None


def exercise_fields(parsed: ExerciseFolder) -> dict[str, Any]:
    """Model field values for an Exercise row from a parsed folder (the lesson is set separately)."""
    spec = parsed.spec
    spec_json = spec.to_json()
    spec_json.pop("hints", None)  # kept in their own field, Exercise.hints
    return {
        "title": spec.title,
        "order": spec.order,
        "difficulty": spec.difficulty,
        "function_name": spec.function,
        "signature": spec.signature,
        "statement_md": parsed.statement_md,
        "statement_html": render_markdown(parsed.statement_md),
        "starter_code": parsed.starter,
        "reference_solution": parsed.solution,
        "spec": spec_json,
        "hints": list(spec.hints),
        "solution_explanation_md": parsed.explanation_md,
    }


def _upsert(parsed: ExerciseFolder, existing: dict[str, Any], report: ContentReport) -> None:
    from grader.grading_version import exercise_grading_touch
    from grader.models import Exercise, KnownWrongVariant, ValidationStatus
    from lessons.models import Lesson

    slug = parsed.spec.slug
    name = f"exercise {slug}"
    source = report.relative(parsed.path)
    row = existing.get(slug)
    # Unpublished by a failed validation: only a passing validation of changed content publishes it again.
    withdrawn = row is not None and row.withdrawn_by_validation and not row.is_active
    if row is not None and row.content_hash == parsed.digest and row.source_path == source:
        if row.is_active:
            report.unchanged.append(name)
            return
        if withdrawn:
            report.unchanged.append(name)
            report.notes.append(f"{name} is still unpublished: its validation failed; fix the folder and import")
            return
    if withdrawn:
        report.updated.append(f"{name} (unpublished until its validation passes; validation queued)")
    else:
        (report.created if row is None else report.updated).append(name)
    if row is None:
        row = Exercise(slug=slug)
        existing[slug] = row
    for key, value in exercise_fields(parsed).items():
        setattr(row, key, value)
    row.lesson = Lesson.objects.get(slug=parsed.spec.lesson)
    row.source_path = source
    row.content_hash = parsed.digest
    row.is_active = not withdrawn
    row.validation_status = ValidationStatus.UNKNOWN
    row.save()
    kept = []
    for variant in parsed.wrong:
        KnownWrongVariant.objects.update_or_create(
            exercise=row,
            name=variant.name,
            defaults={"mistake": variant.mistake.value, "description": variant.description, "code": variant.code},
        )
        kept.append(variant.name)
    KnownWrongVariant.objects.filter(exercise=row).exclude(name__in=kept).delete()
    if exercise_grading_touch(row):
        report.notes.append(f"{name}: its grading changed; staff can preview a regrade of past submissions")
    if withdrawn:
        from grader.authoring import exercise_validation_request

        exercise_validation_request(row)  # sent after the import commits, with the new variants in


def _retire_removed(
    existing: dict[str, Any], on_disk: set[str], folder: Path, report: ContentReport, *, write: bool
) -> None:
    prefix = report.relative(folder) + "/"
    for slug, row in sorted(existing.items()):
        if slug in on_disk or not row.source_path.startswith(prefix) or not row.is_active:
            continue
        report.updated.append(f"exercise {slug} (retired: {row.source_path} is gone)")
        if write:
            row.is_active = False
            row.save(update_fields=["is_active", "updated_at"])
